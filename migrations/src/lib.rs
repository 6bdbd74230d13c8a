//! AURA's SQL schema, as sea-orm migrations.
//!
//! The replicated engine is the source of truth for everything governed
//! (tenants, agents, missions, decisions, audit). SQL holds what the API
//! server owns on its own: the directory (users, groups), API keys and
//! idempotency records. Every migration runs on SQLite (the embedded
//! default) and PostgreSQL; times are milliseconds since the epoch in a
//! BIGINT so both behave the same.
//!
//! A new migration is a new module appended to [`Migrator::migrations`];
//! applied migrations are never edited.

pub use sea_orm_migration::prelude::*;

mod m0001_directory_and_keys;

#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(m0001_directory_and_keys::Migration)]
    }
}
