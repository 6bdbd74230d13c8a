//! The SQL store: the directory, API keys and idempotency records, through
//! sea-orm on SQLite (embedded default) or PostgreSQL.

pub mod directory;
pub mod entities;
pub mod idempotency;
pub mod keys;

use std::path::Path;
use std::time::Duration;

use aura_migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection, DbErr, SqlErr,
    Statement,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write: the thing already exists.
    #[error("{0}")]
    Conflict(String),
    /// A referenced row does not exist (foreign key).
    #[error("{0}")]
    MissingReference(String),
    #[error("database error: {0}")]
    Database(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> StoreError {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(m)) => StoreError::Conflict(m),
            Some(SqlErr::ForeignKeyConstraintViolation(m)) => StoreError::MissingReference(m),
            _ => StoreError::Database(e),
        }
    }
}

/// A connection pool to the migrated database.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// The embedded default: an SQLite file in the data dir.
    pub fn sqlite_url(data_dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", data_dir.join("aura.db").display())
    }

    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        if url.starts_with("sqlite:") {
            // One writer at a time is SQLite's rule; a small pool keeps
            // readers concurrent without piling up lock waits.
            // A connection is a file handle that cannot go stale the way a
            // server connection can, so it is not pinged before each use
            // (a round trip to the connection's worker thread per query).
            opts.max_connections(4)
                .min_connections(1)
                .test_before_acquire(false);
        }
        let db = Database::connect(opts).await?;
        if db.get_database_backend() == DatabaseBackend::Sqlite {
            // WAL: readers never block the writer, and a commit is one
            // fsync of the log instead of two of the database file.
            db.execute_unprepared("PRAGMA journal_mode=WAL").await?;
        }
        Migrator::up(&db, None).await?;
        Ok(Store { db })
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    pub fn backend(&self) -> DatabaseBackend {
        self.db.get_database_backend()
    }

    /// Whether the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let stmt = Statement::from_string(self.backend(), "SELECT 1");
        self.db.query_one(stmt).await?;
        Ok(())
    }
}
