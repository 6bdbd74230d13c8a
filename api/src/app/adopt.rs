//! Adopting the directories older versions kept in SQL. Before the
//! directory was replicated, a tenant's users, groups, memberships and
//! API keys lived only in the database. On start, a tenant whose
//! replicated directory is still empty takes them over as engine
//! commands in its audit chain, with the platform as the actor, so that
//! the keys people hold keep working. After that the SQL rows are never
//! read again: the replicated directory is the only truth.

use std::collections::BTreeSet;
use std::time::Duration;

use aura_engine::directory::{DirectoryChange, KeyId, NewKey, NewUser};
use aura_engine::ids::{GroupId, TenantId, UserId};
use aura_engine::{Actor, Digest, Timestamp};

use super::role;
use super::{App, AppError};
use crate::store::{Store, StoreError};
use crate::time::now_millis;

/// Adopts what the database holds for every tenant whose directory is
/// empty; returns how many tenants took theirs over.
pub async fn sql_directories(app: &App) -> Result<usize, AppError> {
    app.engine().catch_up().await?;
    let empty: Vec<TenantId> = app.read_local(|s| {
        s.tenants()
            .filter(|t| t.directory().is_empty())
            .map(|t| t.id().clone())
            .collect()
    });
    let mut adopted = 0;
    for tenant in empty {
        let changes = changes_for(app.store(), &tenant).await?;
        if changes.is_empty() {
            continue;
        }
        let bodies = changes
            .into_iter()
            .map(super::directory::by_platform)
            .collect();
        match app.propose_all(&tenant, Actor::Platform, bodies).await {
            Ok(_) => {
                tracing::info!(%tenant, "adopted the tenant's directory from the database");
                adopted += 1;
            }
            // Another node (or this one's start) adopted it first: the
            // sequence is one log entry, so its first change was refused
            // and nothing of it applied.
            Err(AppError::Refused {
                partly_applied: false,
                ..
            }) if adopted_since(app, &tenant) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(adopted)
}

fn adopted_since(app: &App, tenant: &TenantId) -> bool {
    app.read_local(|s| s.tenant(tenant).is_some_and(|t| !t.directory().is_empty()))
}

/// Runs [`sql_directories`] once the cluster can take commands, trying
/// again while it cannot.
pub async fn run(app: App) {
    loop {
        match sql_directories(&app).await {
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot adopt directories from the database yet");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// The changes that rebuild a tenant's SQL directory: users (active, so
/// that their keys can be minted), groups and memberships, the keys that
/// still work, then the revocations and deactivations. Rows the engine's
/// rules would refuse (an expired key, a malformed id) are left behind
/// and logged.
async fn changes_for(store: &Store, tenant: &TenantId) -> Result<Vec<DirectoryChange>, StoreError> {
    let t = tenant.as_str();
    let mut out = Vec::new();
    let mut inactive = Vec::new();
    let mut known = BTreeSet::new();
    for u in store.users(t).await? {
        let Ok(user) = UserId::new(u.id.clone()) else {
            tracing::warn!(%tenant, id = %u.id, "not adopting a user with a malformed id");
            continue;
        };
        if !u.active {
            inactive.push(user.clone());
        }
        known.insert(user.clone());
        out.push(DirectoryChange::CreateUser {
            user,
            details: NewUser {
                user_name: u.user_name,
                display_name: u.display_name,
                email: u.email,
                active: true,
            },
        });
    }
    for g in store.groups(t).await? {
        let Ok(group) = GroupId::new(g.id.clone()) else {
            tracing::warn!(%tenant, id = %g.id, "not adopting a group with a malformed id");
            continue;
        };
        out.push(DirectoryChange::CreateGroup {
            group: group.clone(),
            display_name: g.display_name,
        });
        for m in store.members(t, group.as_str()).await? {
            if let Ok(user) = UserId::new(m)
                && known.contains(&user)
            {
                out.push(DirectoryChange::AddMember {
                    group: group.clone(),
                    user,
                });
            }
        }
    }
    let now = now_millis();
    let mut revoked = Vec::new();
    for k in store.keys(Some(t)).await? {
        let parsed = (
            KeyId::new(k.id.clone()),
            k.user_id.clone().map(UserId::new),
            Digest::from_hex(&k.secret_hash),
            role::parse_list(&k.roles),
        );
        let (Ok(id), Some(Ok(user)), Ok(secret_hash), Ok(roles)) = parsed else {
            tracing::warn!(%tenant, key = %k.id, "not adopting a malformed key");
            continue;
        };
        if !known.contains(&user) || k.expires_at.is_some_and(|e| e <= now) {
            continue;
        }
        if k.revoked_at.is_some() {
            revoked.push(id.clone());
        }
        out.push(DirectoryChange::MintKey {
            key: NewKey {
                id,
                name: k.name,
                user,
                roles,
                secret_hash,
                expires_at: k.expires_at.map(Timestamp),
            },
        });
    }
    out.extend(
        revoked
            .into_iter()
            .map(|key| DirectoryChange::RevokeKey { key }),
    );
    out.extend(
        inactive
            .into_iter()
            .map(|user| DirectoryChange::SetUserActive {
                user,
                active: false,
            }),
    );
    Ok(out)
}
