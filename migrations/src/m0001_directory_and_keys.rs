//! The directory (users, groups, memberships), API keys and idempotency
//! records.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Tenant,
    Id,
    UserName,
    DisplayName,
    Email,
    Active,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    Tenant,
    Id,
    DisplayName,
    CreatedAt,
}

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    Tenant,
    GroupId,
    UserId,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    Tenant,
    UserId,
    Name,
    Roles,
    SecretHash,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum IdempotencyRecords {
    Table,
    Principal,
    Key,
    RequestDigest,
    Status,
    Headers,
    Body,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(ColumnDef::new(Users::Tenant).string_len(128).not_null())
                .col(ColumnDef::new(Users::Id).string_len(128).not_null())
                .col(ColumnDef::new(Users::UserName).string_len(256).not_null())
                .col(
                    ColumnDef::new(Users::DisplayName)
                        .string_len(256)
                        .not_null(),
                )
                .col(ColumnDef::new(Users::Email).string_len(320))
                .col(ColumnDef::new(Users::Active).boolean().not_null())
                .col(ColumnDef::new(Users::CreatedAt).big_integer().not_null())
                .primary_key(Index::create().col(Users::Tenant).col(Users::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("users_tenant_user_name")
                .table(Users::Table)
                .col(Users::Tenant)
                .col(Users::UserName)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Groups::Table)
                .col(ColumnDef::new(Groups::Tenant).string_len(128).not_null())
                .col(ColumnDef::new(Groups::Id).string_len(128).not_null())
                .col(
                    ColumnDef::new(Groups::DisplayName)
                        .string_len(256)
                        .not_null(),
                )
                .col(ColumnDef::new(Groups::CreatedAt).big_integer().not_null())
                .primary_key(Index::create().col(Groups::Tenant).col(Groups::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("groups_tenant_display_name")
                .table(Groups::Table)
                .col(Groups::Tenant)
                .col(Groups::DisplayName)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(GroupMembers::Table)
                .col(
                    ColumnDef::new(GroupMembers::Tenant)
                        .string_len(128)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(GroupMembers::GroupId)
                        .string_len(128)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(GroupMembers::UserId)
                        .string_len(128)
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(GroupMembers::Tenant)
                        .col(GroupMembers::GroupId)
                        .col(GroupMembers::UserId),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("group_members_group")
                        .from(
                            GroupMembers::Table,
                            (GroupMembers::Tenant, GroupMembers::GroupId),
                        )
                        .to(Groups::Table, (Groups::Tenant, Groups::Id))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .name("group_members_user")
                        .from(
                            GroupMembers::Table,
                            (GroupMembers::Tenant, GroupMembers::UserId),
                        )
                        .to(Users::Table, (Users::Tenant, Users::Id))
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("group_members_user")
                .table(GroupMembers::Table)
                .col(GroupMembers::Tenant)
                .col(GroupMembers::UserId)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                // The public half of the key, shown in listings.
                .col(
                    ColumnDef::new(ApiKeys::Id)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                // NULL for a platform key (creates tenants, nothing else).
                .col(ColumnDef::new(ApiKeys::Tenant).string_len(128))
                .col(ColumnDef::new(ApiKeys::UserId).string_len(128))
                .col(ColumnDef::new(ApiKeys::Name).string_len(256).not_null())
                .col(ColumnDef::new(ApiKeys::Roles).string_len(256).not_null())
                // SHA-256 of the secret half; the secret itself is never stored.
                .col(
                    ColumnDef::new(ApiKeys::SecretHash)
                        .string_len(64)
                        .not_null(),
                )
                .col(ColumnDef::new(ApiKeys::CreatedAt).big_integer().not_null())
                .col(ColumnDef::new(ApiKeys::ExpiresAt).big_integer())
                .col(ColumnDef::new(ApiKeys::RevokedAt).big_integer())
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("api_keys_tenant")
                .table(ApiKeys::Table)
                .col(ApiKeys::Tenant)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(IdempotencyRecords::Table)
                // Whose key it is: an API key id, so two callers never
                // collide on the same Idempotency-Key.
                .col(
                    ColumnDef::new(IdempotencyRecords::Principal)
                        .string_len(64)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdempotencyRecords::Key)
                        .string_len(256)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(IdempotencyRecords::RequestDigest)
                        .string_len(64)
                        .not_null(),
                )
                // NULL while the first request is still being handled.
                .col(ColumnDef::new(IdempotencyRecords::Status).integer())
                .col(ColumnDef::new(IdempotencyRecords::Headers).text())
                .col(ColumnDef::new(IdempotencyRecords::Body).blob())
                .col(
                    ColumnDef::new(IdempotencyRecords::CreatedAt)
                        .big_integer()
                        .not_null(),
                )
                .primary_key(
                    Index::create()
                        .col(IdempotencyRecords::Principal)
                        .col(IdempotencyRecords::Key),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idempotency_records_created_at")
                .table(IdempotencyRecords::Table)
                .col(IdempotencyRecords::CreatedAt)
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            IdempotencyRecords::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            GroupMembers::Table.into_iden(),
            Groups::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
