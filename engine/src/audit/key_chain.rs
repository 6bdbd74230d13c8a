//! Following a tenant's signing keys through its audit chain, as the
//! export verifier does: which key must have signed each checkpoint, and
//! whether the keys the export's header lists are the ones the chain
//! records.

use serde::Deserialize;

use crate::audit::chain::AuditEntry;
use crate::audit::checkpoint::{self, Checkpoint};
use crate::audit::export::Failure;
use crate::audit::payload::Payload;
use crate::identity::key_id::SigningKeyId;
use crate::identity::keys::PublicKey;

/// The entry kinds whose events name a key.
const CREATE_KIND: &str = "tenant.create";
const ROTATE_KIND: &str = "tenant.signing_key_rotate";

/// The events of a key-naming entry, as far as keys go.
#[derive(Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum KeyEvent {
    TenantCreated {
        public_key: PublicKey,
    },
    SigningKeyRotated {
        previous: PublicKey,
        public_key: PublicKey,
    },
    #[serde(other)]
    Other,
}

pub(super) struct KeyChain {
    keys: Vec<PublicKey>,
    key_name: String,
    in_force: usize,
    /// The sequence number of a rotation entry no checkpoint covers yet.
    pending: Option<u64>,
}

impl KeyChain {
    /// `keys` as the header lists them, oldest first (never empty).
    pub(super) fn new(keys: Vec<PublicKey>, key_name: String) -> KeyChain {
        KeyChain {
            keys,
            key_name,
            in_force: 0,
            pending: None,
        }
    }

    pub(super) fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The header's key whose id `cp` names, if any.
    pub(super) fn key_of(&self, cp: &Checkpoint) -> Option<&PublicKey> {
        self.keys
            .iter()
            .find(|k| checkpoint::key_id(&cp.key_name, k) == cp.key_id)
    }

    /// Takes note of an entry whose hash and link checked out.
    pub(super) fn saw_entry(
        &mut self,
        entry: &AuditEntry,
        payload: &Payload,
    ) -> Result<(), Failure> {
        if entry.kind != CREATE_KIND && entry.kind != ROTATE_KIND {
            return Ok(());
        }
        let history = |why: String| Failure::KeyHistory(why);
        let events: Vec<KeyEvent> = payload
            .decode()
            .map_err(|e| history(format!("entry {} cannot be read: {e}", entry.seq)))?;
        for event in events {
            match event {
                KeyEvent::TenantCreated { public_key } if public_key != self.keys[0] => {
                    return Err(history(
                        "the tenant was created with another key than the first listed".into(),
                    ));
                }
                KeyEvent::SigningKeyRotated {
                    previous,
                    public_key,
                } => {
                    let next = self.keys.get(self.in_force + 1);
                    if self.pending.is_some()
                        || previous != self.keys[self.in_force]
                        || next != Some(&public_key)
                    {
                        return Err(history(format!(
                            "entry {} rotates to a key the header does not list next",
                            entry.seq
                        )));
                    }
                    self.pending = Some(entry.seq);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks a checkpoint's signature by the key in force, then hands
    /// over to the next key once the rotation entry is covered.
    pub(super) fn check(&mut self, cp: &Checkpoint) -> Result<&PublicKey, Failure> {
        let key = &self.keys[self.in_force];
        let in_force = SigningKeyId::named(&self.key_name, key);
        if in_force.0 != cp.key_id {
            return Err(Failure::KeyNotInForce {
                in_force: in_force.to_string(),
                found: SigningKeyId(cp.key_id).to_string(),
            });
        }
        cp.verify(key)?;
        let signer = self.in_force;
        if self.pending.is_some_and(|seq| seq < cp.size) {
            self.in_force += 1;
            self.pending = None;
        }
        Ok(&self.keys[signer])
    }

    /// Every key the header lists must be one the chain rotated to.
    pub(super) fn finish(&self) -> Result<(), Failure> {
        if self.in_force + 1 != self.keys.len() {
            return Err(Failure::KeyHistory(format!(
                "the header lists {} keys but the chain hands over to {}",
                self.keys.len(),
                self.in_force + 1
            )));
        }
        Ok(())
    }
}
