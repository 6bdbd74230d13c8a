//! The platform's own keys: listed, rotated and revoked by a platform
//! key, each change an engine command in the platform's audit chain
//! ([`aura_engine::directory::PLATFORM_TENANT`]) made with the caller's
//! key, which the engine checks again when it applies the change.

use aura_engine::Actor;
use aura_engine::directory::{DirectoryChange, KeyId, Role};
use aura_engine::machine::CommandBody;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::keys::{self, ApiKey, KeyCreated};
use super::scope::PlatformScope;
use super::{App, AppError};
use crate::time::now_millis;

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Milliseconds since the epoch after which the new key stops
    /// working; none: it works until revoked or rotated.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// The platform's keys, never their secrets.
pub fn keys(app: &App, scope: &PlatformScope) -> Result<Vec<ApiKey>, AppError> {
    scope.platform_tenant().read(app, |t| {
        let keys = t.directory().keys();
        keys.iter().map(|(id, k)| keys::key_view(id, k)).collect()
    })
}

/// The operator the caller's platform key acts for.
fn operator(scope: &PlatformScope) -> Result<aura_engine::ids::UserId, AppError> {
    scope.caller.user.clone().ok_or_else(|| {
        AppError::Forbidden("only a key of the platform's directory manages its keys".into())
    })
}

/// `change`, made with the caller's key.
fn with_callers_key(scope: &PlatformScope, change: DirectoryChange) -> CommandBody {
    CommandBody::ChangeDirectory {
        change,
        key: Some(scope.caller.key_id.clone()),
    }
}

/// Mints the caller's next key and revokes the one they called with, in
/// one log entry: the new key works, and the old one does not, from the
/// same moment on.
pub async fn rotate(
    app: &App,
    scope: &PlatformScope,
    rotation: Rotation,
) -> Result<KeyCreated, AppError> {
    if rotation.expires_at.is_some_and(|t| t <= now_millis()) {
        return Err(AppError::invalid(
            "/expires_at",
            "the expiry is in the past",
        ));
    }
    let user = operator(scope)?;
    let name = format!("rotated from {}", scope.caller.key_id);
    let roles = [Role::PlatformAdmin].into();
    let (mint, created) = keys::draw(&user, name, roles, rotation.expires_at);
    let revoke = DirectoryChange::RevokeKey {
        key: scope.caller.key_id.clone(),
    };
    let bodies = vec![
        with_callers_key(scope, mint),
        with_callers_key(scope, revoke),
    ];
    let tenant = scope.platform_tenant().tenant;
    app.propose_all(&tenant, Actor::User(user), bodies).await?;
    Ok(created)
}

/// Revokes a platform key at once. The platform's last working key is
/// never revoked: rotate it instead.
pub async fn revoke(app: &App, scope: &PlatformScope, id: &str) -> Result<(), AppError> {
    let key = KeyId::new(id).map_err(|_| AppError::not_found("unrevoked key", id))?;
    let actor = Actor::User(operator(scope)?);
    let body = with_callers_key(scope, DirectoryChange::RevokeKey { key });
    app.propose(&scope.platform_tenant().tenant, actor, body)
        .await?;
    Ok(())
}
