//! Integer bounds made explicit. utoipa writes a `u64` as `integer` with
//! `format: int64` and `minimum: 0`, but says nothing of its maximum, and
//! clients and test generators do not read bounds into a format: a value
//! past `u64::MAX` is then schema-valid, and refused. And `int64` is
//! signed, so a `u64` past `i64::MAX` would break its own format. Every
//! integer that names its format gets that format's bounds, unless it
//! states tighter ones; one whose minimum is 0 is unsigned and says so
//! with the registry's `uint32` / `uint64`. It works on the document's
//! JSON, which is what is served and checked in (utoipa's own types do
//! not read every document they write back).

use serde_json::{Value, json};

fn is_integer(schema: &serde_json::Map<String, Value>) -> bool {
    match schema.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "integer"),
        _ => false,
    }
}

fn bound(schema: &mut serde_json::Map<String, Value>) {
    let unsigned = schema.get("minimum").and_then(Value::as_i64) == Some(0);
    let (min, max) = match (schema.get("format").and_then(Value::as_str), unsigned) {
        (Some("int32"), true) => {
            schema.insert("format".into(), "uint32".into());
            (json!(0), json!(u32::MAX))
        }
        (Some("int32"), false) => (json!(i32::MIN), json!(i32::MAX)),
        (Some("int64"), true) => {
            schema.insert("format".into(), "uint64".into());
            (json!(0), json!(u64::MAX))
        }
        (Some("int64"), false) => (json!(i64::MIN), json!(i64::MAX)),
        _ => return,
    };
    schema.entry("minimum").or_insert(min);
    schema.entry("maximum").or_insert(max);
}

/// Gives every integer in `v` its format's bounds.
pub fn walk(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if is_integer(map) {
                bound(map);
            }
            map.values_mut().for_each(walk);
        }
        Value::Array(items) => items.iter_mut().for_each(walk),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_and_signed_integers_get_their_formats_bounds() {
        let mut v = json!({
            "a": {"type": "integer", "format": "int64", "minimum": 0},
            "b": {"type": ["integer", "null"], "format": "int32"},
            "c": {"type": "integer", "format": "int32", "minimum": 1, "maximum": 500},
            "d": {"type": "string", "format": "int64"}
        });
        walk(&mut v);
        assert_eq!(v["a"]["maximum"], json!(u64::MAX));
        assert_eq!(v["a"]["format"], "uint64", "int64 is signed");
        assert_eq!(v["b"]["minimum"], json!(i32::MIN));
        assert_eq!(v["b"]["maximum"], json!(i32::MAX));
        assert_eq!(v["c"]["maximum"], 500, "a tighter bound stays");
        assert!(v["d"].get("maximum").is_none(), "only integers");
    }
}
