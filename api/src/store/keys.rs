//! API keys as stored: the public id, roles, expiry, revocation and the
//! SHA-256 of the secret half (never the secret).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult,
    IdenStatic, QueryFilter, QueryOrder, QueryTrait, SelectA, SelectB, Statement, sea_query::Expr,
};

use super::entities::{api_key, user};
use super::{Store, StoreError};

pub use api_key::Model as StoredKey;

/// The statement [`Store::key_with_holder`] runs, with the key id as its
/// one parameter.
pub(super) fn key_with_holder_sql(backend: DbBackend) -> String {
    let stmt = api_key::Entity::find_by_id(String::new())
        .find_also_related(user::Entity)
        .build(backend);
    assert_eq!(
        stmt.values.map_or(0, |v| v.0.len()),
        1,
        "the key id is the statement's only parameter"
    );
    stmt.sql
}

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

    /// The key with whether the tenant user it was issued to is active
    /// (`None` for a key issued to no tenant user; `Some(false)` when that
    /// user is gone). One query: authentication reads both on every
    /// request.
    pub async fn key_with_holder(
        &self,
        id: &str,
    ) -> Result<Option<(StoredKey, Option<bool>)>, StoreError> {
        let stmt =
            Statement::from_sql_and_values(self.backend(), &*self.key_with_holder_sql, [id.into()]);
        let Some(row) = self.db().query_one(stmt).await? else {
            return Ok(None);
        };
        // The column prefixes `find_also_related` gives each side.
        let key = StoredKey::from_query_result(&row, SelectA.as_str())?;
        let holder = user::Model::from_query_result_optional(&row, SelectB.as_str())?;
        let active = (key.tenant.is_some() && key.user_id.is_some())
            .then(|| holder.is_some_and(|u| u.active));
        Ok(Some((key, active)))
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

    /// Deletes a key outright (only for one whose creation was undone;
    /// keys in use are revoked, which keeps their record).
    pub async fn delete_key(&self, id: &str) -> Result<(), StoreError> {
        api_key::Entity::delete_by_id(id.to_owned())
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// Revokes a tenant's key; false if the tenant has no such key or it
    /// was already revoked (the first revocation time is kept).
    pub async fn revoke_key(&self, tenant: &str, id: &str, at: i64) -> Result<bool, StoreError> {
        let r = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(at))
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::Tenant.eq(tenant))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(self.db())
            .await?;
        Ok(r.rows_affected == 1)
    }
}
