//! Assembling a running gateway from a validated configuration and an open store.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rack_gateway_core::identity::{IdentityResolver, NewUser, ResolverConfig, SessionLimits};
use rack_gateway_core::redact::SecretRules;
use rack_gateway_core::store::{AuditStore, Store};
use rack_gateway_layers::audit::{AuditConfig, AuditWriter, WriterConfig, WriterTask};
use rack_gateway_layers::authn::CsrfGuard;
use rack_gateway_layers::forward::{OriginPolicy, RackForward, RelayTracker};
use rack_gateway_layers::redact::BufferBudget;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::ApiState;
use crate::audit::{record_operator_action, spawn_retention, RetentionConfig};
use crate::auth::OidcClient;
use crate::config::ServeConfig;
use crate::server::health::{Health, RackProbe};
use crate::server::listen::ConnectionLimits;
use crate::server::{listen, routes, stack, Dispatch};
use crate::settings::SettingsCache;
use crate::signin::cookies::CookiePolicy;
use crate::signin::secrets::{derive, LoginKey};
use crate::signin::{DevLink, SignIn};

/// How long shutdown waits for websocket relays to close.
const RELAY_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the audit queue to drain.
const AUDIT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// A gateway ready to serve: everything per-request was built here, once.
pub struct Gateway {
    dispatch: Dispatch,
    relays: RelayTracker,
    tls: Option<TlsAcceptor>,
    limits: ConnectionLimits,
    writer_task: WriterTask,
    anchors: Option<crate::anchors::AnchorHandle>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl Gateway {
    /// Ensures bootstrap users, discovers the identity provider, starts the identity cache,
    /// audit writer, rack probe, anchoring, retention and the session sweeper, and builds the
    /// stacks.
    pub async fn build(config: &ServeConfig, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        Self::assemble(config, store, None).await
    }

    /// As [`build`](Self::build), with the one-time dev sign-in link (`rack-gateway dev` only:
    /// `serve` never has the route).
    pub async fn build_dev(
        config: &ServeConfig,
        store: Arc<dyn Store>,
        link: DevLink,
    ) -> anyhow::Result<Self> {
        Self::assemble(config, store, Some(link)).await
    }

    async fn assemble(
        config: &ServeConfig,
        store: Arc<dyn Store>,
        dev_link: Option<DevLink>,
    ) -> anyhow::Result<Self> {
        let keys = config.audit_keys();
        for (email, role) in &config.bootstrap_users {
            let name = email.split('@').next().unwrap_or_default().to_owned();
            let before = store.user_by_email(email).await?;
            let user = store
                .ensure_user(&NewUser {
                    email: email.clone(),
                    name,
                    roles: vec![*role],
                })
                .await
                .with_context(|| format!("ensuring bootstrap user {email}"))?;
            if before.as_ref().map(|u| &u.roles) != Some(&user.roles) {
                record_operator_action(
                    store.as_ref(),
                    &keys,
                    "user.ensure",
                    email,
                    &format!("bootstrap role {role}"),
                )
                .await?;
            }
        }
        let resolver = IdentityResolver::start(Arc::clone(&store), ResolverConfig::default())
            .await
            .context("subscribing to identity changes")?;
        let origins = OriginPolicy {
            allowed_hosts: config.domain.iter().cloned().collect(),
            allow_localhost: config.dev_mode,
        };
        let forward = RackForward::new(config.rack.target.clone(), origins).context("RACK_HOST")?;
        // Settings after migrations (the store is migrated when opened); the cache keeps the
        // policy channel's sender and updates it whenever a setting changes, on any instance.
        let settings = SettingsCache::start(Arc::clone(&store), Arc::clone(&config.settings_env))
            .await
            .context("loading settings")?;
        let policy = settings.policy();
        follow_session_settings(&settings, &resolver);
        let provider = match &config.sign_in {
            Some(sign_in) => {
                Some(Arc::new(OidcClient::discover(sign_in).await.context(
                    "GOOGLE_OAUTH_BASE_URL: discovering the identity provider",
                )?))
            }
            None => None,
        };
        let probe = RackProbe::spawn(forward.clone());
        let keyring = keys.keyring();
        let audit_store: Arc<dyn AuditStore> = store.clone();
        let (writer, writer_task) = AuditWriter::spawn(
            audit_store,
            keyring.current().clone(),
            WriterConfig::default(),
        );
        let secrets = SecretRules::new(config.secret_env_vars.iter().cloned());
        let audit = AuditConfig::new("")
            .trusted_proxies(config.trusted_proxies.clone())
            .secret_rules(secrets.clone());
        let instance_id = uuid::Uuid::new_v4().to_string();
        let anchors = match &config.anchors {
            Some(anchor_config) => Some(
                crate::anchors::AnchorWriter::spawn(
                    Arc::clone(&store),
                    anchor_config.clone(),
                    instance_id.clone(),
                )
                .await,
            ),
            None => None,
        };
        spawn_retention(
            Arc::clone(&store),
            keyring.current().clone(),
            RetentionConfig {
                days: config.log_retention_days,
                interval: Duration::from_secs(24 * 60 * 60),
                instance_id,
            },
        );
        // One env policy, the settings, and one buffer budget for the proxy and the env API.
        let env_policy: Arc<dyn rack_gateway_layers::redact::EnvPolicy> = settings.clone();
        let budget = BufferBudget::default();
        let app_secret = config.app_secret_key.expose();
        let cookies = CookiePolicy {
            secure: !config.dev_mode,
        };
        let csrf = CsrfGuard::new(
            &derive(app_secret, "rack-gateway csrf v1"),
            own_origins(config),
        );
        let mut sign_in = SignIn::new(
            Arc::clone(&store),
            Arc::clone(&resolver),
            LoginKey::from_app_secret(app_secret),
            cookies,
        );
        if let (Some(client), Some(sign_in_config)) = (provider, &config.sign_in) {
            sign_in = sign_in.with_provider(client, sign_in_config.clone());
        }
        if let Some(link) = dev_link {
            sign_in = sign_in.with_dev_link(link);
        }
        let sweeper = crate::signin::sweeper::spawn(
            Arc::clone(&store),
            Arc::clone(&resolver),
            writer.clone(),
            crate::signin::sweeper::SWEEP_INTERVAL,
        );
        let api = ApiState {
            store: Arc::clone(&store),
            resolver: Arc::clone(&resolver),
            writer: writer.clone(),
            keyring,
            anchors: anchors.as_ref().map(|a| a.verifier()),
            rack: forward.clone(),
            secrets: secrets.clone(),
            env_policy: Arc::clone(&env_policy),
            settings,
            audit: audit.clone(),
            budget: budget.clone(),
            csrf,
            cookies,
        };
        let health = Health::new(
            Arc::clone(&store),
            probe,
            writer.clone(),
            anchors.as_ref().map(|a| a.status_receiver()),
        );
        let relays = forward.relays().clone();
        let sign_in = crate::signin::service(sign_in, writer.clone(), audit.clone());
        let dispatch = Dispatch::new(
            stack::proxy_stack(stack::StackParts {
                resolver,
                policy,
                forward,
                writer,
                audit,
                secrets,
                env_policy,
                budget,
            }),
            sign_in,
            crate::api::service(api, crate::api::api_table().context("the API route table")?),
            routes::router(health),
        );
        let tls = match &config.tls {
            None => None,
            Some(files) => Some(listen::tls_acceptor(&files.cert, &files.key)?),
        };
        Ok(Gateway {
            dispatch,
            relays,
            tls,
            limits: ConnectionLimits::new(config.max_connections),
            writer_task,
            anchors,
            sweeper,
        })
    }

    /// Serves until `shutdown` resolves, drains connections, then the audit queue, then writes
    /// a last anchor.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let Gateway {
            dispatch,
            relays,
            tls,
            limits,
            writer_task,
            anchors,
            sweeper,
        } = self;
        let served = listen::serve(listener, tls, dispatch, limits, shutdown).await;
        // The sweeper holds an audit writer handle: it goes first, or the queue never drains.
        sweeper.abort();
        let _ = sweeper.await;
        served?;
        // Websocket sessions outlive their requests: close them (a close frame to each side)
        // so that their records are written before the audit queue drains.
        let still_open = relays.close_all(RELAY_CLOSE_TIMEOUT).await;
        if still_open > 0 {
            tracing::error!(
                still_open,
                "websocket relays still open after {RELAY_CLOSE_TIMEOUT:?}"
            );
        }
        // Every writer handle went with the dispatch service: the task now drains and ends.
        if tokio::time::timeout(AUDIT_DRAIN_TIMEOUT, writer_task.finished())
            .await
            .is_err()
        {
            tracing::error!(
                "audit queue not drained within {AUDIT_DRAIN_TIMEOUT:?} (is the store down?)"
            );
        }
        if let Some(anchors) = anchors {
            anchors.flush_and_stop().await;
        }
        Ok(())
    }
}

/// Holds sessions to the session settings, now and whenever they change (on any instance).
fn follow_session_settings(settings: &SettingsCache, resolver: &Arc<IdentityResolver>) {
    let mut changes = settings.subscribe();
    resolver.set_session_limits(SessionLimits::from_settings(&changes.borrow_and_update()));
    let resolver = Arc::downgrade(resolver);
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let Some(resolver) = resolver.upgrade() else {
                return;
            };
            let limits = SessionLimits::from_settings(&changes.borrow_and_update());
            resolver.set_session_limits(limits);
        }
    });
}

/// The origins of the gateway's own pages, which cookie-authenticated unsafe requests must come
/// from: `https://DOMAIN` (and `http://` in DEV_MODE), and in DEV_MODE the loopback names of
/// the listening port.
fn own_origins(config: &ServeConfig) -> Vec<String> {
    let mut origins = Vec::new();
    if let Some(domain) = &config.domain {
        origins.push(format!("https://{domain}"));
        if config.dev_mode {
            origins.push(format!("http://{domain}"));
        }
    }
    if config.dev_mode {
        let port = config.listen.port();
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            origins.push(format!("http://{host}:{port}"));
        }
    }
    origins
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
