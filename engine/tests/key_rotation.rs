//! Rotating a tenant's signing key: the old key signs the checkpoint over
//! the rotation entry and nothing after it, both keys' checkpoints verify,
//! an export verifier follows the rotation recorded in the chain, and
//! whatever the tenant signs names its key.

use aura_engine::Actor;
use aura_engine::audit::export::Failure;
use aura_engine::audit::{Checkpoint, VerifyOptions, verify_export, write_export};
use aura_engine::identity::{KeyPair, NotHonoured, PublicKey, Retirement, SigningKeyId};
use aura_engine::machine::{CommandBody, Event, Rejection, SigningSeed, TenantState};

use crate::support::{World, bot_credential, id};

fn rotate(seed: u8, retirement: Retirement) -> CommandBody {
    CommandBody::RotateSigningKey {
        seed: SigningSeed([seed; 32]).into(),
        retirement,
        key: None,
    }
}

fn acme(w: &World) -> &TenantState {
    w.state.tenant(&id("acme")).unwrap()
}

fn export_of(t: &TenantState) -> String {
    let mut out = Vec::new();
    write_export(&mut out, t.id(), &t.key_history(), t.audit()).unwrap();
    String::from_utf8(out).unwrap()
}

fn verify(export: &str, trusted_key: Option<PublicKey>) -> Result<Vec<PublicKey>, Failure> {
    let options = VerifyOptions {
        trusted_key,
        ..VerifyOptions::default()
    };
    verify_export(&mut export.as_bytes(), &options, &mut |_| {})
        .map(|r| r.keys)
        .map_err(|e| e.failure)
}

/// acme signs a checkpoint with its first key, rotates on schedule, and
/// signs another with the new one.
fn rotated_world() -> (World, PublicKey, PublicKey) {
    let mut w = World::new();
    let old = acme(&w).public_key();
    w.ok("acme", Actor::Runtime, CommandBody::SignCheckpoint);
    let events = w.ok("acme", Actor::Platform, rotate(42, Retirement::Scheduled));
    let new = KeyPair::from_seed([42; 32]).public();
    assert!(matches!(
        &events[..],
        [Event::SigningKeyRotated { previous, public_key, .. }] if *previous == old && *public_key == new
    ));
    w.ok("acme", Actor::Runtime, CommandBody::SignCheckpoint);
    (w, old, new)
}

#[test]
fn old_and_new_checkpoints_both_verify_and_the_handover_is_signed_by_the_old_key() {
    let (w, old, new) = rotated_world();
    let t = acme(&w);
    assert_eq!(t.public_key(), new);
    assert_eq!(t.key_history(), vec![old, new]);
    let cps = t.audit().checkpoints();
    assert_eq!(cps.len(), 3, "before, handover, after");
    let rotation = t
        .audit()
        .entries()
        .find(|e| e.kind == "tenant.signing_key_rotate")
        .unwrap();
    // The handover covers exactly the chain up to the rotation entry.
    assert_eq!(cps[1].size, rotation.seq + 1);
    for cp in &cps[..2] {
        cp.verify(&old).unwrap();
        assert!(cp.verify(&new).is_err());
        assert_eq!(t.checkpoint_key(cp.size), old);
    }
    cps[2].verify(&new).unwrap();
    assert!(cps[2].verify(&old).is_err());
    assert_eq!(t.checkpoint_key(cps[2].size), new);
    // Each names its key by id, as the signed-note format does.
    assert_eq!(cps[2].key_id, SigningKeyId::of(t.id(), &new).0);
    w.state.check_invariants().unwrap();
    // The rotation survives a snapshot, and changes the state's digest.
    let restored = aura_engine::machine::EngineState::restore(&w.state.snapshot()).unwrap();
    assert!(restored == w.state);
    assert_eq!(
        acme_of(&restored).retired_keys(),
        acme(&w).retired_keys(),
        "retired keys are kept"
    );
}

fn acme_of(s: &aura_engine::machine::EngineState) -> &TenantState {
    s.tenant(&id("acme")).unwrap()
}

#[test]
fn the_export_verifier_follows_the_rotation_from_either_pinned_key() {
    let (mut w, old, new) = rotated_world();
    w.ok("globex", Actor::Runtime, CommandBody::SignCheckpoint);
    let export = export_of(acme(&w));
    assert!(export.starts_with(r#"{"format":"aura.audit-export/2""#));
    assert_eq!(verify(&export, Some(old)), Ok(vec![old, new]));
    assert_eq!(verify(&export, Some(new)), Ok(vec![old, new]));
    assert_eq!(verify(&export, None), Ok(vec![old, new]));
    // A tenant that never rotated is exported as it always was.
    let globex = export_of(w.state.tenant(&id("globex")).unwrap());
    assert!(globex.starts_with(r#"{"format":"aura.audit-export/1""#));
    assert!(verify(&globex, None).is_ok());
}

/// The export with its last checkpoint replaced by one over the same tree
/// signed by `key`.
fn resigned_last(export: &str, key: &KeyPair) -> String {
    let mut lines: Vec<String> = export.lines().map(str::to_owned).collect();
    let at = lines
        .iter()
        .rposition(|l| l.starts_with(r#"{"checkpoint""#))
        .unwrap();
    let mut line: serde_json::Value = serde_json::from_str(&lines[at]).unwrap();
    let cp = Checkpoint::from_note(line["checkpoint"].as_str().unwrap()).unwrap();
    let forged = Checkpoint::sign(
        cp.origin.clone(),
        cp.size,
        cp.root,
        cp.time,
        cp.key_name.clone(),
        key,
    );
    line["checkpoint"] = forged.to_note().into();
    lines[at] = line.to_string();
    lines.join("\n") + "\n"
}

#[test]
fn an_export_signed_with_an_unknown_key_fails() {
    let (w, old, new) = rotated_world();
    let export = export_of(acme(&w));
    let stranger = KeyPair::from_seed([66; 32]);
    // A checkpoint by a key that is not the one in force.
    let forged = resigned_last(&export, &stranger);
    assert!(matches!(
        verify(&forged, Some(old)),
        Err(Failure::KeyNotInForce { .. })
    ));
    // The retired key cannot sign past its handover either: whoever holds
    // it after a rotation cannot extend the chain. (acme's first key is
    // made from seed 4 in the test world: "acme" has four letters.)
    let old_pair = KeyPair::from_seed([4; 32]);
    assert_eq!(old_pair.public(), old);
    assert!(matches!(
        verify(&resigned_last(&export, &old_pair), None),
        Err(Failure::KeyNotInForce { .. })
    ));
    // Listing the stranger in the header instead of the real new key
    // contradicts the rotation the chain records.
    let relisted = export.replacen(&new.to_base64(), &stranger.public().to_base64(), 1);
    assert!(matches!(
        verify(&relisted, None),
        Err(Failure::KeyHistory(_))
    ));
    // A pinned key the export does not list at all.
    assert!(matches!(
        verify(&export, Some(stranger.public())),
        Err(Failure::UntrustedKey { .. })
    ));
    // An export that claims the stranger as the tenant's first key is
    // refused against the real one, and contradicts the chain without.
    let claimed = export.replacen(&old.to_base64(), &stranger.public().to_base64(), 1);
    assert!(matches!(
        verify(&claimed, Some(old)),
        Err(Failure::UntrustedKey { .. })
    ));
    assert!(matches!(
        verify(&claimed, None),
        Err(Failure::KeyHistory(_))
    ));
}

#[test]
fn a_key_pinned_after_the_rotation_must_sign_something_to_vouch() {
    let mut w = World::new();
    let old = acme(&w).public_key();
    w.ok("acme", Actor::Platform, rotate(42, Retirement::Scheduled));
    let new = acme(&w).public_key();
    // Only the handover (by the old key) is signed so far.
    let export = {
        let t = acme(&w);
        let mut out = Vec::new();
        aura_engine::audit::write_signed_export(&mut out, t.id(), &t.key_history(), t.audit())
            .unwrap()
            .unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(verify(&export, Some(old)), Ok(vec![old, new]));
    assert!(matches!(
        verify(&export, Some(new)),
        Err(Failure::TrustedKeyNeverSigned { .. })
    ));
}

#[test]
fn credentials_tokens_and_outcomes_name_their_key_and_a_compromised_key_is_not_honoured() {
    let mut w = World::new();
    let first = acme(&w).signing_key_id();
    let credential = |w: &World, serial: u64| acme(w).credentials()[&serial].credential.clone();
    let before = credential(&w, 1);
    assert_eq!(before.key_id, Some(first));
    w.ok("acme", Actor::Platform, rotate(42, Retirement::Scheduled));
    let second = acme(&w).signing_key_id();
    assert_ne!(first, second);
    // Scheduled: what the first key signed is still honoured.
    let ring = acme(&w).keyring();
    assert_eq!(
        ring.get(before.key_id.as_ref()),
        Ok(acme(&w).key_history()[0])
    );
    assert_eq!(ring.get(None), Ok(acme(&w).key_history()[0]));
    // New credentials are signed by, and name, the new key.
    w.ok("acme", Actor::Platform, bot_credential());
    let after = credential(&w, 2);
    assert_eq!(after.key_id, Some(second));
    after.verify_signature(&acme(&w).public_key()).unwrap();
    // Compromised: nothing the second key signed is honoured any more,
    // and neither is anything that names no key once the first is.
    w.ok("acme", Actor::Platform, rotate(43, Retirement::Compromised));
    let ring = acme(&w).keyring();
    assert_eq!(ring.get(Some(&second)), Err(NotHonoured::Compromised));
    assert!(ring.get(Some(&first)).is_ok());
    assert!(ring.get(Some(&acme(&w).signing_key_id())).is_ok());
    w.state.check_invariants().unwrap();
}

#[test]
fn only_an_admin_rotates_and_a_key_is_never_used_twice() {
    let mut w = World::new();
    let old_seed = 4; // acme's first key, as the test world makes it
    assert_eq!(
        w.cmd(
            "acme",
            Actor::Platform,
            rotate(old_seed, Retirement::Scheduled)
        ),
        Err(Rejection::SigningKeyReused)
    );
    assert_eq!(
        w.cmd(
            "acme",
            Actor::Agent(id("bot")),
            rotate(42, Retirement::Scheduled)
        ),
        Err(Rejection::NotSigningKeyAdmin)
    );
    assert_eq!(w.last_audit_kind("acme"), "command.rejected");
    assert_eq!(acme(&w).key_history().len(), 1);
    assert!(acme(&w).retired_keys().is_empty());
}
