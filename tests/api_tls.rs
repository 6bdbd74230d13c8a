//! The API's own transport: TLS with HSTS when given a certificate, and a
//! loud warning when served in plain HTTP beyond loopback.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use aura_raft::testkit::free_port;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn serve(data: &std::path::Path, listen: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_aura"))
        .arg("serve")
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", listen])
        .args(["--cluster-listen", &format!("127.0.0.1:{}", free_port())])
        .args(extra)
        .env("AURA_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The first line of `child`'s stdout that contains `what`.
fn line_with(child: &mut Child, what: &str) -> String {
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines() {
        let line = line.unwrap();
        if line.contains(what) {
            return line;
        }
    }
    panic!("aura serve ended without printing `{what}`");
}

/// One HTTP/1.1 request over TLS, trusting only `ca`; the raw answer.
async fn https_get(
    port: u16,
    ca: &rustls::pki_types::CertificateDer<'static>,
    path: &str,
) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap_or_default();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_speaks_tls_with_hsts_when_given_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let port = free_port();
    let mut child = serve(
        &dir.path().join("data"),
        &format!("127.0.0.1:{port}"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let ready = line_with(&mut child, "ready in");
    assert!(
        ready.contains(&format!("https://127.0.0.1:{port}")),
        "{ready}"
    );

    let ca = certified.cert.der().clone();
    let answer = https_get(port, &ca, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{answer}"
    );
    // Plain HTTP on the TLS port gets no answer from the API.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // A client that opens a connection and never says hello does not stop
    // others from being served.
    let _stalled = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let answer = https_get(port, &ca, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn plain_http_beyond_loopback_is_announced_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = serve(
        &dir.path().join("data"),
        &format!("0.0.0.0:{}", free_port()),
        &[],
    );
    let err = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            if line.starts_with("WARNING:") {
                let _ = tx.send(line);
            }
        }
    });
    let warned = rx.recv_timeout(Duration::from_secs(30));
    child.kill().unwrap();
    child.wait().unwrap();
    let warned = warned.expect("a warning on stderr");
    assert!(warned.contains("over plain HTTP"), "{warned}");
    assert!(warned.contains("--tls-cert"), "{warned}");

    // On loopback, the embedded default, nothing is said.
    let mut child = serve(
        &dir.path().join("data-2"),
        &format!("127.0.0.1:{}", free_port()),
        &[],
    );
    line_with(&mut child, "ready in");
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("WARNING:"), "{stderr}");
}
