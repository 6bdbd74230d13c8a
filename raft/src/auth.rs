//! Peer authentication: every request on the cluster listener carries an
//! HMAC-SHA256, under the shared cluster secret, over the method, path,
//! sending node, time and body digest. A request without a valid MAC, or
//! stamped outside the allowed clock window, is refused and logged.
//!
//! A captured request could be replayed within the window; Raft messages
//! are idempotent under their term and index, and proposals are refused by
//! the engine when their effect already happened, so the window bounds an
//! attacker on the wire to repeating what a peer already said.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};

use crate::types::NodeId;

pub const HEADER_NODE: &str = "x-aura-node";
pub const HEADER_TIME: &str = "x-aura-time";
pub const HEADER_MAC: &str = "x-aura-mac";
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
}

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

    fn mac(
        &self,
        method: &str,
        path: &str,
        node: NodeId,
        time_ms: i64,
        body: &[u8],
    ) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"aura-cluster/1\n");
        mac.update(method.as_bytes());
        mac.update(b"\n");
        mac.update(path.as_bytes());
        mac.update(format!("\n{node}\n{time_ms}\n").as_bytes());
        mac.update(&Sha256::digest(body));
        mac
    }

    /// The three header values for a request.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        node: NodeId,
        time_ms: i64,
        body: &[u8],
    ) -> [(&'static str, String); 3] {
        let tag = self
            .mac(method, path, node, time_ms, body)
            .finalize()
            .into_bytes();
        [
            (HEADER_NODE, node.to_string()),
            (HEADER_TIME, time_ms.to_string()),
            (HEADER_MAC, STANDARD.encode(tag)),
        ]
    }

    /// Checks a request; returns the node that sent it.
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        header: impl Fn(&'static str) -> Option<String>,
        body: &[u8],
        now_ms: i64,
    ) -> Result<NodeId, AuthError> {
        let get = |name| header(name).ok_or(AuthError::Missing(name));
        let node: NodeId = get(HEADER_NODE)?
            .parse()
            .map_err(|_| AuthError::Malformed(HEADER_NODE))?;
        let time_ms: i64 = get(HEADER_TIME)?
            .parse()
            .map_err(|_| AuthError::Malformed(HEADER_TIME))?;
        let tag = STANDARD
            .decode(get(HEADER_MAC)?)
            .map_err(|_| AuthError::Malformed(HEADER_MAC))?;
        // The MAC is checked before the clock so that a stranger learns
        // nothing about our clock.
        self.mac(method, path, node, time_ms, body)
            .verify_slice(&tag)
            .map_err(|_| AuthError::BadMac)?;
        let skew_ms = now_ms - time_ms;
        if skew_ms.abs() > MAX_SKEW_MS {
            return Err(AuthError::Skew { skew_ms });
        }
        Ok(node)
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

    fn headers<'a>(
        h: &'a [(&'static str, String); 3],
    ) -> impl Fn(&'static str) -> Option<String> + 'a {
        move |name| h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn a_signed_request_verifies_and_names_its_sender() {
        let s = ClusterSecret::random();
        let h = s.sign("POST", "/raft/vote", 3, 1_000, b"body");
        assert_eq!(
            s.verify("POST", "/raft/vote", headers(&h), b"body", 1_500),
            Ok(3)
        );
    }

    #[test]
    fn any_change_or_another_secret_is_refused() {
        let s = ClusterSecret::random();
        let h = s.sign("POST", "/raft/vote", 3, 1_000, b"body");
        assert_eq!(
            s.verify("POST", "/raft/vote", headers(&h), b"bodY", 1_000),
            Err(AuthError::BadMac)
        );
        assert_eq!(
            s.verify("POST", "/raft/append", headers(&h), b"body", 1_000),
            Err(AuthError::BadMac)
        );
        let other = ClusterSecret::random();
        assert_eq!(
            other.verify("POST", "/raft/vote", headers(&h), b"body", 1_000),
            Err(AuthError::BadMac)
        );
        let mut forged = h.clone();
        forged[0].1 = "4".into();
        assert_eq!(
            s.verify("POST", "/raft/vote", headers(&forged), b"body", 1_000),
            Err(AuthError::BadMac)
        );
        assert_eq!(
            s.verify("POST", "/raft/vote", |_| None, b"body", 1_000),
            Err(AuthError::Missing(HEADER_NODE))
        );
    }

    #[test]
    fn stale_requests_are_refused() {
        let s = ClusterSecret::random();
        let h = s.sign("POST", "/raft/vote", 3, 1_000, b"");
        assert!(matches!(
            s.verify(
                "POST",
                "/raft/vote",
                headers(&h),
                b"",
                1_000 + MAX_SKEW_MS + 1
            ),
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
