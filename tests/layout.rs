//! The dependency direction of `aura-api`, as docs/architecture.md draws
//! it: the application layer, the runtime, the gateway, the egress policy
//! and the store know nothing of HTTP; only `api/src/http/` does.

use std::path::Path;

/// What marks code as the HTTP edge's.
const EDGE: &[&str] = &["axum", "crate::http", "Problem"];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_the_http_edge_knows_http() {
    let api = Path::new(env!("CARGO_MANIFEST_DIR")).join("api/src");
    let mut files = Vec::new();
    for inner in ["app", "runtime", "gateway", "store", "egress"] {
        sources(&api.join(inner), &mut files);
    }
    assert!(files.len() > 20, "the folders moved: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(mark) = EDGE.iter().find(|m| code.contains(*m)) {
                found.push(format!("{}:{}: `{mark}`", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the HTTP edge leaks inward (docs/architecture.md):\n{}",
        found.join("\n")
    );
}
