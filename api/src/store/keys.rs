//! API keys as older versions stored them, platform keys included: the
//! public id, roles, expiry, revocation and the SHA-256 of the secret
//! half. Every key now lives in a replicated directory (a tenant's, or
//! the platform's); these rows are read once, to adopt them
//! (`crate::app::adopt`, `crate::bootstrap`), and never written.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::api_key;
use super::{Store, StoreError};

pub use api_key::Model as StoredKey;

impl Store {
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
