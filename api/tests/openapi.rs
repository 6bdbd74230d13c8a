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
