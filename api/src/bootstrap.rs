//! The one-time bootstrap key: on the first start, with no platform key
//! in the database, AURA mints a `platform_admin` key and writes it to a
//! file only the server's user can read. Whoever holds it creates the
//! tenants; it is never written again (delete the file once it is stored
//! safely).

use std::io::Write as _;
use std::path::Path;

use crate::app::keys::secret as key;
use crate::app::role::{self, Role};
use crate::store::keys::StoredKey;
use crate::store::{Store, StoreError};
use crate::time::now_millis;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the bootstrap key to {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Mints the platform key if there is none and writes it to `path` (mode
/// 0600, never overwriting a file). Returns whether it did.
pub async fn ensure_platform_key(store: &Store, path: &Path) -> Result<bool, BootstrapError> {
    if !store.keys(None).await?.is_empty() {
        return Ok(false);
    }
    let minted = key::mint();
    let write_err = |source| BootstrapError::Write {
        path: path.display().to_string(),
        source,
    };
    // The file first: a key in the database that nobody has is useless,
    // a file whose key never reached the database is simply rewritten.
    let _ = std::fs::remove_file(path);
    let mut f = {
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(write_err)?
    };
    f.write_all(format!("{}\n", minted.text).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(write_err)?;
    store
        .insert_key(StoredKey {
            id: minted.id.to_string(),
            tenant: None,
            user_id: None,
            name: "bootstrap platform admin".into(),
            roles: role::join(&[Role::PlatformAdmin].into()),
            secret_hash: minted.secret_hash.to_hex(),
            created_at: now_millis(),
            expires_at: None,
            revoked_at: None,
        })
        .await?;
    Ok(true)
}
