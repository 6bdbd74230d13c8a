//! Handlers for a tenant's directory. Who may change it is checked here,
//! not only at the API: a user acts with the admin key they signed in
//! with, which must be theirs and usable at the command's time; the
//! platform acts with none (a tenant's first administrator, or an
//! operator's recovery). Either way the audit entry's actor says who.

use crate::actor::Actor;
use crate::directory::{
    DirectoryChange, GroupRecord, KeyId, KeyRecord, MAX_ENTRIES, MAX_TEXT, NewKey, NewUser, Role,
    UserRecord, admin_role, is_platform,
};
use crate::ids::{GroupId, UserId};
use crate::machine::apply::{Ctx, check_text, commit};
use crate::machine::event::Event;
use crate::machine::rejection::Rejection;
use crate::machine::state::TenantState;

pub(super) fn change(
    t: &mut TenantState,
    c: &Ctx<'_>,
    change: &DirectoryChange,
    key: Option<&KeyId>,
) -> Result<Vec<Event>, Rejection> {
    authorize(t, c, key)?;
    match change {
        DirectoryChange::CreateUser { user, details } => create_user(t, c, user, details),
        DirectoryChange::SetUserActive { user, active } => set_active(t, c, user, *active),
        DirectoryChange::DeleteUser { user } => delete_user(t, c, user),
        DirectoryChange::CreateGroup {
            group,
            display_name,
        } => create_group(t, c, group, display_name),
        DirectoryChange::DeleteGroup { group } => delete_group(t, c, group),
        DirectoryChange::AddMember { group, user } => add_member(t, c, group, user),
        DirectoryChange::RemoveMember { group, user } => remove_member(t, c, group, user),
        DirectoryChange::MintKey { key } => mint_key(t, c, key),
        DirectoryChange::RevokeKey { key } => revoke_key(t, c, key),
    }
}

pub(super) fn authorize(
    t: &TenantState,
    c: &Ctx<'_>,
    key: Option<&KeyId>,
) -> Result<(), Rejection> {
    match (c.actor, key) {
        (Actor::Platform, None) => Ok(()),
        (Actor::User(user), Some(key)) => t
            .directory
            .key_for(key, user, admin_role(&t.id), c.at)
            .map(|_| ())
            .map_err(|refusal| Rejection::KeyRefused {
                key: key.clone(),
                refusal,
            }),
        _ => Err(Rejection::NotDirectoryAdmin),
    }
}

fn room(len: usize) -> Result<(), Rejection> {
    if len >= MAX_ENTRIES {
        return Err(Rejection::DirectoryFull { max: MAX_ENTRIES });
    }
    Ok(())
}

/// Whether the actor is `user` themself.
fn is_self(c: &Ctx<'_>, user: &UserId) -> bool {
    matches!(c.actor, Actor::User(u) if u == user)
}

fn create_user(
    t: &mut TenantState,
    c: &Ctx<'_>,
    user: &UserId,
    new: &NewUser,
) -> Result<Vec<Event>, Rejection> {
    check_text("user_name", &new.user_name, MAX_TEXT)?;
    check_text("display_name", &new.display_name, MAX_TEXT)?;
    if let Some(e) = &new.email {
        check_text("email", e, MAX_TEXT)?;
    }
    let d = &t.directory;
    if d.users.contains_key(user) {
        return Err(Rejection::UserExists(user.clone()));
    }
    if d.user_named(&new.user_name).is_some() {
        return Err(Rejection::UserNameTaken(new.user_name.clone()));
    }
    room(d.users.len())?;
    let events = vec![Event::UserCreated {
        user: user.clone(),
        user_name: new.user_name.clone(),
        display_name: new.display_name.clone(),
        email: new.email.clone(),
        active: new.active,
    }];
    let record = UserRecord {
        user_name: new.user_name.clone(),
        display_name: new.display_name.clone(),
        email: new.email.clone(),
        active: new.active,
        created_at: c.at,
    };
    commit(t, c, c.kind, events, |t, _| {
        t.directory.users.insert(user.clone(), record);
    })
}

fn set_active(
    t: &mut TenantState,
    c: &Ctx<'_>,
    user: &UserId,
    active: bool,
) -> Result<Vec<Event>, Rejection> {
    if !t.directory.users.contains_key(user) {
        return Err(Rejection::UnknownUser(user.clone()));
    }
    if !active && is_self(c, user) {
        return Err(Rejection::OwnUser);
    }
    let events = vec![Event::UserActiveSet {
        user: user.clone(),
        active,
    }];
    commit(t, c, c.kind, events, |t, _| {
        if let Some(u) = t.directory.users.get_mut(user) {
            u.active = active;
        }
    })
}

fn delete_user(t: &mut TenantState, c: &Ctx<'_>, user: &UserId) -> Result<Vec<Event>, Rejection> {
    if !t.directory.users.contains_key(user) {
        return Err(Rejection::UnknownUser(user.clone()));
    }
    if is_self(c, user) {
        return Err(Rejection::OwnUser);
    }
    let d = &t.directory;
    let groups_left: Vec<GroupId> = d
        .groups
        .iter()
        .filter(|(_, g)| g.members.contains(user))
        .map(|(id, _)| id.clone())
        .collect();
    let keys_revoked: Vec<KeyId> = d
        .keys
        .iter()
        .filter(|(_, k)| &k.user == user && k.revoked_at.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    let events = vec![Event::UserDeleted {
        user: user.clone(),
        groups_left: groups_left.clone(),
        keys_revoked: keys_revoked.clone(),
    }];
    let at = c.at;
    commit(t, c, c.kind, events, |t, _| {
        let d = &mut t.directory;
        d.users.remove(user);
        for g in &groups_left {
            if let Some(g) = d.groups.get_mut(g) {
                g.members.remove(user);
            }
        }
        for k in &keys_revoked {
            if let Some(k) = d.keys.get_mut(k) {
                k.revoked_at = Some(at);
            }
        }
    })
}

fn create_group(
    t: &mut TenantState,
    c: &Ctx<'_>,
    group: &GroupId,
    display_name: &str,
) -> Result<Vec<Event>, Rejection> {
    check_text("display_name", display_name, MAX_TEXT)?;
    if t.directory.groups.contains_key(group) {
        return Err(Rejection::GroupExists(group.clone()));
    }
    room(t.directory.groups.len())?;
    let events = vec![Event::GroupCreated {
        group: group.clone(),
        display_name: display_name.to_owned(),
    }];
    let record = GroupRecord {
        display_name: display_name.to_owned(),
        members: Default::default(),
        created_at: c.at,
    };
    commit(t, c, c.kind, events, |t, _| {
        t.directory.groups.insert(group.clone(), record);
    })
}

fn delete_group(
    t: &mut TenantState,
    c: &Ctx<'_>,
    group: &GroupId,
) -> Result<Vec<Event>, Rejection> {
    let g = t
        .directory
        .groups
        .get(group)
        .ok_or_else(|| Rejection::UnknownGroup(group.clone()))?;
    let events = vec![Event::GroupDeleted {
        group: group.clone(),
        members: g.members.iter().cloned().collect(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.directory.groups.remove(group);
    })
}

fn add_member(
    t: &mut TenantState,
    c: &Ctx<'_>,
    group: &GroupId,
    user: &UserId,
) -> Result<Vec<Event>, Rejection> {
    let d = &t.directory;
    let g = d
        .groups
        .get(group)
        .ok_or_else(|| Rejection::UnknownGroup(group.clone()))?;
    if !d.users.contains_key(user) {
        return Err(Rejection::UnknownUser(user.clone()));
    }
    if !g.members.contains(user) {
        room(g.members.len())?;
    }
    // Adding a member again is recorded too: the entry says who asked.
    let events = vec![Event::MemberAdded {
        group: group.clone(),
        user: user.clone(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        if let Some(g) = t.directory.groups.get_mut(group) {
            g.members.insert(user.clone());
        }
    })
}

fn remove_member(
    t: &mut TenantState,
    c: &Ctx<'_>,
    group: &GroupId,
    user: &UserId,
) -> Result<Vec<Event>, Rejection> {
    let g = t
        .directory
        .groups
        .get(group)
        .ok_or_else(|| Rejection::UnknownGroup(group.clone()))?;
    if !g.members.contains(user) {
        return Err(Rejection::NotMember {
            group: group.clone(),
            user: user.clone(),
        });
    }
    let events = vec![Event::MemberRemoved {
        group: group.clone(),
        user: user.clone(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        if let Some(g) = t.directory.groups.get_mut(group) {
            g.members.remove(user);
        }
    })
}

fn mint_key(t: &mut TenantState, c: &Ctx<'_>, new: &NewKey) -> Result<Vec<Event>, Rejection> {
    check_text("name", &new.name, MAX_TEXT)?;
    let d = &t.directory;
    if d.keys.contains_key(&new.id) {
        return Err(Rejection::KeyExists(new.id.clone()));
    }
    match d.users.get(&new.user) {
        None => return Err(Rejection::UnknownUser(new.user.clone())),
        Some(u) if !u.active => return Err(Rejection::InactiveUser(new.user.clone())),
        Some(_) => {}
    }
    // The platform's keys are platform keys and nothing else; a
    // tenant's, tenant roles only.
    let allowed = if is_platform(&t.id) {
        new.roles == [Role::PlatformAdmin].into()
    } else {
        !new.roles.is_empty() && new.roles.iter().all(|r| r.is_tenant_role())
    };
    if !allowed {
        return Err(Rejection::KeyRoles);
    }
    if new.expires_at.is_some_and(|e| e <= c.at) {
        return Err(Rejection::KeyExpiry);
    }
    room(d.keys.len())?;
    let record = KeyRecord {
        name: new.name.clone(),
        user: new.user.clone(),
        roles: new.roles.clone(),
        secret_hash: new.secret_hash,
        minted_by: c.actor.clone(),
        created_at: c.at,
        expires_at: new.expires_at,
        revoked_at: None,
    };
    let events = vec![Event::KeyMinted {
        key: new.id.clone(),
        name: new.name.clone(),
        user: new.user.clone(),
        roles: new.roles.iter().copied().collect(),
        expires_at: new.expires_at,
        minted_by: c.actor.clone(),
        for_another_user: record.minted_for_another(),
    }];
    commit(t, c, c.kind, events, |t, _| {
        t.directory.keys.insert(new.id.clone(), record);
    })
}

fn revoke_key(t: &mut TenantState, c: &Ctx<'_>, key: &KeyId) -> Result<Vec<Event>, Rejection> {
    let k = t
        .directory
        .keys
        .get(key)
        .filter(|k| k.revoked_at.is_none())
        .ok_or_else(|| Rejection::UnknownKey(key.clone()))?;
    // Revoking the platform's last working key would leave nobody able
    // to manage tenants or mint another: rotate instead.
    let others_usable = t
        .directory
        .keys
        .keys()
        .any(|other| other != key && t.directory.usable_key(other, c.at).is_ok());
    if is_platform(&t.id) && !others_usable {
        return Err(Rejection::LastPlatformKey);
    }
    let events = vec![Event::KeyRevoked {
        key: key.clone(),
        user: k.user.clone(),
    }];
    let at = c.at;
    commit(t, c, c.kind, events, |t, _| {
        if let Some(k) = t.directory.keys.get_mut(key) {
            k.revoked_at = Some(at);
        }
    })
}
