//! A tenant's execution tokens by id, each with its text kept
//! ([`KeptText`]).
//!
//! A token is only ever added, never changed or removed, so its text is
//! made once, when it is added, and every snapshot after shares it. In
//! JSON the map is written from those texts; in the canonical encoding,
//! which the state digest reads, it is the tokens themselves, as it
//! always was.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::identity::token::ExecutionToken;
use crate::ids::TokenId;
use crate::machine::kept_text::KeptText;

#[derive(Clone, Default)]
pub struct Tokens {
    tokens: BTreeMap<TokenId, ExecutionToken>,
    texts: BTreeMap<TokenId, Arc<KeptText>>,
}

impl Tokens {
    /// Adds `token` under `id`; a token already there is never replaced
    /// (issuing refuses an id in use), so neither is its text.
    pub(crate) fn insert(&mut self, id: TokenId, token: ExecutionToken) {
        debug_assert!(!self.tokens.contains_key(&id), "tokens are never replaced");
        self.texts.insert(id.clone(), KeptText::of(&token));
        self.tokens.insert(id, token);
    }

    /// The kept texts, in the map's order.
    pub(crate) fn texts(&self) -> impl Iterator<Item = &Arc<KeptText>> {
        self.texts.values()
    }
}

impl From<BTreeMap<TokenId, ExecutionToken>> for Tokens {
    fn from(tokens: BTreeMap<TokenId, ExecutionToken>) -> Tokens {
        let texts = tokens
            .iter()
            .map(|(id, t)| (id.clone(), KeptText::of(t)))
            .collect();
        Tokens { tokens, texts }
    }
}

impl Deref for Tokens {
    type Target = BTreeMap<TokenId, ExecutionToken>;
    fn deref(&self) -> &Self::Target {
        &self.tokens
    }
}

/// The texts are not part of the state: equal tokens are equal maps.
impl PartialEq for Tokens {
    fn eq(&self, other: &Self) -> bool {
        self.tokens == other.tokens
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.tokens.fmt(f)
    }
}

impl Serialize for Tokens {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return self.tokens.serialize(s);
        }
        let mut map = s.serialize_map(Some(self.texts.len()))?;
        for (id, text) in &self.texts {
            map.serialize_entry(id, &text.json)?;
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
    use crate::sim::{WorkloadShape, state_after};

    #[test]
    fn tokens_are_written_from_their_texts_as_they_would_be_themselves() {
        let state = state_after(4, WorkloadShape::default());
        let t = state.tenants().next().expect("a tenant");
        assert!(t.tokens().len() >= 10);
        let from_texts = serde_json::to_string(&t.tokens).unwrap();
        let themselves = serde_json::to_string(&*t.tokens).unwrap();
        assert_eq!(from_texts, themselves);
        for (text, token) in t.tokens.texts().zip(t.tokens.values()) {
            assert_eq!(text.json.get(), serde_json::to_string(token).unwrap());
        }
    }
}
