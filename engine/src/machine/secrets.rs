//! Handlers for a tenant's secrets. The value was sealed before it was
//! proposed; here only its name, version and sealed bytes are kept, and
//! the audit entry (the events) names the secret and its version only.

use crate::machine::apply::{Ctx, commit};
use crate::machine::event::Event;
use crate::machine::rejection::Rejection;
use crate::machine::state::TenantState;
use crate::secret::{MAX_SEALED_BYTES, MAX_SECRETS, Sealed, SecretName, SecretRecord};

pub(super) fn put(
    t: &mut TenantState,
    c: &Ctx<'_>,
    name: &SecretName,
    sealed: &Sealed,
) -> Result<Vec<Event>, Rejection> {
    if sealed.bytes().len() > MAX_SEALED_BYTES {
        return Err(Rejection::SecretTooLarge {
            max: MAX_SEALED_BYTES,
        });
    }
    let version = match t.secrets.get(name) {
        Some(s) => s.version.saturating_add(1),
        None if t.secrets.len() >= MAX_SECRETS => {
            return Err(Rejection::TooManySecrets { max: MAX_SECRETS });
        }
        None => 1,
    };
    let events = vec![Event::SecretPut {
        name: name.clone(),
        version,
    }];
    let at = c.at;
    commit(t, c, c.kind, events, |t, _| {
        t.secrets.insert(
            name.clone(),
            SecretRecord {
                version,
                sealed: sealed.clone(),
                updated_at: at,
            },
        );
    })
}

pub(super) fn delete(
    t: &mut TenantState,
    c: &Ctx<'_>,
    name: &SecretName,
) -> Result<Vec<Event>, Rejection> {
    let version = t
        .secrets
        .get(name)
        .ok_or_else(|| Rejection::UnknownSecret(name.clone()))?
        .version;
    let events = vec![Event::SecretDeleted {
        name: name.clone(),
        version,
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.secrets.remove(name);
    })
}
