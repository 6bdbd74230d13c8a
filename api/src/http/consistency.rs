//! Reads are linearizable by default: before a `GET` runs, this node
//! catches up with the cluster's read index, so a read on any node after
//! an acknowledged write sees that write. A caller that would rather have
//! this node's state at once, possibly behind, asks with
//! `?consistency=stale`. The OpenAPI document declares the parameter on
//! every read ([`DeclareParameter`]).

use aura_raft::Consistency;
use axum::extract::{Query, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::Modify;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{Required, Schema};

use crate::app::AppError;
use crate::http::problem::{Problem, ProblemKind};
use crate::http::server::AppState;

pub const PARAM: &str = "consistency";

#[derive(Debug, Deserialize)]
struct Asked {
    consistency: Option<String>,
}

/// The consistency a request asks for; linearizable unless it says
/// otherwise.
pub fn requested(uri: &axum::http::Uri) -> Result<Consistency, Problem> {
    let asked = Query::<Asked>::try_from_uri(uri)
        .map_err(|e| Problem::new(ProblemKind::BadRequest, e.body_text()))?;
    match asked.0.consistency.as_deref() {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("stale") => Ok(Consistency::Stale),
        Some(other) => Err(Problem::new(
            ProblemKind::BadRequest,
            format!("`{PARAM}` is `linearizable` (the default) or `stale`, not `{other}`"),
        )),
    }
}

/// Middleware on the reads of `/v1`: catches this node up with the read
/// index first, unless the request asks for a stale read.
pub async fn read_index(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    match requested(req.uri()) {
        Err(p) => p.into_response(),
        Ok(Consistency::Stale) => next.run(req).await,
        Ok(Consistency::Linearizable) => match state.app.engine().catch_up().await {
            Ok(()) => next.run(req).await,
            Err(e) => Problem::from(AppError::from(e)).into_response(),
        },
    }
}

/// Declares `consistency` on every `GET` under `/v1` that
/// [`read_index`] serves (all but `/v1/cluster`, which describes this
/// node as it is).
#[derive(Debug)]
pub struct DeclareParameter;

impl DeclareParameter {
    fn parameter() -> Parameter {
        let schema = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .enum_values(Some(["linearizable", "stale"]))
            .default(Some("linearizable".into()))
            .build();
        ParameterBuilder::new()
            .name(PARAM)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(
                "`linearizable` (the default): the answer reflects every write acknowledged \
                 before the request, on whichever node serves it. `stale`: this node's state \
                 now, without asking the cluster; it may lag behind the leader.",
            ))
            .schema(Some(Schema::Object(schema)))
            .build()
    }
}

impl Modify for DeclareParameter {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") || path == "/v1/cluster" {
                continue;
            }
            if let Some(get) = item.get.as_mut() {
                get.parameters
                    .get_or_insert_with(Vec::new)
                    .push(Self::parameter());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(uri: &str) -> Result<Consistency, Problem> {
        requested(&uri.parse().unwrap())
    }

    #[test]
    fn reads_are_linearizable_unless_asked_to_be_stale() {
        assert_eq!(asked("/v1/x").unwrap(), Consistency::Linearizable);
        assert_eq!(
            asked("/v1/x?state=CLOSED").unwrap(),
            Consistency::Linearizable
        );
        assert_eq!(
            asked("/v1/x?consistency=stale&a=1").unwrap(),
            Consistency::Stale
        );
        assert_eq!(
            asked("/v1/x?consistency=linearizable").unwrap(),
            Consistency::Linearizable
        );
        assert_eq!(asked("/v1/x?consistency=eventual").unwrap_err().status, 400);
    }
}
