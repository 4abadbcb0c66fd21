//! Test support, shared by every suite: a PostgreSQL database per test,
//! copied from a migrated template (fast: a file copy, not a migration run)
//! and dropped when the test ends, even when it fails; a Redis queue per
//! test; a workspace with its people and plots; the real binaries as child
//! processes, apps running in the test's process, and clients of their HTTP
//! side and of their subscriptions; a private Redis and PostgreSQL cluster to
//! stop and start, and a proxy to cut.

use std::hash::{DefaultHasher, Hash, Hasher};

mod api;
mod fixture;
mod private;
mod process;
mod proxy;
mod queue_keys;
mod running;
mod wait;
mod ws;

pub use api::Api;
pub use fixture::Workspace;
pub use private::{PrivateCluster, PrivateRedis};
pub use process::{Logs, Process, Target, binary, free_port};
pub use proxy::TcpProxy;
pub use queue_keys::{QueueKeys, unique_queue};
pub use running::{Running, Shutdown};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
pub use wait::{eventually, sample};
pub use ws::{Client, Protocol, SUBSCRIPTION, Seen, Socket};

/// The key the tests' servers sign bearer tokens with (production's
/// length, so that it passes the server's checks there too).
pub const TEST_SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";

/// The PostgreSQL server tests use, without a database name.
/// `HOLDFAST_TEST_PG` overrides the machine's default server.
pub fn server_url() -> String {
    std::env::var("HOLDFAST_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// The Redis server tests use (`HOLDFAST_TEST_REDIS` overrides it).
pub fn redis_url() -> String {
    std::env::var("HOLDFAST_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Name of the template for the current migrations: a change to any
/// migration's SQL makes a new one.
fn template_name() -> String {
    let mut h = DefaultHasher::new();
    for sql in holdfast_migrations::schema_sql() {
        sql.hash(&mut h);
    }
    format!("hf_template_{:016x}", h.finish())
}

/// A fresh, migrated database, dropped on drop.
pub struct TestDb {
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let admin = Database::connect(format!("{}/postgres", server_url()))
            .await
            .expect("connect to PostgreSQL (is it running? see README)");
        let template = ensure_template(&admin).await;
        let name = format!("hf_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await
            .expect("create test database");
        admin.close().await.ok();
        let url = format!("{}/{name}", server_url());
        TestDb { name, url }
    }

    /// A plain connection (pool) to this database.
    pub async fn connect(&self) -> DatabaseConnection {
        Database::connect(&self.url)
            .await
            .expect("connect to test database")
    }
}

/// Builds the template once per schema; concurrent test processes wait on an
/// advisory lock. It is built under a temporary name and renamed when done,
/// so a crash mid-way never leaves a half-migrated template behind.
async fn ensure_template(admin: &DatabaseConnection) -> String {
    let template = template_name();
    admin
        .execute_unprepared("SELECT pg_advisory_lock(7274001)")
        .await
        .expect("advisory lock");
    let exists = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT 1 AS one FROM pg_database WHERE datname = '{template}'"),
        ))
        .await
        .expect("look up template")
        .is_some();
    if !exists {
        let old = admin
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT datname FROM pg_database WHERE datname LIKE 'hf\\_template\\_%'",
            ))
            .await
            .expect("list old templates");
        for row in old {
            let name: String = row.try_get("", "datname").expect("datname");
            admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await
                .expect("drop old template");
        }
        let building = format!("{template}_building");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {building}"))
            .await
            .expect("create template");
        let conn = Database::connect(format!("{}/{building}", server_url()))
            .await
            .expect("connect to template");
        holdfast_migrations::migrate(&conn)
            .await
            .expect("migrate template");
        conn.close().await.ok();
        admin
            .execute_unprepared(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .await
            .expect("rename template");
    }
    admin
        .execute_unprepared("SELECT pg_advisory_unlock(7274001)")
        .await
        .expect("advisory unlock");
    template
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any runtime (or inside one we must not block):
        // do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let admin = Database::connect(format!("{}/postgres", server_url())).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                admin.close().await
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}
