//! The API key format: `aura_<id>_<secret>`. The id (16 hex digits) is
//! public and names the key in listings and logs; the secret (32 random
//! bytes, base64url) is shown once and only its SHA-256 is stored. A
//! 256-bit random secret needs no slow hash: there is nothing to guess.

use aura_engine::Digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const PREFIX: &str = "aura_";

/// A newly minted key: the only time the full text exists.
#[derive(Clone)]
pub struct MintedKey {
    pub id: String,
    pub secret_hash: String,
    pub text: String,
}

impl std::fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MintedKey({})", self.id)
    }
}

pub fn mint() -> MintedKey {
    let id = crate::random::hex(8);
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the OS random source works");
    let secret = URL_SAFE_NO_PAD.encode(secret);
    MintedKey {
        secret_hash: hash_secret(&secret),
        text: format!("{PREFIX}{id}_{secret}"),
        id,
    }
}

pub fn hash_secret(secret: &str) -> String {
    Digest::of(secret.as_bytes()).to_hex()
}

/// Splits presented key text into (id, secret); `None` if it is not a key.
pub fn parse(text: &str) -> Option<(&str, &str)> {
    let (id, secret) = text.strip_prefix(PREFIX)?.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && !secret.is_empty() && secret.len() <= 64).then_some((id, secret))
}

/// Compares two hashes without an early exit, so response time says
/// nothing about how much of a guess matched.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_key_parses_back_and_its_secret_matches_the_hash() {
        let k = mint();
        let (id, secret) = parse(&k.text).unwrap();
        assert_eq!(id, k.id);
        assert!(hashes_match(&hash_secret(secret), &k.secret_hash));
        assert!(!hashes_match(&hash_secret("guess"), &k.secret_hash));
    }

    #[test]
    fn text_that_is_not_a_key_is_refused() {
        for t in [
            "",
            "aura_",
            "aura_zz_secret",
            "bearer",
            "aura_0123456789abcdef_",
            "x_0123456789abcdef_s",
        ] {
            assert!(parse(t).is_none(), "{t}");
        }
    }
}
