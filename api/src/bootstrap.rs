//! The platform's first key. The platform's keys live in a tenant of
//! their own ([`PLATFORM_TENANT`]), whose directory holds the operator
//! they act for and whose audit chain records every key minted, rotated
//! or revoked. On the first start of a node that forms a cluster, with no
//! platform yet, AURA creates it with one `platform_admin` key and writes
//! that key to a file only the server's user can read; it is never
//! written again (delete the file once the key is stored safely, and
//! rotate it: docs/api.md). A deployment whose platform keys an older
//! version kept in SQL adopts its working ones instead.

use std::io::Write as _;
use std::path::Path;

use aura_engine::Actor;
use aura_engine::directory::{DirectoryChange, KeyId, NewKey, NewUser, PLATFORM_TENANT, Role};
use aura_engine::ids::{TenantId, UserId};
use aura_engine::machine::Rejection;
use aura_engine::{Digest, Timestamp};

use crate::app::keys::secret as key;
use crate::app::{App, AppError, tenants};
use crate::store::StoreError;
use crate::time::now_millis;

/// The directory user platform keys act for.
pub const OPERATOR: &str = "operator";

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    App(#[from] AppError),
    #[error("cannot write the bootstrap key to {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Creates the platform with its first key if there is none, adopting
/// the SQL platform keys of an older version if it left working ones, and
/// otherwise minting one and writing it to `path` (mode 0600). Returns
/// whether it wrote the file.
pub async fn ensure_platform_key(app: &App, path: &Path) -> Result<bool, BootstrapError> {
    app.engine().catch_up().await.map_err(AppError::from)?;
    let tenant = TenantId::new(PLATFORM_TENANT).expect("the platform's id is a tenant id");
    if app.read_local(|s| s.tenant(&tenant).is_some()) {
        return Ok(false);
    }
    let adopted = legacy_keys(app).await?;
    let minted = adopted.is_empty().then(key::mint);
    if let Some(minted) = &minted {
        write_key_file(path, &minted.text)?;
    }
    let operator = UserId::new(OPERATOR).expect("a user id");
    let create_operator = DirectoryChange::CreateUser {
        user: operator.clone(),
        details: NewUser {
            user_name: OPERATOR.into(),
            display_name: "Platform operator".into(),
            email: None,
            active: true,
        },
    };
    let keys = adopted.into_iter().chain(minted.iter().map(|m| NewKey {
        id: m.id.clone(),
        name: "bootstrap platform admin".into(),
        user: operator.clone(),
        roles: [Role::PlatformAdmin].into(),
        secret_hash: m.secret_hash,
        expires_at: None,
    }));
    let mints = keys.map(|key| DirectoryChange::MintKey { key });
    let bodies = tenants::founding(
        app,
        &tenant,
        "AURA platform".into(),
        std::iter::once(create_operator).chain(mints),
    );
    match app.propose_all(&tenant, Actor::Platform, bodies).await {
        Ok(_) => Ok(minted.is_some()),
        // Another node forming the cluster created the platform first.
        Err(AppError::Refused {
            rejection: Rejection::TenantExists(_),
            ..
        }) => {
            let _ = std::fs::remove_file(path);
            Ok(false)
        }
        Err(e) => {
            let _ = std::fs::remove_file(path);
            Err(e.into())
        }
    }
}

/// The working platform keys an older version kept in SQL, to record in
/// the platform's directory with their ids and secret hashes, so that
/// whoever holds one keeps working.
async fn legacy_keys(app: &App) -> Result<Vec<NewKey>, StoreError> {
    let now = now_millis();
    let operator = UserId::new(OPERATOR).expect("a user id");
    let rows = app.store().keys(None).await?;
    Ok(rows
        .into_iter()
        .filter(|k| k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now))
        .filter_map(|k| {
            Some(NewKey {
                id: KeyId::new(k.id).ok()?,
                name: k.name,
                user: operator.clone(),
                roles: [Role::PlatformAdmin].into(),
                secret_hash: Digest::from_hex(&k.secret_hash).ok()?,
                expires_at: k.expires_at.map(Timestamp),
            })
        })
        .collect())
}

/// Writes the key to a new file only its owner can read. The file first:
/// a key in the directory that nobody has is useless, a file whose key
/// never reached the directory is removed or rewritten.
fn write_key_file(path: &Path, text: &str) -> Result<(), BootstrapError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let write_err = |source| BootstrapError::Write {
        path: path.display().to_string(),
        source,
    };
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(write_err)?;
    f.write_all(format!("{text}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(write_err)
}
