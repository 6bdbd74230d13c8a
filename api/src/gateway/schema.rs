//! Tool argument schemas: compiled once per distinct schema, checked on
//! every call before anything is sent anywhere.

use std::collections::HashMap;
use std::error::Error;
use std::sync::{Arc, Mutex};

use aura_engine::Digest;
use boon::{Compiler, SchemaIndex, Schemas, UrlLoader};
use serde_json::Value;

use crate::app::FieldError;

/// Schemas are self-contained: a `$ref` to a file or a URL would let a
/// tool registration read the server's disk or reach the network.
struct NoExternalRefs;

impl UrlLoader for NoExternalRefs {
    fn load(&self, url: &str) -> Result<Value, Box<dyn Error>> {
        Err(format!("`{url}`: a tool's input schema may only reference itself").into())
    }
}

const ROOT: &str = "urn:aura:tool-input";

struct Compiled {
    schemas: Schemas,
    index: SchemaIndex,
}

/// Compiles a schema, or says why it is not one.
fn compile(schema: &Value) -> Result<Compiled, String> {
    let mut compiler = Compiler::new();
    compiler.use_loader(Box::new(NoExternalRefs));
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler
        .add_resource(ROOT, schema.clone())
        .map_err(|e| e.to_string())?;
    let mut schemas = Schemas::new();
    let index = compiler
        .compile(ROOT, &mut schemas)
        .map_err(|e| format!("{e:#}"))?;
    Ok(Compiled { schemas, index })
}

/// Checks that a tool's input schema compiles (on registration).
pub fn check(schema: &Value) -> Result<(), String> {
    compile(schema).map(|_| ())
}

/// Compiled schemas by content digest, shared by all tenants' calls (the
/// same schema text compiles to the same validator).
#[derive(Default)]
pub struct SchemaCache {
    compiled: Mutex<HashMap<Digest, Arc<Compiled>>>,
}

impl std::fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SchemaCache")
    }
}

const MAX_CACHED: usize = 10_000;

impl SchemaCache {
    /// The arguments' violations of the schema, each with the JSON pointer
    /// of the offending value under `/arguments`; empty when valid.
    pub fn violations(&self, schema: &Value, arguments: &Value) -> Vec<FieldError> {
        let key = Digest::of(schema.to_string().as_bytes());
        let cached = self
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let compiled = match cached {
            Some(c) => c,
            None => match compile(schema) {
                Ok(c) => {
                    let c = Arc::new(c);
                    let mut map = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
                    if map.len() >= MAX_CACHED {
                        map.clear();
                    }
                    map.insert(key, c.clone());
                    c
                }
                // Registration checks schemas, so this is a schema stored
                // before that check existed: refuse the call, never skip.
                Err(why) => {
                    return vec![FieldError {
                        pointer: "/arguments".into(),
                        detail: format!("the tool's input schema does not compile: {why}"),
                    }];
                }
            },
        };
        match compiled.schemas.validate(arguments, compiled.index) {
            Ok(()) => Vec::new(),
            Err(e) => {
                let mut out = Vec::new();
                leaves(&e, &mut out);
                out
            }
        }
    }
}

fn leaves(e: &boon::ValidationError<'_, '_>, out: &mut Vec<FieldError>) {
    if e.causes.is_empty() {
        out.push(FieldError {
            pointer: format!("/arguments{}", e.instance_location),
            detail: e.kind.to_string(),
        });
    }
    for c in &e.causes {
        leaves(c, out);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn violations_name_the_field() {
        let cache = SchemaCache::default();
        let schema = json!({
            "type": "object",
            "properties": {"amount": {"type": "integer", "maximum": 100}},
            "required": ["amount"],
            "additionalProperties": false
        });
        assert!(cache.violations(&schema, &json!({"amount": 5})).is_empty());
        let v = cache.violations(&schema, &json!({"amount": 500}));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pointer, "/arguments/amount");
        let v = cache.violations(&schema, &json!({"extra": 1}));
        assert_eq!(v.len(), 2, "{v:?}");
    }

    #[test]
    fn external_references_are_refused() {
        for r in ["file:///etc/passwd", "https://example.com/schema.json"] {
            let err = check(&json!({"$ref": r})).unwrap_err();
            assert!(err.contains("may only reference itself"), "{err}");
        }
        assert!(check(&json!({"type": "no-such-type"})).is_err());
    }
}
