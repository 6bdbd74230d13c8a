//! Rotating a tenant's signing key. The rotation entry names the new
//! key, and the outgoing key signs a checkpoint over that entry before
//! it stops signing: whoever trusts the old key can follow the chain to
//! the new one, and every checkpoint says by its key id which key made
//! it. Retired keys stay in the state (public halves only) so what they
//! signed still verifies.

use crate::directory::KeyId;
use crate::identity::{RetiredKey, Retirement, SigningKeyId, TenantKey};
use crate::machine::apply::{Ctx, commit, sign_whole_chain};
use crate::machine::directory;
use crate::machine::event::Event;
use crate::machine::rejection::Rejection;
use crate::machine::state::TenantState;

/// How many keys a tenant may have signed with, current one included:
/// every one stays published, and each credential check may look one up.
pub const MAX_SIGNING_KEYS: usize = 64;

pub(super) fn rotate(
    t: &mut TenantState,
    c: &Ctx<'_>,
    new: TenantKey,
    retirement: Retirement,
    key: Option<&KeyId>,
) -> Result<Vec<Event>, Rejection> {
    directory::authorize(t, c, key).map_err(|r| match r {
        Rejection::NotDirectoryAdmin => Rejection::NotSigningKeyAdmin,
        other => other,
    })?;
    let public_key = new.public();
    if t.key_history().contains(&public_key) {
        return Err(Rejection::SigningKeyReused);
    }
    if t.retired_keys.len() + 1 >= MAX_SIGNING_KEYS {
        return Err(Rejection::TooManySigningKeys {
            max: MAX_SIGNING_KEYS,
        });
    }
    let (previous, previous_id) = (t.key.public(), t.signing_key_id());
    let key_id = SigningKeyId::of(&t.id, &public_key);
    let events = commit(
        t,
        c,
        c.kind,
        vec![Event::SigningKeyRotated {
            previous,
            public_key,
            key_id,
            retirement,
        }],
        |_, _| {},
    )?;
    // The handover: the outgoing key vouches for the entry that names its
    // successor, so trust passes by signature, not by the chain's say-so.
    sign_whole_chain(t, c.at);
    let size = t.audit.len();
    t.retired_keys.push(RetiredKey {
        public_key: previous,
        key_id: previous_id,
        retired_at: c.at,
        last_checkpoint: size,
        retirement,
    });
    t.key = new;
    Ok(events)
}
