//! A tenant's execution tokens by id, each with its text kept
//! ([`KeptText`]).
//!
//! A token is only ever added, never changed or removed, so its text is
//! made once, when it is added, and every snapshot after shares it. In
//! JSON the map is written from those texts; in the canonical encoding,
//! which the state digest reads, it is the tokens themselves, as it
//! always was.

use std::collections::BTreeMap;
use std::ops::Index;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::identity::token::ExecutionToken;
use crate::ids::TokenId;
use crate::machine::kept_text::KeptText;

#[derive(Clone, Default)]
pub struct Tokens(BTreeMap<TokenId, Issued>);

/// A token with the text it is kept as.
#[derive(Clone)]
struct Issued {
    token: ExecutionToken,
    text: Arc<KeptText>,
}

impl Tokens {
    /// Adds `token` under `id`; a token already there is never replaced
    /// (issuing refuses an id in use), so neither is its text.
    pub(crate) fn insert(&mut self, id: TokenId, token: ExecutionToken) {
        debug_assert!(!self.0.contains_key(&id), "tokens are never replaced");
        let text = KeptText::of(&token);
        self.0.insert(id, Issued { token, text });
    }

    pub fn get(&self, id: &TokenId) -> Option<&ExecutionToken> {
        self.0.get(id).map(|i| &i.token)
    }

    pub fn contains_key(&self, id: &TokenId) -> bool {
        self.0.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tokens by id, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&TokenId, &ExecutionToken)> {
        self.0.iter().map(|(id, i)| (id, &i.token))
    }

    pub fn values(&self) -> impl Iterator<Item = &ExecutionToken> {
        self.0.values().map(|i| &i.token)
    }

    /// The kept texts, in the map's order.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &Arc<KeptText>> {
        self.0.values().map(|i| &i.text)
    }
}

impl From<BTreeMap<TokenId, ExecutionToken>> for Tokens {
    fn from(tokens: BTreeMap<TokenId, ExecutionToken>) -> Tokens {
        let mut all = Tokens::default();
        for (id, token) in tokens {
            all.insert(id, token);
        }
        all
    }
}

impl Index<&TokenId> for Tokens {
    type Output = ExecutionToken;
    fn index(&self, id: &TokenId) -> &ExecutionToken {
        self.get(id).expect("no token with that id")
    }
}

/// The texts are not part of the state: equal tokens are equal maps.
impl PartialEq for Tokens {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// In JSON the map is written from the kept texts; in the canonical
/// encoding it is the tokens themselves, as a map of them encodes.
impl Serialize for Tokens {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let readable = s.is_human_readable();
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (id, issued) in &self.0 {
            if readable {
                map.serialize_entry(id, &issued.text.json)?;
            } else {
                map.serialize_entry(id, &issued.token)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(d).map(Tokens::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{WorkloadShape, state_after};

    #[test]
    fn tokens_are_written_from_their_texts_as_they_would_be_themselves() {
        let state = state_after(4, WorkloadShape::default());
        let t = state.tenants().next().expect("a tenant");
        assert!(t.tokens().len() >= 10);
        let themselves: BTreeMap<&TokenId, &ExecutionToken> = t.tokens.iter().collect();
        let from_texts = serde_json::to_string(&t.tokens).unwrap();
        assert_eq!(from_texts, serde_json::to_string(&themselves).unwrap());
        for (text, token) in t.tokens.texts().zip(t.tokens.values()) {
            assert_eq!(text.json.get(), serde_json::to_string(token).unwrap());
        }
    }

    /// The state digest reads tokens as the plain map they were before
    /// they kept their texts.
    #[test]
    fn tokens_encode_canonically_as_the_map_of_them() {
        let state = state_after(4, WorkloadShape::default());
        let t = state.tenants().next().expect("a tenant");
        let themselves: BTreeMap<&TokenId, &ExecutionToken> = t.tokens.iter().collect();
        assert_eq!(
            crate::canonical::to_bytes(&t.tokens).unwrap(),
            crate::canonical::to_bytes(&themselves).unwrap()
        );
    }
}
