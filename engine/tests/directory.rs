//! The directory in the replicated state: who may change it, what the
//! audit chain says about each change, and votes that take the
//! approver's groups and key from it.

use crate::support;

use std::collections::BTreeSet;

use aura_engine::Actor;
use aura_engine::Digest;
use aura_engine::directory::{DirectoryChange, KeyId, KeyRefusal, NewKey, NewUser, Role};
use aura_engine::machine::{CommandBody, EngineState, Event, Rejection};
use aura_engine::mission::MissionState;
use aura_engine::policy::authority::{ApprovalRules, VoteRefusal};
use aura_engine::time::Millis;
use support::{World, id};

const ADMIN_KEY: &str = "00000000000000a1";
const CAROL_KEY: &str = "00000000000000c1";
const DAVE_KEY: &str = "00000000000000d1";

fn key(k: &str) -> KeyId {
    KeyId::new(k).unwrap()
}

fn user(name: &str) -> DirectoryChange {
    DirectoryChange::CreateUser {
        user: id(name),
        details: NewUser {
            user_name: name.to_owned(),
            display_name: name.to_owned(),
            email: None,
            active: true,
        },
    }
}

fn mint(k: &str, for_user: &str, roles: &[Role]) -> DirectoryChange {
    DirectoryChange::MintKey {
        key: NewKey {
            id: key(k),
            name: format!("{for_user}'s key"),
            user: id(for_user),
            roles: roles.iter().copied().collect(),
            secret_hash: Digest::of(k.as_bytes()),
            expires_at: None,
        },
    }
}

/// `change` made by `actor` with key `with`.
fn change(
    w: &mut World,
    actor: Actor,
    with: Option<&str>,
    change: DirectoryChange,
) -> Result<Vec<Event>, Rejection> {
    let body = CommandBody::ChangeDirectory {
        change,
        key: with.map(key),
    };
    w.cmd("acme", actor, body)
}

fn by_admin(w: &mut World, c: DirectoryChange) -> Result<Vec<Event>, Rejection> {
    change(w, Actor::User(id("root")), Some(ADMIN_KEY), c)
}

/// The platform gives `acme` its first administrator, `root`; root adds
/// carol and dave to the `board` group (L4 in the simulator's authority
/// graph) and mints each of them an approver key.
fn directory() -> World {
    let mut w = World::new();
    change(&mut w, Actor::Platform, None, user("root")).unwrap();
    change(
        &mut w,
        Actor::Platform,
        None,
        mint(ADMIN_KEY, "root", &[Role::Admin]),
    )
    .unwrap();
    for c in [
        user("carol"),
        user("dave"),
        DirectoryChange::CreateGroup {
            group: id("board"),
            display_name: "Board".into(),
        },
        DirectoryChange::AddMember {
            group: id("board"),
            user: id("carol"),
        },
        DirectoryChange::AddMember {
            group: id("board"),
            user: id("dave"),
        },
        mint(CAROL_KEY, "carol", &[Role::Approver]),
        mint(DAVE_KEY, "dave", &[Role::Approver]),
    ] {
        by_admin(&mut w, c).unwrap();
    }
    w
}

fn cast(w: &mut World, mission: &str, who: &str, with: &str) -> Result<Vec<Event>, Rejection> {
    w.cmd(
        "acme",
        Actor::User(id(who)),
        CommandBody::CastVote {
            mission: id(mission),
            hold: None,
            approve: true,
            reason: "reviewed".into(),
            key: key(with),
        },
    )
}

/// A mission waiting for a quorum of two approvals.
fn escalated(w: &mut World, mission: &str) {
    let rules = ApprovalRules {
        quorum: 2,
        ..ApprovalRules::default()
    };
    let mut config = w.state.tenant(&id("acme")).unwrap().namespaces()[&id("prod")]
        .authority
        .clone();
    config.rules = rules;
    w.ok(
        "acme",
        Actor::Platform,
        CommandBody::SetAuthority {
            namespace: id("prod"),
            config,
        },
    );
    w.create_mission("acme", mission, Millis::from_secs(3600));
    w.advance(
        "acme",
        mission,
        aura_engine::machine::Advance::BeginPlanning,
    )
    .unwrap();
    w.submit_plan("acme", mission, 5000).unwrap();
    assert_eq!(
        w.mission_state("acme", mission),
        MissionState::WaitingApproval
    );
}

fn refused(k: &str, refusal: KeyRefusal) -> Rejection {
    Rejection::KeyRefused {
        key: key(k),
        refusal,
    }
}

#[test]
fn every_directory_change_is_an_audit_entry_made_with_the_admins_own_key() {
    let mut w = directory();
    let kinds: Vec<String> = w
        .state
        .tenant(&id("acme"))
        .unwrap()
        .audit()
        .entries()
        .map(|e| e.kind.clone())
        .filter(|k| k.starts_with("directory."))
        .collect();
    assert_eq!(
        kinds,
        [
            "directory.user_create",
            "directory.key_mint",
            "directory.user_create",
            "directory.user_create",
            "directory.group_create",
            "directory.member_add",
            "directory.member_add",
            "directory.key_mint",
            "directory.key_mint",
        ]
    );
    // A key an administrator minted for someone else says so.
    let d = w.state.tenant(&id("acme")).unwrap().directory();
    assert_eq!(d.keys()[&key(CAROL_KEY)].minted_by, Actor::User(id("root")));
    assert!(d.keys()[&key(CAROL_KEY)].minted_for_another());
    let events = by_admin(&mut w, mint("00000000000000a2", "root", &[Role::Auditor])).unwrap();
    assert!(matches!(
        &events[0],
        Event::KeyMinted { for_another_user: false, minted_by: Actor::User(u), .. } if u.as_str() == "root"
    ));

    // Only with an admin key of one's own; each refusal is on the record.
    let attempts = [
        (
            Actor::User(id("carol")),
            Some(CAROL_KEY),
            refused(CAROL_KEY, KeyRefusal::MissingRole(Role::Admin)),
        ),
        (
            Actor::User(id("carol")),
            Some(ADMIN_KEY),
            refused(ADMIN_KEY, KeyRefusal::OtherUser),
        ),
        (
            Actor::User(id("root")),
            Some("00000000000000ff"),
            refused("00000000000000ff", KeyRefusal::Unknown),
        ),
        (Actor::User(id("root")), None, Rejection::NotDirectoryAdmin),
        (Actor::Agent(id("bot")), None, Rejection::NotDirectoryAdmin),
        (
            Actor::Platform,
            Some(ADMIN_KEY),
            Rejection::NotDirectoryAdmin,
        ),
    ];
    for (actor, with, expected) in attempts {
        let err = change(
            &mut w,
            actor,
            with,
            DirectoryChange::AddMember {
                group: id("board"),
                user: id("root"),
            },
        );
        assert_eq!(err, Err(expected));
        assert_eq!(w.last_audit_kind("acme"), "command.rejected");
    }
    let board = &w.state.tenant(&id("acme")).unwrap().directory().groups()[&id("board")];
    assert!(!board.members.contains(&id("root")));

    // The rules hold whoever proposes.
    let same_name = DirectoryChange::CreateUser {
        user: id("carol-2"),
        details: NewUser {
            user_name: "CAROL".into(),
            display_name: "Carol".into(),
            email: None,
            active: true,
        },
    };
    assert_eq!(
        by_admin(&mut w, same_name),
        Err(Rejection::UserNameTaken("CAROL".into()))
    );
    assert_eq!(
        by_admin(&mut w, user("carol")),
        Err(Rejection::UserExists(id("carol")))
    );
    assert_eq!(
        by_admin(
            &mut w,
            mint("00000000000000a3", "carol", &[Role::PlatformAdmin])
        ),
        Err(Rejection::KeyRoles)
    );
    assert_eq!(
        by_admin(&mut w, mint(CAROL_KEY, "carol", &[Role::Operator])),
        Err(Rejection::KeyExists(key(CAROL_KEY)))
    );
    assert_eq!(
        by_admin(&mut w, DirectoryChange::DeleteUser { user: id("root") }),
        Err(Rejection::OwnUser)
    );
}

#[test]
fn a_vote_counts_the_groups_the_directory_holds_and_names_the_key_it_was_cast_with() {
    let mut w = directory();
    escalated(&mut w, "m1");
    let events = cast(&mut w, "m1", "carol", CAROL_KEY).unwrap();
    assert_eq!(
        events[0],
        Event::VoteKey {
            mission: id("m1"),
            hold: None,
            key: key(CAROL_KEY),
            minted_by: Actor::User(id("root")),
        }
    );
    let Event::VoteRecorded { vote, .. } = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(vote.groups, BTreeSet::from(["board".to_owned()]));

    // Out of the group, dave holds no level of his own: refused, whatever
    // groups anyone would claim for him.
    by_admin(
        &mut w,
        DirectoryChange::RemoveMember {
            group: id("board"),
            user: id("dave"),
        },
    )
    .unwrap();
    let err = cast(&mut w, "m1", "dave", DAVE_KEY).unwrap_err();
    assert!(
        matches!(err, Rejection::Vote(VoteRefusal::NoAuthority { .. })),
        "{err:?}"
    );
    // A key votes only for its own user, and only with the approver role.
    assert_eq!(
        cast(&mut w, "m1", "dave", CAROL_KEY),
        Err(refused(CAROL_KEY, KeyRefusal::OtherUser))
    );
    by_admin(
        &mut w,
        DirectoryChange::AddMember {
            group: id("board"),
            user: id("dave"),
        },
    )
    .unwrap();
    by_admin(&mut w, DirectoryChange::RevokeKey { key: key(DAVE_KEY) }).unwrap();
    assert_eq!(
        cast(&mut w, "m1", "dave", DAVE_KEY),
        Err(refused(DAVE_KEY, KeyRefusal::Revoked))
    );
    by_admin(&mut w, mint("00000000000000d2", "dave", &[Role::Approver])).unwrap();
    cast(&mut w, "m1", "dave", "00000000000000d2").unwrap();
    assert_eq!(
        w.mission_state("acme", "m1"),
        MissionState::PendingExecution
    );
}

#[test]
fn deactivating_or_deleting_a_user_stops_their_keys_and_votes() {
    let mut w = directory();
    escalated(&mut w, "m1");
    by_admin(
        &mut w,
        DirectoryChange::SetUserActive {
            user: id("carol"),
            active: false,
        },
    )
    .unwrap();
    assert_eq!(
        cast(&mut w, "m1", "carol", CAROL_KEY),
        Err(refused(CAROL_KEY, KeyRefusal::UserInactive))
    );
    by_admin(
        &mut w,
        DirectoryChange::SetUserActive {
            user: id("carol"),
            active: true,
        },
    )
    .unwrap();
    let events = by_admin(&mut w, DirectoryChange::DeleteUser { user: id("dave") }).unwrap();
    assert_eq!(
        events,
        [Event::UserDeleted {
            user: id("dave"),
            groups_left: vec![id("board")],
            keys_revoked: vec![key(DAVE_KEY)],
        }]
    );
    let d = w.state.tenant(&id("acme")).unwrap().directory();
    assert!(
        d.keys()[&key(DAVE_KEY)].revoked_at.is_some(),
        "kept, revoked"
    );
    assert!(d.groups_of(&id("dave")).is_empty());
    // Created again, the user gets none of the old keys back.
    by_admin(&mut w, user("dave")).unwrap();
    assert_eq!(
        cast(&mut w, "m1", "dave", DAVE_KEY),
        Err(refused(DAVE_KEY, KeyRefusal::Revoked))
    );
    cast(&mut w, "m1", "carol", CAROL_KEY).unwrap();
    assert_eq!(w.mission_state("acme", "m1"), MissionState::WaitingApproval);
}

#[test]
fn keys_are_found_by_id_across_tenants_and_after_a_restore() {
    let w = directory();
    let tenant = |s: &EngineState, k: &str| s.key_tenant(&key(k)).map(|t| t.id().to_string());
    assert_eq!(tenant(&w.state, CAROL_KEY).as_deref(), Some("acme"));
    assert_eq!(tenant(&w.state, "00000000000000ff"), None);
    let restored = EngineState::restore(&w.state.snapshot()).unwrap();
    assert_eq!(restored.digest(), w.state.digest());
    assert_eq!(tenant(&restored, ADMIN_KEY).as_deref(), Some("acme"));
}

#[test]
fn the_platforms_keys_are_platform_keys_and_its_last_working_one_stays() {
    use aura_engine::directory::PLATFORM_TENANT;
    let mut w = World::new();
    let at = |w: &mut World, actor: Actor, with: Option<&str>, c: DirectoryChange| {
        let body = CommandBody::ChangeDirectory {
            change: c,
            key: with.map(key),
        };
        w.cmd(PLATFORM_TENANT, actor, body)
    };
    w.ok(
        PLATFORM_TENANT,
        Actor::Platform,
        CommandBody::CreateTenant {
            display_name: "Platform".into(),
            signing_key_seed: aura_engine::machine::SigningSeed([5; 32]).into(),
        },
    );
    at(&mut w, Actor::Platform, None, user("operator")).unwrap();
    assert_eq!(
        at(
            &mut w,
            Actor::Platform,
            None,
            mint(ADMIN_KEY, "operator", &[Role::Admin])
        ),
        Err(Rejection::KeyRoles),
        "a tenant role is no platform key"
    );
    at(
        &mut w,
        Actor::Platform,
        None,
        mint(ADMIN_KEY, "operator", &[Role::PlatformAdmin]),
    )
    .unwrap();
    let operator = || Actor::User(id("operator"));
    let revoke = |k: &str| DirectoryChange::RevokeKey { key: key(k) };
    assert_eq!(
        at(&mut w, operator(), Some(ADMIN_KEY), revoke(ADMIN_KEY)),
        Err(Rejection::LastPlatformKey)
    );
    // Rotation: the next key first, then the old one goes, each recorded.
    let next = "00000000000000a2";
    at(
        &mut w,
        operator(),
        Some(ADMIN_KEY),
        mint(next, "operator", &[Role::PlatformAdmin]),
    )
    .unwrap();
    at(&mut w, operator(), Some(ADMIN_KEY), revoke(ADMIN_KEY)).unwrap();
    assert_eq!(
        at(&mut w, operator(), Some(ADMIN_KEY), user("eve")),
        Err(refused(ADMIN_KEY, KeyRefusal::Revoked))
    );
    assert_eq!(
        at(&mut w, operator(), Some(next), revoke(next)),
        Err(Rejection::LastPlatformKey)
    );
    let kinds: Vec<String> = w
        .state
        .tenant(&id(PLATFORM_TENANT))
        .unwrap()
        .audit()
        .entries()
        .map(|e| e.kind.clone())
        .filter(|k| k.starts_with("directory.key"))
        .collect();
    assert_eq!(
        kinds,
        [
            "directory.key_mint",
            "directory.key_mint",
            "directory.key_revoke"
        ]
    );
}
