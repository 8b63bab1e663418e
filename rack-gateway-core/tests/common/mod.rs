//! Fixtures shared by the store suites: each behaviour runs against the embedded store (in a
//! temporary directory) and against PostgreSQL (a fresh database per test on the server named by
//! `DATABASE_URL`; `scripts/with-postgres` provides a throwaway one).
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use rack_gateway_core::store::{EmbeddedStore, PostgresStore, Store};

/// Opens further instances over the same data, as another process would (own connections).
#[derive(Clone)]
pub enum Opener {
    Embedded(std::path::PathBuf),
    Postgres(String),
}

impl Opener {
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Opener::Embedded(dir) => Arc::new(EmbeddedStore::open(dir).await.unwrap()),
            Opener::Postgres(url) => Arc::new(PostgresStore::connect(url, 4).await.unwrap()),
        }
    }
}

pub async fn embedded() -> (Arc<dyn Store>, Opener, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let opener = Opener::Embedded(dir.path().join("data"));
    (opener.open().await, opener, dir)
}

/// A database of its own on the `DATABASE_URL` server, dropped when this is dropped.
pub struct TestDb {
    admin_url: String,
    name: String,
    pub url: String,
}

pub async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to DATABASE_URL: {e}"));
    tokio::spawn(connection);
    client
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

impl TestDb {
    pub async fn create() -> TestDb {
        let Ok(admin_url) = std::env::var("DATABASE_URL") else {
            panic!(
                "DATABASE_URL is not set: run scripts/test (or scripts/with-postgres cargo test) \
                 or set DATABASE_URL to a PostgreSQL server URL"
            );
        };
        let name = format!("rgw_test_{}", uuid::Uuid::new_v4().simple());
        admin(&admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let url = with_database(&admin_url, &name);
        TestDb {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot await: use a runtime of its own on another thread (works during a panic).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move { admin(&admin_url).await.batch_execute(&sql).await })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// Declares an `embedded` and a `postgres` test for each behaviour `async fn(store, opener)`.
macro_rules! conformance {
    ($($behaviour:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let (store, opener, _dir) = crate::common::embedded().await;
                    super::$behaviour(store, opener).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $behaviour() {
                    let db = crate::common::TestDb::create().await;
                    let opener = crate::common::Opener::Postgres(db.url.clone());
                    let store = opener.open().await;
                    super::$behaviour(store, opener).await;
                    drop(db);
                }
            )*
        }
    };
}
