//! Assembling a running gateway from a validated configuration and an open store.

use std::sync::Arc;

use anyhow::Context as _;
use rack_gateway_core::identity::{IdentityResolver, NewUser, ResolverConfig};
use rack_gateway_core::store::Store;
use rack_gateway_layers::forward::{OriginPolicy, RackForward};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::ServeConfig;
use crate::server::health::{Health, RackProbe};
use crate::server::{listen, routes, stack, Dispatch};

/// A gateway ready to serve: everything per-request was built here, once.
pub struct Gateway {
    dispatch: Dispatch,
    tls: Option<TlsAcceptor>,
}

impl Gateway {
    /// Ensures bootstrap users, starts the identity cache and rack probe, builds the stack.
    pub async fn build(config: &ServeConfig, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        for (email, role) in &config.bootstrap_users {
            let name = email.split('@').next().unwrap_or_default().to_owned();
            store
                .ensure_user(&NewUser {
                    email: email.clone(),
                    name,
                    roles: vec![*role],
                })
                .await
                .with_context(|| format!("ensuring bootstrap user {email}"))?;
        }
        let resolver = IdentityResolver::start(Arc::clone(&store), ResolverConfig::default())
            .await
            .context("subscribing to identity changes")?;
        let origins = OriginPolicy {
            allowed_hosts: config.domain.iter().cloned().collect(),
            allow_localhost: config.dev_mode,
        };
        let forward = RackForward::new(config.rack.target.clone(), origins).context("RACK_HOST")?;
        let (_, policy) = watch::channel(config.policy);
        let probe = RackProbe::spawn(forward.clone());
        let dispatch = Dispatch::new(
            stack::proxy_stack(resolver, policy, forward),
            routes::router(Health::new(store, probe)),
        );
        let tls = match &config.tls {
            None => None,
            Some(files) => Some(listen::tls_acceptor(&files.cert, &files.key)?),
        };
        Ok(Gateway { dispatch, tls })
    }

    /// Serves until `shutdown` resolves, then drains.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        listen::serve(listener, self.tls, self.dispatch, shutdown).await
    }

    /// The top-level service, for embedding and benchmarks.
    pub fn service(&self) -> Dispatch {
        self.dispatch.clone()
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
