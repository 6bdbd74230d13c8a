//! `openapi/openapi.json` is the generated document, byte for byte.
//! Regenerate it with `UPDATE_OPENAPI=1 cargo test -p aura-api --test integration openapi::`.

#[test]
fn the_checked_in_openapi_document_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let generated = aura_api::openapi::document();
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
