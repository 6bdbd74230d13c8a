//! The JSON body extractor for every handler: a malformed body is a 422
//! problem whose `errors` point (RFC 6901) at the offending field, rather
//! than axum's plain-text rejection. Structs are read only from objects
//! ([`strict`]).

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

mod strict;

use self::strict::Strict;
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

/// How serde refuses a float where it wants an integer.
const FLOAT_REFUSED: &str = "invalid type: floating point";

/// Keys whose JSON is the caller's own, passed on exactly as sent: tool
/// arguments and outputs, mission inputs and results, state data, a
/// worker's progress notes, a tool's input schema, a Cedar context.
const VERBATIM: &[&str] = &[
    "arguments",
    "fixed",
    "inputs",
    "entries",
    "output",
    "result",
    "progress",
    "input_schema",
    "context",
];

type ReadError = serde_path_to_error::Error<serde_json::Error>;

/// Reads a body as `T`: structs only from objects ([`strict`]), errors
/// with the path to the field.
///
/// JSON has one kind of number: to JSON Schema `5.0` is the integer 5, and
/// some clients write every number with a fraction. serde wants an integer
/// token for an integer field, so a body refused for a float is read once
/// more with each integral float as an integer, outside the [`VERBATIM`]
/// keys, which reach tools and digests untouched. Only refused bodies pay
/// for the second reading.
fn read<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ReadError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let first = match serde_path_to_error::deserialize(Strict(de)) {
        Err(e) if e.inner().to_string().starts_with(FLOAT_REFUSED) => e,
        read => return read,
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return Err(first);
    };
    integral(&mut value);
    serde_path_to_error::deserialize(Strict(value))
}

fn integral(v: &mut serde_json::Value) {
    use serde_json::Value;
    // Integers beyond 2^63 do not fit an i64; none of our fields take one.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    match v {
        Value::Number(n) => {
            if let Some(f) = n
                .as_f64()
                .filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() < LIMIT)
            {
                // In range and without a fraction: the cast is exact.
                *v = Value::from(f as i64);
            }
        }
        Value::Array(xs) => xs.iter_mut().for_each(integral),
        Value::Object(m) => m
            .iter_mut()
            .filter(|(k, _)| !VERBATIM.contains(&k.as_str()))
            .for_each(|(_, x)| integral(x)),
        _ => {}
    }
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
        match read(&bytes) {
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

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Step {
        timeout_ms: u64,
        arguments: serde_json::Value,
    }

    fn step(body: serde_json::Value) -> Result<Step, String> {
        read(&serde_json::to_vec(&body).unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn an_integral_float_is_an_integer_but_never_inside_the_callers_own_json() {
        let step = step(json!({"timeout_ms": 5000.0, "arguments": {"amount": 5.0}})).unwrap();
        assert_eq!(step.timeout_ms, 5000);
        assert!(
            step.arguments["amount"].is_f64(),
            "tool arguments reach the tool as sent"
        );
    }

    #[test]
    fn a_float_with_a_fraction_is_still_refused_where_an_integer_is_wanted() {
        let refused = step(json!({"timeout_ms": 5000.5, "arguments": {}})).unwrap_err();
        assert!(refused.contains("timeout_ms"), "{refused}");
    }
}
