//! The settings cache: the current [`Settings`] snapshot of this process, kept fresh.
//!
//! [`SettingsCache::start`] subscribes to the store's change feed, then loads every stored
//! setting and resolves it with the environment overrides parsed at start-up. Whenever the feed
//! reports a change (from any instance sharing the store) or a reconnection, the cache reloads
//! and publishes a new snapshot; readers take an `Arc` of the current one, which costs a read
//! lock and a reference count. While the feed is disconnected the cache also reloads every few
//! seconds, and always at least once a minute, as a backstop.
//!
//! The cache is also the proxy's [`EnvPolicy`] (per-app protected and secret env names) and
//! drives the RBAC [`Policy`] watch channel (`allow_destructive_actions`), so a change applies
//! to the next request without a restart.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rack_gateway_core::store::StoreError> {
//! use std::sync::Arc;
//! use rack_gateway_bin::settings::SettingsCache;
//! use rack_gateway_core::settings::EnvOverrides;
//!
//! let store = rack_gateway_core::store::open(None, std::path::Path::new("./data"), 4).await?;
//! store.migrate().await?;
//! let cache = SettingsCache::start(store, Arc::new(EnvOverrides::new())).await?;
//! let policy = cache.policy();
//! assert_eq!(policy.borrow().allow_destructive_actions, cache.current().allow_destructive_actions());
//! # Ok(()) }
//! ```

use std::sync::{Arc, Weak};
use std::time::Duration;

use rack_gateway_core::rbac::Policy;
use rack_gateway_core::settings::{EnvOverrides, Settings};
use rack_gateway_core::store::{IdentityEvent, IdentityWatch, Store, StoreError};
use rack_gateway_layers::redact::EnvPolicy;
use tokio::sync::{watch, Mutex};

/// Reload at least this often, even when the feed is quiet.
const BACKSTOP: Duration = Duration::from_secs(60);
/// Reload this often while the feed is disconnected.
const DISCONNECTED_POLL: Duration = Duration::from_secs(5);
/// Retry this soon after a reload failed.
const RETRY: Duration = Duration::from_secs(1);

/// The settings of this process, reloaded when any instance changes them.
pub struct SettingsCache {
    store: Arc<dyn Store>,
    env: Arc<EnvOverrides>,
    current: watch::Sender<Arc<Settings>>,
    policy: watch::Sender<Policy>,
    /// Serialises reloads, so that an older read never replaces a newer snapshot.
    reloading: Mutex<()>,
}

impl std::fmt::Debug for SettingsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsCache")
            .field("backend", &self.store.backend())
            .field("env_overrides", &self.env.len())
            .finish_non_exhaustive()
    }
}

impl SettingsCache {
    /// Subscribes to the store's change feed, loads the settings, and keeps them fresh until
    /// the cache is dropped (or the store, which ends the feed).
    pub async fn start(
        store: Arc<dyn Store>,
        env: Arc<EnvOverrides>,
    ) -> Result<Arc<Self>, StoreError> {
        // Subscribe first: a change committed while loading is then seen as an event.
        let feed = store.watch_identity().await?;
        let settings = Arc::new(Settings::from_stored(
            Arc::clone(&env),
            &store.list_settings().await?,
        ));
        let cache = Arc::new(SettingsCache {
            policy: watch::Sender::new(settings.policy()),
            current: watch::Sender::new(settings),
            store,
            env,
            reloading: Mutex::new(()),
        });
        tokio::spawn(keep_fresh(Arc::downgrade(&cache), feed));
        Ok(cache)
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Settings> {
        Arc::clone(&self.current.borrow())
    }

    /// Receives every new snapshot.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Settings>> {
        self.current.subscribe()
    }

    /// The RBAC policy switches, updated when `allow_destructive_actions` changes.
    pub fn policy(&self) -> watch::Receiver<Policy> {
        self.policy.subscribe()
    }

    /// The store the settings live in.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Reads the stored settings now and publishes the new snapshot.
    pub async fn reload(&self) -> Result<Arc<Settings>, StoreError> {
        let _one_at_a_time = self.reloading.lock().await;
        let rows = self.store.list_settings().await?;
        let settings = Arc::new(Settings::from_stored(Arc::clone(&self.env), &rows));
        self.publish(Arc::clone(&settings));
        Ok(settings)
    }

    /// Publishes `settings` (used when a reload after a local change failed, so this instance
    /// still shows what it just wrote; the next reload replaces it).
    pub fn publish(&self, settings: Arc<Settings>) {
        let policy = settings.policy();
        self.current.send_replace(settings);
        self.policy.send_if_modified(|current| {
            let changed = *current != policy;
            if changed {
                tracing::info!(
                    allow_destructive_actions = policy.allow_destructive_actions,
                    "policy changed by settings"
                );
                *current = policy;
            }
            changed
        });
    }
}

impl EnvPolicy for SettingsCache {
    fn protected_keys(&self, app: &str) -> Vec<String> {
        self.current().protected_env_vars(app)
    }

    fn secret_keys(&self, app: &str) -> Vec<String> {
        self.current().secret_env_vars(app)
    }
}

/// Reloads on every change, reconnection and backstop tick, until the cache or the feed goes.
async fn keep_fresh(cache: Weak<SettingsCache>, mut feed: IdentityWatch) {
    let mut connected = true;
    let mut wait = BACKSTOP;
    loop {
        let reload = tokio::select! {
            event = feed.recv() => match event {
                Some(IdentityEvent::Changed) => true,
                Some(IdentityEvent::Resumed) => {
                    connected = true;
                    true
                }
                Some(IdentityEvent::Disconnected) => {
                    connected = false;
                    tracing::warn!("settings feed disconnected; polling until it resumes");
                    false
                }
                None => break,
            },
            () = tokio::time::sleep(wait) => true,
        };
        // Events queued meanwhile are covered by the reload below.
        while let Ok(event) = feed.try_recv() {
            match event {
                IdentityEvent::Disconnected => connected = false,
                IdentityEvent::Resumed => connected = true,
                IdentityEvent::Changed => {}
            }
        }
        wait = if connected {
            BACKSTOP
        } else {
            DISCONNECTED_POLL
        };
        if !reload {
            continue;
        }
        let Some(cache) = cache.upgrade() else {
            break;
        };
        if let Err(error) = cache.reload().await {
            tracing::warn!(%error, "could not reload settings; retrying");
            wait = RETRY;
        }
    }
    tracing::debug!("settings cache stopped following changes");
}

#[cfg(test)]
mod tests {
    use rack_gateway_core::store::EmbeddedStore;
    use serde_json::json;

    use super::*;

    async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).await.unwrap());
        store.migrate().await.unwrap();
        (store, dir)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_from_another_handle_arrive_within_a_second() {
        let (store, dir) = store().await;
        let env = Arc::new(
            EnvOverrides::from_vars([("RGW_APP_WEB_SETTING_SECRET_ENV_VARS", "license")]).unwrap(),
        );
        let cache = SettingsCache::start(Arc::clone(&store), env).await.unwrap();
        let mut policy = cache.policy();
        assert!(!policy.borrow().allow_destructive_actions);
        assert_eq!(cache.secret_keys("web"), ["LICENSE"]);

        // Another process writes (its own connection).
        let other = EmbeddedStore::open(dir.path()).await.unwrap();
        rack_gateway_core::store::SettingsStore::put_setting(
            &other,
            None,
            "allow_destructive_actions",
            &json!(true),
            None,
        )
        .await
        .unwrap();
        rack_gateway_core::store::SettingsStore::put_setting(
            &other,
            Some("web"),
            "protected_env_vars",
            &json!(["port"]),
            None,
        )
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(1), policy.changed())
            .await
            .expect("policy updated within a second")
            .unwrap();
        assert!(policy.borrow().allow_destructive_actions);
        // Both rows are in by the time either is seen, or on the next reload.
        tokio::time::timeout(Duration::from_secs(1), async {
            while cache.protected_keys("web") != ["PORT"] {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("protected keys updated within a second");
    }

    #[tokio::test]
    async fn publish_updates_the_policy_only_when_it_changes() {
        let (store, _dir) = store().await;
        let cache = SettingsCache::start(store, Arc::new(EnvOverrides::new()))
            .await
            .unwrap();
        let mut policy = cache.policy();
        let same = cache
            .current()
            .with_stored(None, "session_timeout_minutes", Some(json!(9)));
        cache.publish(Arc::new(same));
        assert!(!policy.has_changed().unwrap());
        assert_eq!(cache.current().session_timeout_minutes(), 9);
        let allowed =
            cache
                .current()
                .with_stored(None, "allow_destructive_actions", Some(json!(true)));
        cache.publish(Arc::new(allowed));
        assert!(policy.has_changed().unwrap());
        assert!(policy.borrow_and_update().allow_destructive_actions);
    }
}
