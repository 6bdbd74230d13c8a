//! Peer authentication on the cluster link, under the shared cluster
//! secret (HMAC-SHA256):
//!
//! - A request's MAC covers the method, path, sending node, time, a
//!   random nonce and the SHA-256 of the body, all in headers. The
//!   listener checks it, the clock window and the nonce's first use
//!   **before it reads any of the body**, then reads the body and checks
//!   its digest. A stranger is refused having sent headers only, and a
//!   captured request sent again is refused as a replay.
//! - A response's MAC covers the request's MAC, the status and the
//!   SHA-256 of the body, so the caller trusts no answer (a vote, an
//!   append result) that the peer it asked did not give to that very
//!   request.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

use crate::types::NodeId;

pub const HEADER_NODE: &str = "x-aura-node";
pub const HEADER_TIME: &str = "x-aura-time";
pub const HEADER_NONCE: &str = "x-aura-nonce";
pub const HEADER_BODY: &str = "x-aura-body-sha256";
pub const HEADER_MAC: &str = "x-aura-mac";
pub const HEADER_RESPONSE_MAC: &str = "x-aura-response-mac";
/// How far a peer's clock may be from ours.
pub const MAX_SKEW_MS: i64 = 30_000;
const MIN_SECRET_BYTES: usize = 32;

/// The shared secret of a cluster. Never printed.
#[derive(Clone)]
pub struct ClusterSecret(Vec<u8>);

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing header {0}")]
    Missing(&'static str),
    #[error("malformed header {0}")]
    Malformed(&'static str),
    #[error("request time is {skew_ms} ms away from this node's clock (allowed {MAX_SKEW_MS})")]
    Skew { skew_ms: i64 },
    #[error("bad request MAC: the peer does not hold this cluster's secret")]
    BadMac,
    #[error("the body is not the one the request's MAC covers")]
    BodyMismatch,
    #[error("replayed request: its nonce was used before")]
    Replayed,
    #[error(
        "the answer carries no valid response MAC: it is not the peer's answer to this request"
    )]
    BadResponseMac,
}

/// What a request's headers prove, before its body is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub node: NodeId,
    pub time_ms: i64,
    pub nonce: [u8; NONCE_BYTES],
    body: [u8; 32],
    tag: [u8; 32],
}

impl Authenticated {
    /// Checks the body, once read, against the digest the MAC covers.
    pub fn check_body(&self, body: &[u8]) -> Result<(), AuthError> {
        if <[u8; 32]>::from(Sha256::digest(body)) != self.body {
            return Err(AuthError::BodyMismatch);
        }
        Ok(())
    }

    /// The request's MAC, which the response's MAC covers.
    pub fn tag(&self) -> &[u8; 32] {
        &self.tag
    }
}

/// A signed request: the headers to send, and its MAC, which the
/// answer's MAC must cover.
#[derive(Clone, Debug)]
pub struct SignedRequest {
    pub headers: [(&'static str, String); 5],
    pub tag: [u8; 32],
}

pub const NONCE_BYTES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cluster secret file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cluster secret in {path} is too short: at least {MIN_SECRET_BYTES} bytes are required"
    )]
    TooShort { path: String },
}

/// Writes 32 random bytes, as base64 text, into a new file only its owner
/// can read, and returns that text: the secret is the file's text, as
/// every later reader of the file sees it.
pub fn create_secret_file(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).expect("the OS random source works");
    let text = STANDARD.encode(random);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(text.into_bytes())
}

impl ClusterSecret {
    pub fn new(bytes: Vec<u8>) -> Option<ClusterSecret> {
        (bytes.len() >= MIN_SECRET_BYTES).then_some(ClusterSecret(bytes))
    }

    pub fn random() -> ClusterSecret {
        let mut b = vec![0u8; 32];
        getrandom::fill(&mut b).expect("the OS random source works");
        ClusterSecret(b)
    }

    /// Reads a secret file: its bytes, surrounding whitespace removed.
    pub fn read(path: &Path) -> Result<ClusterSecret, SecretError> {
        let shown = path.display().to_string();
        let raw = std::fs::read(path).map_err(|source| SecretError::Io {
            path: shown.clone(),
            source,
        })?;
        let trimmed = raw.trim_ascii().to_vec();
        ClusterSecret::new(trimmed).ok_or(SecretError::TooShort { path: shown })
    }

    /// Writes a new random secret readable only by its owner; a secret that
    /// is already there is read instead.
    pub fn load_or_create(path: &Path) -> Result<ClusterSecret, SecretError> {
        if path.exists() {
            return Self::read(path);
        }
        let text = create_secret_file(path).map_err(|source| SecretError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(ClusterSecret(text))
    }

    /// A 32-byte key for `purpose`, the same on every member: HMAC-SHA256
    /// of the purpose under the secret, under a label no request MAC
    /// starts with, so a derived key is never a MAC anyone can ask for.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"aura derived key v1\n");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn keyed(&self, label: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label);
        mac
    }

    fn request_mac(
        &self,
        method: &str,
        path: &str,
        node: NodeId,
        time_ms: i64,
        nonce: &[u8; NONCE_BYTES],
        body: &[u8; 32],
    ) -> Hmac<Sha256> {
        let mut mac = self.keyed(b"aura-cluster/2\n");
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(path.as_bytes());
        mac.update(format!("\n{node}\n{time_ms}\n").as_bytes());
        mac.update(nonce);
        mac.update(body);
        mac
    }

    /// Signs a request with a fresh nonce.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        node: NodeId,
        time_ms: i64,
        body: &[u8],
    ) -> SignedRequest {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).expect("the OS random source works");
        let digest: [u8; 32] = Sha256::digest(body).into();
        let tag: [u8; 32] = self
            .request_mac(method, path, node, time_ms, &nonce, &digest)
            .finalize()
            .into_bytes()
            .into();
        SignedRequest {
            headers: [
                (HEADER_NODE, node.to_string()),
                (HEADER_TIME, time_ms.to_string()),
                (HEADER_NONCE, STANDARD.encode(nonce)),
                (HEADER_BODY, STANDARD.encode(digest)),
                (HEADER_MAC, STANDARD.encode(tag)),
            ],
            tag,
        }
    }

    /// Checks a request's headers; the body is checked once read
    /// ([`Authenticated::check_body`]), and the nonce's first use by the
    /// listener's [`ReplayGuard`](crate::replay::ReplayGuard).
    pub fn verify_headers(
        &self,
        method: &str,
        path: &str,
        header: impl Fn(&'static str) -> Option<String>,
        now_ms: i64,
    ) -> Result<Authenticated, AuthError> {
        let get = |name| header(name).ok_or(AuthError::Missing(name));
        let bytes = |name, v: String| STANDARD.decode(v).map_err(|_| AuthError::Malformed(name));
        let node: NodeId = get(HEADER_NODE)?
            .parse()
            .map_err(|_| AuthError::Malformed(HEADER_NODE))?;
        let time_ms: i64 = get(HEADER_TIME)?
            .parse()
            .map_err(|_| AuthError::Malformed(HEADER_TIME))?;
        let nonce: [u8; NONCE_BYTES] = bytes(HEADER_NONCE, get(HEADER_NONCE)?)?
            .try_into()
            .map_err(|_| AuthError::Malformed(HEADER_NONCE))?;
        let body: [u8; 32] = bytes(HEADER_BODY, get(HEADER_BODY)?)?
            .try_into()
            .map_err(|_| AuthError::Malformed(HEADER_BODY))?;
        let tag: [u8; 32] = bytes(HEADER_MAC, get(HEADER_MAC)?)?
            .try_into()
            .map_err(|_| AuthError::BadMac)?;
        // The MAC is checked before the clock so that a stranger learns
        // nothing about our clock.
        self.request_mac(method, path, node, time_ms, &nonce, &body)
            .verify_slice(&tag)
            .map_err(|_| AuthError::BadMac)?;
        let skew_ms = now_ms - time_ms;
        if skew_ms.abs() > MAX_SKEW_MS {
            return Err(AuthError::Skew { skew_ms });
        }
        Ok(Authenticated {
            node,
            time_ms,
            nonce,
            body,
            tag,
        })
    }

    fn response_mac(&self, request: &[u8; 32], status: u16, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.keyed(b"aura-cluster-response/1\n");
        mac.update(request);
        mac.update(&status.to_be_bytes());
        mac.update(&Sha256::digest(body));
        mac
    }

    /// The response MAC header's value for an answer to `request`.
    pub fn sign_response(&self, request: &[u8; 32], status: u16, body: &[u8]) -> String {
        let tag = self.response_mac(request, status, body).finalize();
        STANDARD.encode(tag.into_bytes())
    }

    /// Checks that an answer is the peer's to the request whose MAC is
    /// `request`.
    pub fn verify_response(
        &self,
        request: &[u8; 32],
        status: u16,
        header: Option<&str>,
        body: &[u8],
    ) -> Result<(), AuthError> {
        let tag = header
            .and_then(|h| STANDARD.decode(h).ok())
            .ok_or(AuthError::BadResponseMac)?;
        self.response_mac(request, status, body)
            .verify_slice(&tag)
            .map_err(|_| AuthError::BadResponseMac)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(h: &SignedRequest) -> impl Fn(&'static str) -> Option<String> + '_ {
        move |name| {
            h.headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn a_signed_request_verifies_and_names_its_sender() {
        let s = ClusterSecret::random();
        let h = s.sign("POST", "/raft/vote", 3, 1_000, b"body");
        let auth = s
            .verify_headers("POST", "/raft/vote", headers(&h), 1_500)
            .unwrap();
        assert_eq!(auth.node, 3);
        assert_eq!(auth.check_body(b"body"), Ok(()));
        assert_eq!(auth.check_body(b"bodY"), Err(AuthError::BodyMismatch));
        // Two signatures of the same request differ by their nonce.
        let again = s.sign("POST", "/raft/vote", 3, 1_000, b"body");
        assert_ne!(again.tag, h.tag);
    }

    #[test]
    fn any_change_or_another_secret_is_refused() {
        let s = ClusterSecret::random();
        let h = s.sign("POST", "/raft/vote", 3, 1_000, b"body");
        assert_eq!(
            s.verify_headers("POST", "/raft/append", headers(&h), 1_000),
            Err(AuthError::BadMac)
        );
        let other = ClusterSecret::random();
        assert_eq!(
            other.verify_headers("POST", "/raft/vote", headers(&h), 1_000),
            Err(AuthError::BadMac)
        );
        for i in 0..4 {
            let mut forged = h.clone();
            let value = &mut forged.headers[i].1;
            *value = if i < 2 {
                "4".into()
            } else {
                STANDARD.encode(&[7u8; 32][..if i == 2 { NONCE_BYTES } else { 32 }])
            };
            assert_eq!(
                s.verify_headers("POST", "/raft/vote", headers(&forged), 1_000),
                Err(AuthError::BadMac),
                "header {i}"
            );
        }
        assert_eq!(
            s.verify_headers("POST", "/raft/vote", |_| None, 1_000),
            Err(AuthError::Missing(HEADER_NODE))
        );
    }

    #[test]
    fn responses_verify_only_for_their_request_status_and_body() {
        let s = ClusterSecret::random();
        let req = s.sign("POST", "/raft/append", 1, 1_000, b"x");
        let mac = s.sign_response(&req.tag, 200, b"{\"Ok\":\"Success\"}");
        let check = |tag: &[u8; 32], status, header: Option<&str>, body: &[u8]| {
            s.verify_response(tag, status, header, body)
        };
        assert_eq!(
            check(&req.tag, 200, Some(&mac), b"{\"Ok\":\"Success\"}"),
            Ok(())
        );
        let bad = Err(AuthError::BadResponseMac);
        assert_eq!(
            check(&req.tag, 200, Some(&mac), b"{\"Ok\":\"Conflict\"}"),
            bad
        );
        assert_eq!(
            check(&req.tag, 500, Some(&mac), b"{\"Ok\":\"Success\"}"),
            bad
        );
        assert_eq!(check(&req.tag, 200, None, b"{\"Ok\":\"Success\"}"), bad);
        let other = s.sign("POST", "/raft/append", 1, 1_000, b"x");
        assert_eq!(
            check(&other.tag, 200, Some(&mac), b"{\"Ok\":\"Success\"}"),
            bad
        );
    }

    #[test]
    fn stale_requests_are_refused() {
        let s = ClusterSecret::random();
        let h = s.sign("POST", "/raft/vote", 3, 1_000, b"");
        assert!(matches!(
            s.verify_headers("POST", "/raft/vote", headers(&h), 1_000 + MAX_SKEW_MS + 1),
            Err(AuthError::Skew { .. })
        ));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(ClusterSecret::new(vec![1; 31]).is_none());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "short\n").unwrap();
        assert!(matches!(
            ClusterSecret::read(&p),
            Err(SecretError::TooShort { .. })
        ));
    }
}
