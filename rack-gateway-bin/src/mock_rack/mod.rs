//! A fake Convox rack API for `rack-gateway dev`, tests and benchmarks.
//!
//! [`MockRack`] serves the routes of the gateway's Convox allow-list with the JSON shapes of the
//! real Convox API (`pkg/structs`: hyphenated keys, RFC 3339 times), keeps in-memory state that
//! the write routes really change (scaling, releases with posted `env`, promotes, builds, apps),
//! and speaks websockets for exec and logs. Everything except `GET /health` needs HTTP Basic
//! auth with user `convox` and the rack token.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use rack_gateway_bin::mock_rack::MockRack;
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! MockRack::new("token").serve(listener, std::future::pending()).await
//! # }
//! ```

mod apps;
mod auth;
mod builds;
mod error;
mod exec;
mod ids;
mod logs;
mod model;
mod objects;
mod params;
mod processes;
mod releases;
mod routes;
mod seed;
mod services;
mod state;
mod system;
mod ws;

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

use self::state::State;

/// A fake Convox rack: cheap to clone, all clones share one in-memory state.
#[derive(Clone)]
pub struct MockRack {
    inner: Arc<Inner>,
}

struct Inner {
    token: String,
    state: Mutex<State>,
    shutdown: watch::Sender<bool>,
}

impl MockRack {
    /// Creates a rack with seeded apps, builds, releases and instances, guarded by `token`.
    pub fn new(token: impl Into<String>) -> Self {
        let (shutdown, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                token: token.into(),
                state: Mutex::new(seed::state()),
                shutdown,
            }),
        }
    }

    /// Returns the router with every mock route, auth included.
    pub fn router(&self) -> axum::Router {
        routes::build(self.clone())
    }

    /// Serves the mock on `listener` until `shutdown` resolves; open streams are then closed.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let rack = self.clone();
        let signal = async move {
            shutdown.await;
            rack.inner.shutdown.send_replace(true);
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(signal)
            .await
    }

    /// The secret values in the seeded release env, so tests can check logs never contain them.
    pub fn secret_values() -> &'static [&'static str] {
        seed::SECRET_VALUES
    }

    /// Locks the shared state; a poisoned lock is recovered since the state stays consistent.
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The rack token (Basic auth password).
    fn token(&self) -> &str {
        &self.inner.token
    }

    /// A receiver that flips to `true` when [`MockRack::serve`] is shutting down.
    fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }
}

impl std::fmt::Debug for MockRack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockRack").finish_non_exhaustive()
    }
}
