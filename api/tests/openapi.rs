//! `openapi/openapi.json` is the generated document, byte for byte.
//! Regenerate it with `UPDATE_OPENAPI=1 cargo test -p aura-api --test integration openapi::`.

#[test]
fn the_checked_in_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let generated = aura_api::http::openapi::document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
        return;
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi/openapi.json is stale: regenerate it with `UPDATE_OPENAPI=1 cargo test -p aura-api --test integration openapi::` and commit it"
    );
}

/// Every operation lists the problems any request to it can meet, not
/// only its own: an unreadable request (400), no key (401), a key without
/// the role or for another tenant (403, 404), a body that is too large,
/// of another type or invalid (413, 415, 422), a reused idempotency key
/// (409, 422), and an engine that cannot answer (503).
#[test]
fn every_operation_documents_the_problems_any_request_can_meet() {
    let doc: serde_json::Value =
        serde_json::from_str(&aura_api::http::openapi::document()).expect("the document is JSON");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/v1/") {
            continue;
        }
        for (method, op) in item.as_object().expect("a path item") {
            let documented = op["responses"].as_object().expect("responses");
            let mut wanted = vec!["400", "503"];
            if path != "/v1/gateway/tool-calls" {
                wanted.push("401");
            }
            if path.starts_with("/v1/tenants") {
                wanted.push("403");
            }
            if path.starts_with("/v1/tenants/{tenant}") {
                wanted.push("404");
            }
            if op.get("requestBody").is_some() {
                wanted.extend(["413", "415", "422"]);
            }
            if method == "post" && path != "/v1/gateway/tool-calls" {
                wanted.extend(["409", "422"]);
            }
            let if_match = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "If-Match"));
            if if_match {
                wanted.extend(["412", "428"]);
            }
            for status in wanted {
                let r = &documented
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path} does not document {status}"));
                let schema = &r["content"]["application/problem+json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/Problem",
                    "{method} {path} {status} is a problem"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 60, "only {checked} operations");
}

/// Where the API takes or gives arbitrary JSON by design, as
/// (component, property): everything else is typed, so a generated client
/// has a type for it and a fuzzer sends what the server means.
const FREE_FORM: &[(&str, &str, &str)] = &[
    (
        "ToolCallRequest",
        "arguments",
        "a tool's arguments: its own input_schema says what they are",
    ),
    ("PlanStep", "arguments", "a tool's arguments"),
    ("ParameterRules", "fixed", "argument values a token pins"),
    (
        "MissionContext",
        "inputs",
        "a mission's inputs, for its agent",
    ),
    (
        "Frozen_MissionContext",
        "inputs",
        "a mission's inputs, as frozen at launch",
    ),
    (
        "MissionStateData",
        "entries",
        "the values an agent keeps with its mission",
    ),
    ("CallResult", "output", "a tool's output"),
    (
        "StepOutcome",
        "output",
        "a tool's output, reported by the agent that ran it",
    ),
    (
        "MissionOutcome",
        "result",
        "a mission's result, as its agent gives it",
    ),
    (
        "Assignment",
        "progress",
        "a worker's own notes on how far it got",
    ),
    (
        "ExecutionView",
        "progress",
        "a worker's own notes on how far it got",
    ),
    (
        "HeartbeatRequest",
        "progress",
        "a worker's own notes on how far it got",
    ),
    (
        "ToolInvocation",
        "input_schema",
        "a JSON Schema, which is itself a JSON object",
    ),
    (
        "TestCase",
        "context",
        "the Cedar context of a test request, as the bundle's schema says",
    ),
    (
        "Payload",
        "",
        "the audited event, checked byte for byte against its digest",
    ),
];

/// Schemas that say nothing of their content: an object with no
/// properties, or no schema at all.
fn untyped(v: &serde_json::Value, at: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    match v {
        serde_json::Value::Object(m) => {
            let object = m.get("type").is_some_and(|t| {
                t == "object"
                    || t.as_array()
                        .is_some_and(|ts| ts.iter().any(|t| t == "object"))
            });
            let described = [
                "properties",
                "additionalProperties",
                "oneOf",
                "anyOf",
                "allOf",
                "$ref",
            ]
            .iter()
            .any(|k| m.contains_key(*k));
            let empty = m.is_empty() && at.last().is_some_and(|k| k != "api_key");
            if (object && !described) || empty {
                found.push(at.clone());
            }
            for (k, x) in m {
                at.push(k.clone());
                untyped(x, at, found);
                at.pop();
            }
        }
        serde_json::Value::Array(xs) => {
            for (i, x) in xs.iter().enumerate() {
                at.push(i.to_string());
                untyped(x, at, found);
                at.pop();
            }
        }
        _ => {}
    }
}

#[test]
fn every_schema_is_typed_except_where_any_json_is_the_point() {
    let doc: serde_json::Value =
        serde_json::from_str(&aura_api::http::openapi::document()).expect("the document is JSON");
    let mut found = Vec::new();
    untyped(&doc, &mut Vec::new(), &mut found);
    let allowed = |at: &[String]| {
        let component = match at {
            [c, s, name, ..] if c == "components" && s == "schemas" => name.as_str(),
            _ => return false,
        };
        let property = at
            .iter()
            .rposition(|k| k == "properties")
            .and_then(|i| at.get(i + 1))
            .map_or("", String::as_str);
        FREE_FORM
            .iter()
            .any(|(c, p, _)| *c == component && *p == property)
    };
    let untyped: Vec<String> = found
        .iter()
        .filter(|at| !allowed(at))
        .map(|at| format!("/{}", at.join("/")))
        .collect();
    assert!(
        untyped.is_empty(),
        "these schemas are untyped objects: give them a type, or add them to FREE_FORM with the reason:\n{}",
        untyped.join("\n")
    );
}

/// Every `$ref` names a schema the document holds: a type used only in a
/// path parameter is not collected by itself.
#[test]
fn every_reference_resolves() {
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc: serde_json::Value =
        serde_json::from_str(&aura_api::http::openapi::document()).expect("the document is JSON");
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 100);
    for r in found {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} is not a schema reference"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
}
