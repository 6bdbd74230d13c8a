//! The JSON body extractor for every handler: a malformed body is a 422
//! problem whose `errors` point (RFC 6901) at the offending field, rather
//! than axum's plain-text rejection.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

use crate::http::problem::{FieldError, Problem, ProblemKind};
use crate::http::server::AppState;

#[derive(Debug)]
pub struct Body<T>(pub T);

fn pointer(path: &serde_path_to_error::Path) -> String {
    let mut p = String::new();
    for seg in path.iter() {
        use serde_path_to_error::Segment;
        match seg {
            Segment::Seq { index } => p.push_str(&format!("/{index}")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                p.push('/');
                p.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
            Segment::Unknown => p.push_str("/?"),
        }
    }
    p
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Body<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                let v = v.split(';').next().unwrap_or("").trim();
                v == "application/json" || v.ends_with("+json")
            });
        if !is_json {
            return Err(Problem::new(
                ProblemKind::UnsupportedMediaType,
                "the request body must be JSON (Content-Type: application/json)",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::new(ProblemKind::PayloadTooLarge, e.body_text()))?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(de) {
            Ok(v) => Ok(Body(v)),
            Err(e) => {
                let pointer = pointer(e.path());
                let inner = e.into_inner();
                let detail = inner.to_string();
                if inner.is_syntax() || inner.is_eof() {
                    return Err(Problem::new(
                        ProblemKind::BadRequest,
                        format!("the body is not valid JSON: {detail}"),
                    ));
                }
                Err(Problem::new(
                    ProblemKind::Validation,
                    format!("invalid request body: {detail}"),
                )
                .with_errors(vec![FieldError { pointer, detail }]))
            }
        }
    }
}
