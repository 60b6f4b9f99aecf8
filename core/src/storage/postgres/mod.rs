//! The catalog on Postgres: for shared deployments where several server processes use one
//! catalog.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

mod instance;
mod maintenance;
mod mirror;
mod ownership;
mod peer;
mod process;
mod schedule;
mod tokens;
mod users;
mod webhooks;

use super::{describe_connect_error, Catalog, DbPool, Result, StorageError};
use crate::domain::Backend;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

pub struct PostgresCatalog {
    pub(super) pool: PgPool,
}

impl PostgresCatalog {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|_| StorageError::InvalidUrl("not a valid postgres:// URL".into()))?;
        let pool = PgPoolOptions::new()
            .after_release(|conn, _| {
                Box::pin(async move { Ok(crate::storage::reusable::<sqlx::Postgres>(conn)) })
            })
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| StorageError::Unavailable(describe_connect_error(&e)))?;
        MIGRATOR.run(&pool).await.map_err(|e| StorageError::Migration(e.to_string()))?;
        Ok(Self { pool })
    }
}

#[async_trait]
impl Catalog for PostgresCatalog {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn refresh_statistics(&self) -> Result<()> {
        // Samples at most 30,000 rows a table (the default statistics target): tens of
        // milliseconds however long the history.
        sqlx::query("ANALYZE mirrors, mirror_holds, maintenance_backups").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool(&self) -> DbPool {
        DbPool::Postgres(self.pool.clone())
    }
}
