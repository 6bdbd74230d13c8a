//! The OpenAPI 3.1 document, generated from the handlers' annotations. It
//! is checked in at `openapi/openapi.json`; `api/tests/openapi.rs` fails
//! when the two differ (regenerate with `UPDATE_OPENAPI=1 cargo test -p
//! aura-api --test openapi`).

use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "AURA API",
        description = "Agent execution governance runtime. Errors are RFC 9457 problem details (`application/problem+json`) whose `type` is stable per kind of error.",
        license(name = "Apache-2.0"),
    ),
    paths(crate::health::healthz, crate::health::readyz, crate::health::metrics),
    components(schemas(crate::problem::Problem, crate::problem::FieldError)),
    tags((name = "operations", description = "Health, readiness and metrics")),
)]
pub struct ApiDoc;

/// The document as the server serves it, pretty-printed with a final
/// newline (the checked-in form).
pub fn document() -> String {
    let mut s = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    s.push('\n');
    s
}
