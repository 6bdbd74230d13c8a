//! An audit entry's payload, kept as the JSON text it was written as.
//!
//! A payload is written once, when its entry is made, and after that only
//! stored, copied into snapshots and exports, and now and then read. So
//! it is held as text: committing an entry writes the JSON once and
//! digests the canonical bytes of the same events' JSON form
//! ([`canonical::to_bytes_as_json`]), where it
//! used to build a `serde_json::Value`, digest it, measure its JSON and
//! write that JSON again when the entry's segment was sealed.
//!
//! What the digest commits to is unchanged: the canonical encoding of the
//! payload's JSON form, whatever its spelling. In the canonical encoding
//! of the state (the state digest), a payload is that same JSON form, so
//! the state digest is the one a `Value` payload gave. A payload encoded
//! here keeps those canonical bytes while its entry is unsealed, so the
//! state digest does not parse the text back.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::audit::chain::PAYLOAD_DOMAIN;
use crate::canonical::{self, CanonicalError, Encoded};
use crate::digest::Digest;

/// The JSON text of an audit entry's payload.
#[derive(Clone, Debug)]
pub struct Payload {
    text: Box<RawValue>,
    /// The canonical bytes of the text's JSON value, when the payload was
    /// encoded here rather than read back. They are on hand when its
    /// digest is taken, and kept while the entry is in the chain's open
    /// segment: the state digest encodes those payloads at every snapshot,
    /// where parsing each text back into a value cost as much as the rest
    /// of a tenant's state. Sealing drops them with the record.
    encoded: Option<Box<[u8]>>,
}

impl Payload {
    /// The payload recording `value`, and its digest.
    pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<(Payload, Digest), CanonicalError> {
        let encoded = canonical::to_bytes_as_json(value)?;
        let digest = canonical::digest_encoded(PAYLOAD_DOMAIN, &encoded);
        let text = serde_json::value::to_raw_value(value)
            .map_err(|e| CanonicalError::Custom(e.to_string()))?;
        let payload = Payload {
            text,
            encoded: Some(encoded.into_boxed_slice()),
        };
        Ok((payload, digest))
    }

    /// The payload holding `value` as it is (for tools and tests that
    /// build or alter records by hand).
    pub fn of_value(value: &Value) -> Payload {
        Payload::of_text(serde_json::value::to_raw_value(value).expect("a JSON value writes"))
    }

    fn of_text(text: Box<RawValue>) -> Payload {
        Payload {
            text,
            encoded: None,
        }
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.text.get()
    }

    /// The size of the JSON text in bytes: what an entry counts for in
    /// its mission's run.
    pub fn json_len(&self) -> u64 {
        self.text.get().len() as u64
    }

    /// The payload read as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.text.get())
    }

    /// The payload as a JSON value.
    pub fn to_value(&self) -> Value {
        self.decode()
            .expect("a payload holds JSON: it was written or read as JSON")
    }

    /// The digest the payload's entry must carry, from the text: what a
    /// verifier computes.
    pub fn digest(&self) -> Result<Digest, CanonicalError> {
        canonical::digest(PAYLOAD_DOMAIN, &self.to_value())
    }
}

/// Two payloads are equal when their text is.
impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.text.get() == other.text.get()
    }
}

impl Eq for Payload {}

/// As JSON, the text as it is; in the canonical encoding, the JSON value
/// the text holds.
impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            self.text.serialize(s)
        } else if let Some(encoded) = &self.encoded {
            Encoded(encoded).serialize(s)
        } else {
            self.to_value().serialize(s)
        }
    }
}

/// Read from JSON only, keeping the text.
impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if !d.is_human_readable() {
            return Err(D::Error::custom("audit payloads are read from JSON only"));
        }
        Box::<RawValue>::deserialize(d).map(Payload::of_text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "event", rename_all = "snake_case")]
    enum Sample {
        Made {
            name: String,
            n: i64,
            tags: Vec<String>,
        },
        Dropped,
    }

    #[test]
    fn a_payload_is_the_json_of_what_it_records_with_the_digest_of_that_json() {
        let events = vec![
            Sample::Made {
                name: "x".into(),
                n: -3,
                tags: vec!["a".into()],
            },
            Sample::Dropped,
        ];
        let (payload, digest) = Payload::encode(&events).unwrap();
        let value = serde_json::to_value(&events).unwrap();
        assert_eq!(payload.get(), value.to_string());
        assert_eq!(payload.json_len(), value.to_string().len() as u64);
        assert_eq!(payload.to_value(), value);
        assert_eq!(digest, canonical::digest(PAYLOAD_DOMAIN, &value).unwrap());
        assert_eq!(payload.digest().unwrap(), digest);
        // In the canonical encoding, the bytes kept from encoding are the
        // value's, as are those of the same text read back.
        let read_back: Payload = serde_json::from_str(payload.get()).unwrap();
        assert!(payload.encoded.is_some() && read_back.encoded.is_none());
        let bytes = canonical::to_bytes(&value).unwrap();
        assert_eq!(canonical::to_bytes(&payload).unwrap(), bytes);
        assert_eq!(canonical::to_bytes(&read_back).unwrap(), bytes);
    }

    #[test]
    fn json_carries_the_text_and_the_canonical_encoding_the_value() {
        let spelled = r#"[ {"b": 1, "a": [true, null]} ]"#;
        let payload: Payload = serde_json::from_str(spelled).unwrap();
        assert_eq!(payload.get(), spelled);
        assert_eq!(serde_json::to_string(&payload).unwrap(), spelled);
        let value = json!([{"a": [true, null], "b": 1}]);
        assert_eq!(
            canonical::to_bytes(&payload).unwrap(),
            canonical::to_bytes(&value).unwrap()
        );
        assert_eq!(
            payload.digest().unwrap(),
            Payload::encode(&value).unwrap().1
        );
    }
}
