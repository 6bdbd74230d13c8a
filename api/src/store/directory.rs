//! The directory: a tenant's users and groups. Roles and approval levels
//! are resolved from here; SCIM and SSO write here too.

use std::collections::BTreeSet;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use super::entities::{group, group_member, user};
use super::{Store, StoreError};

pub use group::Model as Group;
pub use user::Model as User;

impl Store {
    pub async fn insert_user(&self, u: User) -> Result<User, StoreError> {
        user::Entity::insert(user::ActiveModel {
            tenant: Set(u.tenant.clone()),
            id: Set(u.id.clone()),
            user_name: Set(u.user_name.clone()),
            display_name: Set(u.display_name.clone()),
            email: Set(u.email.clone()),
            active: Set(u.active),
            created_at: Set(u.created_at),
        })
        .exec(self.db())
        .await?;
        Ok(u)
    }

    pub async fn user(&self, tenant: &str, id: &str) -> Result<Option<User>, StoreError> {
        Ok(user::Entity::find_by_id((tenant.to_owned(), id.to_owned()))
            .one(self.db())
            .await?)
    }

    pub async fn users(&self, tenant: &str) -> Result<Vec<User>, StoreError> {
        Ok(user::Entity::find()
            .filter(user::Column::Tenant.eq(tenant))
            .order_by_asc(user::Column::Id)
            .all(self.db())
            .await?)
    }

    /// Deletes the user and their memberships; false if there was none.
    pub async fn delete_user(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let txn = self.db().begin().await?;
        group_member::Entity::delete_many()
            .filter(group_member::Column::Tenant.eq(tenant))
            .filter(group_member::Column::UserId.eq(id))
            .exec(&txn)
            .await?;
        let r = user::Entity::delete_by_id((tenant.to_owned(), id.to_owned()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(r.rows_affected == 1)
    }

    pub async fn insert_group(&self, g: Group) -> Result<Group, StoreError> {
        group::Entity::insert(group::ActiveModel {
            tenant: Set(g.tenant.clone()),
            id: Set(g.id.clone()),
            display_name: Set(g.display_name.clone()),
            created_at: Set(g.created_at),
        })
        .exec(self.db())
        .await?;
        Ok(g)
    }

    pub async fn group(&self, tenant: &str, id: &str) -> Result<Option<Group>, StoreError> {
        Ok(
            group::Entity::find_by_id((tenant.to_owned(), id.to_owned()))
                .one(self.db())
                .await?,
        )
    }

    pub async fn groups(&self, tenant: &str) -> Result<Vec<Group>, StoreError> {
        Ok(group::Entity::find()
            .filter(group::Column::Tenant.eq(tenant))
            .order_by_asc(group::Column::Id)
            .all(self.db())
            .await?)
    }

    pub async fn delete_group(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let txn = self.db().begin().await?;
        group_member::Entity::delete_many()
            .filter(group_member::Column::Tenant.eq(tenant))
            .filter(group_member::Column::GroupId.eq(id))
            .exec(&txn)
            .await?;
        let r = group::Entity::delete_by_id((tenant.to_owned(), id.to_owned()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(r.rows_affected == 1)
    }

    /// Adds a member; a user already in the group is a conflict.
    pub async fn add_member(
        &self,
        tenant: &str,
        group: &str,
        user: &str,
    ) -> Result<(), StoreError> {
        group_member::Entity::insert(group_member::ActiveModel {
            tenant: Set(tenant.to_owned()),
            group_id: Set(group.to_owned()),
            user_id: Set(user.to_owned()),
        })
        .exec(self.db())
        .await?;
        Ok(())
    }

    pub async fn remove_member(
        &self,
        tenant: &str,
        group: &str,
        user: &str,
    ) -> Result<bool, StoreError> {
        let r = group_member::Entity::delete_by_id((
            tenant.to_owned(),
            group.to_owned(),
            user.to_owned(),
        ))
        .exec(self.db())
        .await?;
        Ok(r.rows_affected == 1)
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

    /// The groups a user belongs to now, as the engine's approval checks
    /// take them.
    pub async fn groups_of(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<BTreeSet<String>, StoreError> {
        Ok(group_member::Entity::find()
            .filter(group_member::Column::Tenant.eq(tenant))
            .filter(group_member::Column::UserId.eq(user))
            .all(self.db())
            .await?
            .into_iter()
            .map(|m| m.group_id)
            .collect())
    }
}
