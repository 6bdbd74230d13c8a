//! A tenant's secrets (model providers' API keys, say): written by its
//! admins, never read back. The value is sealed here ([`seal`]) before
//! it is proposed, so the replicated log, the state, snapshots and the
//! audit chain hold only sealed bytes, names and versions; only the
//! runtime opens a value, for the call that needs it.

pub mod seal;

use aura_engine::ids::TenantId;
use aura_engine::machine::CommandBody;
use aura_engine::secret::SecretName;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use self::seal::Sealer;
use super::scope::{Admin, TenantScope};
use super::{App, AppError};

/// The longest value a secret may hold, in bytes.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// A secret as anyone may see it: no value.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SecretInfo {
    pub name: SecretName,
    /// 1 for the first value, one more for each put after it.
    #[schema(minimum = 1)]
    pub version: u32,
    /// Epoch milliseconds of the last put.
    pub updated_at: i64,
}

/// A value to store.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretValue {
    /// The value: stored sealed, never returned, logged or audited.
    #[schema(min_length = 1, max_length = 8192)]
    pub value: String,
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(..)")
    }
}

fn secret_name(raw: &str) -> Result<SecretName, AppError> {
    SecretName::new(raw).map_err(|e| AppError::invalid("/name", e.to_string()))
}

fn sealer(app: &App) -> Sealer {
    let engine = app.engine();
    Sealer::new(
        engine.kek().derive(seal::PURPOSE),
        engine.derived_key(seal::PURPOSE),
    )
}

/// Puts a secret's value: a new secret at version 1, an existing one at
/// its next version.
pub async fn put(
    app: &App,
    scope: &TenantScope<Admin>,
    name: &str,
    value: SecretValue,
) -> Result<SecretInfo, AppError> {
    let name = secret_name(name)?;
    if value.value.is_empty() || value.value.len() > MAX_VALUE_BYTES {
        return Err(AppError::invalid(
            "/value",
            format!("must be 1 to {MAX_VALUE_BYTES} bytes"),
        ));
    }
    let sealed = sealer(app).seal(&scope.tenant, &name, &value.value);
    let body = CommandBody::PutSecret {
        name: name.clone(),
        sealed,
    };
    app.propose(&scope.tenant, scope.actor(), body).await?;
    scope
        .read(app, |t| t.secrets().get(&name).map(|r| info(&name, r)))?
        .ok_or_else(|| AppError::Internal("the secret was put but is not there".into()))
}

/// The tenant's secrets, by name, without their values.
pub fn list(app: &App, scope: &TenantScope<Admin>) -> Result<Vec<SecretInfo>, AppError> {
    scope.read(app, |t| {
        t.secrets().iter().map(|(n, r)| info(n, r)).collect()
    })
}

/// Deletes a secret; a configuration that names it fails when it is used.
pub async fn delete(app: &App, scope: &TenantScope<Admin>, name: &str) -> Result<(), AppError> {
    let name = SecretName::new(name).map_err(|_| AppError::not_found("secret", name))?;
    app.propose(
        &scope.tenant,
        scope.actor(),
        CommandBody::DeleteSecret { name },
    )
    .await?;
    Ok(())
}

/// Why the runtime could not have a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    #[error("tenant `{tenant}` has no secret `{name}`")]
    Missing { tenant: TenantId, name: String },
    #[error(transparent)]
    Open(#[from] seal::OpenError),
}

/// A secret's value, for the runtime's call that needs it: only `tenant`'s
/// own secrets are looked at.
pub(crate) fn reveal(app: &App, tenant: &TenantId, name: &str) -> Result<String, RevealError> {
    let missing = || RevealError::Missing {
        tenant: tenant.clone(),
        name: name.to_owned(),
    };
    let name = SecretName::new(name).map_err(|_| missing())?;
    let sealed = app
        .read_local(|s| {
            s.tenant(tenant)
                .and_then(|t| t.secrets().get(&name))
                .map(|r| r.sealed.clone())
        })
        .ok_or_else(missing)?;
    Ok(sealer(app).open(tenant, &name, &sealed)?)
}

fn info(name: &SecretName, r: &aura_engine::secret::SecretRecord) -> SecretInfo {
    SecretInfo {
        name: name.clone(),
        version: r.version,
        updated_at: r.updated_at.as_millis(),
    }
}
