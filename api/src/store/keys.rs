//! Platform keys as stored: the public id, roles, expiry, revocation and
//! the SHA-256 of the secret half (never the secret). Tenant keys are in
//! the tenants' replicated directories; rows of them that older versions
//! wrote here are read once, to adopt them (`crate::app::adopt`).

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::api_key;
use super::{Store, StoreError};

pub use api_key::Model as StoredKey;

impl Store {
    pub async fn insert_key(&self, k: StoredKey) -> Result<StoredKey, StoreError> {
        api_key::Entity::insert(api_key::ActiveModel {
            id: Set(k.id.clone()),
            tenant: Set(k.tenant.clone()),
            user_id: Set(k.user_id.clone()),
            name: Set(k.name.clone()),
            roles: Set(k.roles.clone()),
            secret_hash: Set(k.secret_hash.clone()),
            created_at: Set(k.created_at),
            expires_at: Set(k.expires_at),
            revoked_at: Set(k.revoked_at),
        })
        .exec(self.db())
        .await?;
        Ok(k)
    }

    /// The platform key `id` (tenant keys live in the tenants'
    /// replicated directories; a row of one left here by an older version
    /// is never taken for a platform key).
    pub async fn platform_key(&self, id: &str) -> Result<Option<StoredKey>, StoreError> {
        Ok(api_key::Entity::find_by_id(id.to_owned())
            .filter(api_key::Column::Tenant.is_null())
            .one(self.db())
            .await?)
    }

    /// A tenant's keys (`None`: the platform keys).
    pub async fn keys(&self, tenant: Option<&str>) -> Result<Vec<StoredKey>, StoreError> {
        let q = match tenant {
            Some(t) => api_key::Entity::find().filter(api_key::Column::Tenant.eq(t)),
            None => api_key::Entity::find().filter(api_key::Column::Tenant.is_null()),
        };
        Ok(q.order_by_asc(api_key::Column::CreatedAt)
            .order_by_asc(api_key::Column::Id)
            .all(self.db())
            .await?)
    }
}
