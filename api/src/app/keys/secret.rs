//! The API key format: `aura_<id>_<secret>`. The id (16 hex digits) is
//! public and names the key in listings and logs; the secret (32 random
//! bytes, base64url) is shown once and only its SHA-256 is stored. A
//! 256-bit random secret needs no slow hash: there is nothing to guess.

use aura_engine::Digest;
use aura_engine::directory::KeyId;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const PREFIX: &str = "aura_";

/// A newly minted key: the only time the full text exists.
#[derive(Clone)]
pub struct MintedKey {
    pub id: KeyId,
    pub secret_hash: Digest,
    pub text: String,
}

impl std::fmt::Debug for MintedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MintedKey({})", self.id)
    }
}

pub fn mint() -> MintedKey {
    let id = KeyId::new(crate::random::hex(8)).expect("16 lowercase hex digits are a key id");
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("the OS random source works");
    let secret = URL_SAFE_NO_PAD.encode(secret);
    MintedKey {
        secret_hash: hash_secret(&secret),
        text: format!("{PREFIX}{id}_{secret}"),
        id,
    }
}

pub fn hash_secret(secret: &str) -> Digest {
    Digest::of(secret.as_bytes())
}

/// Splits presented key text into (id, secret); `None` if it is not a key.
pub fn parse(text: &str) -> Option<(KeyId, &str)> {
    let (id, secret) = text.strip_prefix(PREFIX)?.split_once('_')?;
    let id = KeyId::new(id).ok()?;
    (!secret.is_empty() && secret.len() <= 64).then_some((id, secret))
}

/// Compares two hashes without an early exit, so response time says
/// nothing about how much of a guess matched.
pub fn hashes_match(a: &Digest, b: &Digest) -> bool {
    a.as_bytes()
        .iter()
        .zip(b.as_bytes())
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
