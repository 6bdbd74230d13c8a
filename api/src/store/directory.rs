//! Directories as older versions kept them, in SQL. A tenant's directory
//! now lives in its replicated state; these rows are read once, to adopt
//! them into it (`crate::app::adopt`), and never written.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use super::entities::{group, group_member, user};
use super::{Store, StoreError};

pub use group::Model as Group;
pub use user::Model as User;

impl Store {
    pub async fn users(&self, tenant: &str) -> Result<Vec<User>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::Tenant.eq(tenant))
            .order_by_asc(user::Column::Id)
            .all(self.db())
            .await?)
    }

    pub async fn groups(&self, tenant: &str) -> Result<Vec<Group>, StoreError> {
        Ok(group::Entity::find()
            .filter(group::Column::Tenant.eq(tenant))
            .order_by_asc(group::Column::Id)
            .all(self.db())
            .await?)
    }

    pub async fn members(&self, tenant: &str, group: &str) -> Result<Vec<String>, StoreError> {
        Ok(group_member::Entity::find()
            .filter(group_member::Column::Tenant.eq(tenant))
            .filter(group_member::Column::GroupId.eq(group))
            .order_by_asc(group_member::Column::UserId)
            .all(self.db())
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect())
    }
}
