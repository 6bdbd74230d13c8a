//! `Frozen<T>`: a value sealed with its digest when a mission launches.
//! There is no way to get a mutable reference to the value, and a frozen
//! value read back from a snapshot must still match its digest.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::canonical::{self, CanonicalError, Domain};
use crate::digest::Digest;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Frozen<T> {
    value: T,
    digest: Digest,
}

/// Types that can be frozen name the domain their digest is taken in.
pub trait Freezable: Serialize {
    const DOMAIN: Domain;
}

impl<T: Freezable> Frozen<T> {
    pub fn freeze(value: T) -> Result<Frozen<T>, CanonicalError> {
        let digest = canonical::digest(T::DOMAIN, &value)?;
        Ok(Frozen { value, digest })
    }

    pub fn get(&self) -> &T {
        &self.value
    }

    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Whether the value still matches the digest it was frozen with.
    pub fn is_intact(&self) -> bool {
        canonical::digest(T::DOMAIN, &self.value).is_ok_and(|d| d == self.digest)
    }
}

impl<'de, T: Freezable + DeserializeOwned> Deserialize<'de> for Frozen<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw<T> {
            value: T,
            digest: Digest,
        }
        let raw: Raw<T> = Raw::deserialize(d)?;
        let frozen = Frozen {
            value: raw.value,
            digest: raw.digest,
        };
        if !frozen.is_intact() {
            return Err(serde::de::Error::custom(
                "frozen value does not match its digest",
            ));
        }
        Ok(frozen)
    }
}
