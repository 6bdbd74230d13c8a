//! Signed checkpoints of a tenant's audit tree, as plain-text signed notes
//! (the C2SP `signed-note` and `tlog-checkpoint` formats), so a third party
//! can check them with any signed-note verifier:
//!
//! ```text
//! aura/acme-corp
//! 1024
//! <base64 root hash>
//! time 2026-11-24T17:50:19.123Z
//!
//! — aura-acme-corp <base64(key id || Ed25519 signature)>
//! ```
//!
//! The signature covers the text above the blank line, newline included.
//! The key id is the first four bytes of SHA-256(name || "\n" || 0x01 ||
//! public key), as the signed-note format defines for Ed25519.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::identity::key_id::SigningKeyId;
use crate::identity::keys::{KeyPair, PublicKey, Signature};
use crate::ids::TenantId;
use crate::time::Timestamp;

const DASH: char = '\u{2014}';

/// The origin line of a tenant's checkpoints.
pub fn origin(tenant: &TenantId) -> String {
    format!("aura/{tenant}")
}

pub use crate::identity::key_id::key_name;

pub fn key_id(name: &str, key: &PublicKey) -> [u8; 4] {
    SigningKeyId::named(name, key).0
}

/// A signed statement of the tree's size and root at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Digest,
    pub time: Timestamp,
    pub key_name: String,
    pub key_id: [u8; 4],
    pub signature: Signature,
}

/// Why a checkpoint note was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckpointError {
    #[error("checkpoint note is malformed: {0}")]
    Malformed(String),
    #[error("checkpoint has no signature by key `{0}`")]
    NoSignatureByKey(String),
    #[error("checkpoint signature does not verify")]
    BadSignature,
}

impl Checkpoint {
    pub fn sign(
        origin: String,
        size: u64,
        root: Digest,
        time: Timestamp,
        key_name: String,
        key: &KeyPair,
    ) -> Checkpoint {
        let body = body_text(&origin, size, &root, time);
        Checkpoint {
            key_id: key_id(&key_name, &key.public()),
            signature: key.sign_raw(body.as_bytes()),
            origin,
            size,
            root,
            time,
            key_name,
        }
    }

    pub fn body(&self) -> String {
        body_text(&self.origin, self.size, &self.root, self.time)
    }

    /// The full signed note.
    pub fn to_note(&self) -> String {
        let mut sig = Vec::with_capacity(68);
        sig.extend_from_slice(&self.key_id);
        sig.extend_from_slice(&self.signature.0);
        format!(
            "{}\n{DASH} {} {}\n",
            self.body(),
            self.key_name,
            B64.encode(sig)
        )
    }

    pub fn verify(&self, key: &PublicKey) -> Result<(), CheckpointError> {
        if self.key_id != key_id(&self.key_name, key) {
            return Err(CheckpointError::NoSignatureByKey(self.key_name.clone()));
        }
        key.verify_raw(self.body().as_bytes(), &self.signature)
            .map_err(|_| CheckpointError::BadSignature)
    }

    /// Parses a note of an AURA tenant, whose signing key is named after
    /// the tenant in its origin line (`aura/<tenant>` is signed by
    /// `aura-<tenant>`).
    pub fn from_note(note: &str) -> Result<Checkpoint, CheckpointError> {
        let origin = note.split('\n').next().unwrap_or_default();
        let tenant = origin.strip_prefix("aura/").ok_or_else(|| {
            CheckpointError::Malformed(format!("origin `{origin}` is not an AURA tenant's"))
        })?;
        Checkpoint::parse_note(note, &format!("aura-{tenant}"))
    }

    /// Parses a note and keeps the signature line by `key_name`.
    pub fn parse_note(note: &str, key_name: &str) -> Result<Checkpoint, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_owned());
        let (body, sigs) = note
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line between text and signatures"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() != 4 {
            return Err(bad("expected origin, size, root and time lines"));
        }
        let origin = lines[0].to_owned();
        if origin.is_empty() {
            return Err(bad("empty origin line"));
        }
        let size: u64 = lines[1]
            .parse()
            .map_err(|_| bad("size line is not a decimal number"))?;
        if lines[1] != size.to_string() {
            return Err(bad("size line is not in canonical decimal form"));
        }
        let root_bytes = B64
            .decode(lines[2])
            .map_err(|_| bad("root line is not base64"))?;
        let root = Digest(
            root_bytes
                .try_into()
                .map_err(|_| bad("root hash is not 32 bytes"))?,
        );
        let time_text = lines[3]
            .strip_prefix("time ")
            .ok_or_else(|| bad("fourth line must be `time <RFC 3339>`"))?;
        let time = parse_rfc3339_millis(time_text).ok_or_else(|| bad("time is not RFC 3339"))?;

        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix(DASH).and_then(|r| r.strip_prefix(' ')) else {
                return Err(bad("signature lines start with an em dash and a space"));
            };
            let (name, sig) = rest
                .split_once(' ')
                .ok_or_else(|| bad("signature line needs a key name and a signature"))?;
            if name != key_name {
                continue;
            }
            let raw = B64
                .decode(sig)
                .map_err(|_| bad("signature is not base64"))?;
            if raw.len() != 68 {
                return Err(bad("Ed25519 signature lines hold 4 + 64 bytes"));
            }
            let mut signature = [0u8; 64];
            signature.copy_from_slice(&raw[4..]);
            return Ok(Checkpoint {
                origin,
                size,
                root,
                time,
                key_name: name.to_owned(),
                key_id: [raw[0], raw[1], raw[2], raw[3]],
                signature: Signature(signature),
            });
        }
        Err(CheckpointError::NoSignatureByKey(key_name.to_owned()))
    }
}

fn body_text(origin: &str, size: u64, root: &Digest, time: Timestamp) -> String {
    format!(
        "{origin}\n{size}\n{}\ntime {}\n",
        B64.encode(root.as_bytes()),
        time.to_rfc3339()
    )
}

/// Parses exactly the form [`Timestamp::to_rfc3339`] writes.
fn parse_rfc3339_millis(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let t = Timestamp((((days * 24 + h) * 60 + mi) * 60 + sec) * 1000 + ms);
    // Reject dates such as Feb 30 that normalise to another day.
    (t.to_rfc3339() == s).then_some(t)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (KeyPair, Checkpoint) {
        let key = KeyPair::from_seed([9; 32]);
        let tenant = TenantId::new("acme").unwrap();
        let cp = Checkpoint::sign(
            origin(&tenant),
            42,
            Digest::of(b"root"),
            Timestamp(1_795_542_619_123),
            key_name(&tenant),
            &key,
        );
        (key, cp)
    }

    #[test]
    fn note_round_trips_and_verifies() {
        let (key, cp) = sample();
        let note = cp.to_note();
        assert!(note.starts_with("aura/acme\n42\n"));
        assert!(note.contains("time 2026-11-24T17:50:19.123Z\n\n\u{2014} aura-acme "));
        let parsed = Checkpoint::parse_note(&note, "aura-acme").unwrap();
        assert_eq!(parsed, cp);
        parsed.verify(&key.public()).unwrap();
    }

    #[test]
    fn edited_notes_fail() {
        let (key, cp) = sample();
        let note = cp.to_note();
        let edited = note.replacen("\n42\n", "\n43\n", 1);
        let parsed = Checkpoint::parse_note(&edited, "aura-acme").unwrap();
        assert_eq!(
            parsed.verify(&key.public()),
            Err(CheckpointError::BadSignature)
        );
        let other = KeyPair::from_seed([8; 32]);
        assert_eq!(
            cp.verify(&other.public()),
            Err(CheckpointError::NoSignatureByKey("aura-acme".into()))
        );
        assert!(Checkpoint::parse_note(&note, "someone-else").is_err());
        assert!(Checkpoint::parse_note("garbage", "aura-acme").is_err());
        assert!(
            Checkpoint::parse_note(&note.replace("2026-11-24", "2026-02-30"), "aura-acme").is_err()
        );
    }
}
