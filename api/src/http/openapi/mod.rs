//! The OpenAPI 3.1 document, generated from the handlers' annotations. It
//! is checked in at `openapi/openapi.json`; `api/tests/openapi.rs` fails
//! when the two differ (regenerate with `UPDATE_OPENAPI=1 cargo test -p
//! aura-api --test integration openapi::`).

mod integers;
mod responses;

use self::responses::StandardResponses;

use crate::http::consistency::DeclareParameter;
use crate::http::v1;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Declares the bearer API key every `/v1` operation requires.
#[derive(Debug)]
struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(
            "An AURA API key (`aura_<id>_<secret>`), minted by an admin or at tenant creation"
                .into(),
        );
        components.add_security_scheme("api_key", SecurityScheme::Http(http));
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "AURA API",
        description = "Agent execution governance runtime. Errors are RFC 9457 problem details (`application/problem+json`) whose `type` is stable per kind of error.",
        license(name = "Apache-2.0"),
    ),
    modifiers(&ApiKeyScheme, &DeclareParameter, &StandardResponses),
    paths(
        crate::http::health::healthz, crate::http::health::readyz, crate::http::health::metrics,
        v1::tenants::create, v1::tenants::list, v1::tenants::get, v1::tenants::platform,
        v1::platform::list_keys, v1::platform::rotate, v1::platform::revoke_key,
        v1::platform::audit_entries, v1::platform::audit_export,
        v1::namespaces::create, v1::namespaces::list, v1::namespaces::get,
        v1::keys::create, v1::keys::list, v1::keys::revoke,
        v1::directory::create_user, v1::directory::list_users, v1::directory::get_user,
        v1::directory::update_user, v1::directory::delete_user, v1::directory::create_group, v1::directory::list_groups,
        v1::directory::get_group, v1::directory::delete_group, v1::directory::add_member,
        v1::directory::remove_member,
        v1::agents::register, v1::agents::list, v1::agents::get, v1::agents::revoke,
        v1::tools::put, v1::tools::list, v1::tools::get,
        v1::secrets::put, v1::secrets::list, v1::secrets::delete,
        v1::signing_keys::list, v1::signing_keys::rotate,
        v1::policy::upload, v1::policy::list, v1::policy::get, v1::policy::diff,
        v1::policy::run_tests, v1::policy::get_policy, v1::policy::set_stable,
        v1::policy::start_canary, v1::policy::promote, v1::policy::rollback,
        v1::policy::get_authority, v1::policy::put_authority, v1::policy::get_routing,
        v1::policy::put_routing, v1::policy::get_reasoner, v1::policy::put_reasoner,
        v1::missions::create, v1::missions::list, v1::missions::get, v1::missions::submit_plan,
        v1::missions::cancel, v1::missions::issue_token, v1::events::stream,
        v1::gateway::call_tool,
        v1::work::claim, v1::work::heartbeat, v1::work::report_step, v1::work::execution,
        v1::approvals::inbox, v1::approvals::decide,
        v1::audit::entries, v1::audit::sign_checkpoint, v1::audit::checkpoints,
        v1::audit::inclusion, v1::audit::consistency, v1::audit::export,
        v1::cluster::status,
    ),
    components(schemas(crate::http::problem::Problem, crate::http::problem::FieldError)),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "tenants", description = "Tenants, created by the platform"),
        (name = "platform", description = "The platform's own keys and their audit chain"),
        (name = "namespaces", description = "Namespaces of a tenant"),
        (name = "api keys", description = "A tenant's API keys"),
        (name = "directory", description = "Users and groups"),
        (name = "agents", description = "Agents and their credentials"),
        (name = "tools", description = "Tools and their governance attributes"),
        (name = "secrets", description = "A tenant's secrets: write-only, named by configurations (a reasoner's api_key_secret)"),
        (name = "policy", description = "Policy bundles, releases, authority and routing"),
        (name = "missions", description = "Missions and execution tokens"),
        (name = "approvals", description = "Approval inboxes and decisions"),
        (name = "audit", description = "The tamper-evident audit chain"),
        (name = "cluster", description = "The replicated engine"),
        (name = "gateway", description = "The Tool Gateway: agents call tools here with DualToken"),
        (name = "work", description = "The worker protocol: claim missions from a namespace's queue, heartbeat, report steps"),
    ),
)]
pub struct ApiDoc;

/// The document as the server serves it at `/openapi.json`.
pub fn document_json() -> serde_json::Value {
    let mut v = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    integers::walk(&mut v);
    close_variants(&mut v, "StepOutcome");
    repeats_allowed(&mut v);
    v
}

/// The server reads a set (tools, roles, failures that are never retried)
/// as a set: a value sent twice counts once. utoipa marks sets
/// `uniqueItems`, which would make a repeat an error the server does not
/// raise; the document says what the server does.
fn repeats_allowed(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("uniqueItems");
            m.values_mut().for_each(repeats_allowed);
        }
        serde_json::Value::Array(xs) => xs.iter_mut().for_each(repeats_allowed),
        _ => {}
    }
}

/// utoipa closes a struct that denies unknown fields but not the variants
/// of an internally tagged enum that does; the server refuses an unknown
/// field in either, so the document says so for both.
fn close_variants(doc: &mut serde_json::Value, schema: &str) {
    let variants = doc["components"]["schemas"][schema]["oneOf"].as_array_mut();
    for variant in variants.into_iter().flatten() {
        if let Some(v) = variant.as_object_mut() {
            v.insert("additionalProperties".into(), false.into());
        }
    }
}

/// The document pretty-printed with a final newline (the checked-in
/// form).
pub fn document() -> String {
    let mut s = serde_json::to_string_pretty(&document_json()).expect("JSON prints");
    s.push('\n');
    s
}
