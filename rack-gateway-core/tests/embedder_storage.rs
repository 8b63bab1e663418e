//! A service embedding the gateway's pieces over storage of its own: identities and the audit
//! chain kept in memory, each behind its narrow trait ([`IdentitySource`], [`AuditSink`]) in a
//! few dozen lines, driving the real resolver and checked by the real verifier.
//!
//! Nothing here needs a store backend: these tests also run with `--no-default-features`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use rack_gateway_core::audit::{
    seal, AuditEvent, AuditRecord, AuditSink, ChainHead, ChainKey, Keyring, Verifier,
};
use rack_gateway_core::identity::{
    ApiToken, ApiTokenSecret, IdentityResolver, IdentitySource, Principal, ResolveError,
    ResolverConfig, Session, SessionKind, SessionSecret, TokenHash, User,
};
use rack_gateway_core::rbac::{Permission, Role};
use rack_gateway_core::store::StoreError;

// ---------------------------------------------------------------------------------------------
// The embedder's storage

/// Users and tokens in maps. No change feed: the trait's default (quiet) one is used.
#[derive(Default)]
struct MemoryIdentities {
    tokens: Mutex<HashMap<TokenHash, ApiToken>>,
    users: Mutex<HashMap<i64, User>>,
}

#[async_trait]
impl IdentitySource for MemoryIdentities {
    async fn token_by_hash(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(tokens
            .get(hash)
            .filter(|token| token.revoked_at.is_none())
            .cloned())
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(users.get(&id).cloned())
    }
}

/// One session of the embedder's own sign-in, over the same users.
struct OneSession {
    hash: TokenHash,
    session: Session,
    identities: Arc<MemoryIdentities>,
}

#[async_trait]
impl IdentitySource for OneSession {
    async fn token_by_hash(&self, _: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        Ok(None)
    }

    async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.identities.user_by_id(id).await
    }

    async fn session_by_hash(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        Ok(hash.matches(&self.hash).then(|| self.session.clone()))
    }
}

/// The chain in a vector; its mutex is the chain lock, held from reading the head to storing.
#[derive(Default)]
struct MemoryChain {
    records: Mutex<Vec<AuditRecord>>,
}

#[async_trait]
impl AuditSink for MemoryChain {
    async fn append_audit(
        &self,
        key: &ChainKey,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let head = match records.last() {
            Some(newest) => ChainHead {
                seq: newest.seq,
                mac: newest.mac,
            },
            None => ChainHead::genesis(),
        };
        let sealed = seal(head, key, Utc::now(), events);
        records.extend(sealed.iter().cloned());
        Ok(sealed)
    }

    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records.last().cloned())
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

fn user(id: i64, email: &str) -> User {
    User {
        id,
        email: email.into(),
        name: email.split('@').next().unwrap_or_default().into(),
        roles: vec![Role::Deployer],
        locked_at: None,
        locked_reason: None,
        suspended: false,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn token(id: i64, name: &str, owner: &User, permissions: &[&str]) -> ApiToken {
    ApiToken {
        id,
        public_id: uuid::Uuid::new_v4(),
        name: name.into(),
        owner_id: Some(owner.id),
        owner_email: Some(owner.email.clone()),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        role: None,
        created_by: None,
        created_at: Utc::now(),
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
    }
}

/// An owner and one token of theirs; returns the token's plaintext.
fn identities_with_one_token() -> (Arc<MemoryIdentities>, ApiTokenSecret) {
    let identities = Arc::new(MemoryIdentities::default());
    let owner = user(1, "ci-owner@example.com");
    let secret = ApiTokenSecret::generate();
    let ci = token(7, "ci", &owner, &["convox:app:list", "convox:build:*"]);
    identities.users.lock().unwrap().insert(owner.id, owner);
    identities.tokens.lock().unwrap().insert(secret.hash(), ci);
    (identities, secret)
}

fn refusal(outcome: Result<Arc<Principal>, ResolveError>) -> String {
    match outcome {
        Ok(principal) => panic!("resolved to {principal:?}"),
        Err(ResolveError::Refused(reason)) => reason.to_owned(),
        Err(ResolveError::Store(error)) => panic!("store error: {error}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Behaviours

#[tokio::test]
async fn tokens_resolve_through_the_resolver() {
    let (identities, secret) = identities_with_one_token();
    let resolver = IdentityResolver::start(identities.clone(), ResolverConfig::default())
        .await
        .unwrap();

    let principal = resolver.resolve_api_token(secret.expose()).await.unwrap();
    let Principal::ApiToken(token) = principal.as_ref() else {
        panic!("not a token principal: {principal:?}");
    };
    assert_eq!(token.id, 7);
    assert_eq!(token.name, "ci");
    assert_eq!(token.owner_email.as_deref(), Some("ci-owner@example.com"));
    assert_eq!(token.owner_name.as_deref(), Some("ci-owner"));
    assert_eq!(
        token.permissions,
        vec![
            Permission::parse("convox:app:list").unwrap(),
            Permission::parse("convox:build:*").unwrap()
        ]
    );
    assert!(resolver.cached_api_token(secret.expose()).is_some());
    // The quiet default feed stays open, so the resolver keeps caching.
    assert!(resolver.feed_connected());

    let unknown = ApiTokenSecret::generate();
    let outcome = resolver.resolve_api_token(unknown.expose()).await;
    assert_eq!(refusal(outcome), "invalid API token");
}

#[tokio::test]
async fn owners_who_may_not_act_are_refused() {
    let (identities, secret) = identities_with_one_token();
    identities
        .users
        .lock()
        .unwrap()
        .entry(1)
        .and_modify(|owner| owner.suspended = true);
    let resolver = IdentityResolver::start(identities, ResolverConfig::default())
        .await
        .unwrap();
    let outcome = resolver.resolve_api_token(secret.expose()).await;
    assert_eq!(refusal(outcome), "API token owner is suspended");
}

#[tokio::test]
async fn a_source_without_sessions_refuses_session_tokens() {
    let (identities, _) = identities_with_one_token();
    let resolver = IdentityResolver::start(identities, ResolverConfig::default())
        .await
        .unwrap();
    let session = SessionSecret::generate();
    let outcome = resolver.resolve_session(session.expose()).await;
    assert_eq!(refusal(outcome), "invalid session token");
    assert!(resolver.cached_session(session.expose()).is_none());
}

#[tokio::test]
async fn sessions_of_users_who_may_not_act_are_refused() {
    let (identities, _) = identities_with_one_token();
    let secret = SessionSecret::generate();
    let session = Session {
        id: 3,
        public_id: uuid::Uuid::new_v4(),
        user_id: 1,
        kind: SessionKind::Web,
        created_at: Utc::now(),
        last_seen_at: Utc::now(),
        revoked_at: None,
        revoked_reason: None,
        ip: None,
        user_agent: None,
        device_name: None,
    };
    let source = Arc::new(OneSession {
        hash: secret.hash(),
        session,
        identities: Arc::clone(&identities),
    });
    let config = ResolverConfig {
        negative_ttl: Duration::ZERO,
        ttl: Duration::ZERO,
        ..ResolverConfig::default()
    };
    let resolver = IdentityResolver::start(source, config).await.unwrap();
    let principal = resolver.resolve_session(secret.expose()).await.unwrap();
    assert_eq!(principal.email(), Some("ci-owner@example.com"));

    let suspend = |suspended: bool| {
        identities
            .users
            .lock()
            .unwrap()
            .entry(1)
            .and_modify(|owner| owner.suspended = suspended);
    };
    suspend(true);
    let outcome = resolver.resolve_session(secret.expose()).await;
    assert_eq!(refusal(outcome), "user suspended");
    suspend(false);
    identities.users.lock().unwrap().remove(&1);
    let outcome = resolver.resolve_session(secret.expose()).await;
    assert_eq!(refusal(outcome), "session user no longer exists");
}

#[tokio::test(start_paused = true)]
async fn without_a_change_feed_a_revocation_waits_for_the_ttl() {
    let (identities, secret) = identities_with_one_token();
    let config = ResolverConfig {
        ttl: Duration::from_secs(10),
        ..ResolverConfig::default()
    };
    let resolver = IdentityResolver::start(identities.clone(), config)
        .await
        .unwrap();
    assert!(resolver.resolve_api_token(secret.expose()).await.is_ok());

    for token in identities.tokens.lock().unwrap().values_mut() {
        token.revoked_at = Some(Utc::now());
    }
    // Nothing tells the resolver: the cached identity is used until it expires…
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(resolver.resolve_api_token(secret.expose()).await.is_ok());
    // …and not a moment longer.
    tokio::time::advance(Duration::from_secs(2)).await;
    let outcome = resolver.resolve_api_token(secret.expose()).await;
    assert_eq!(refusal(outcome), "invalid API token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_through_the_sink_form_one_verifiable_chain() {
    const APPENDERS: usize = 8;
    const BATCHES: usize = 25;
    const BATCH: usize = 4;
    let key = ChainKey::new(b"an embedder's audit key, 32+ bytes long");
    let chain = Arc::new(MemoryChain::default());
    let sink: Arc<dyn AuditSink> = chain.clone();

    let appenders = (0..APPENDERS).map(|appender| {
        let sink = Arc::clone(&sink);
        let key = key.clone();
        tokio::spawn(async move {
            for batch in 0..BATCHES {
                let events = (0..BATCH)
                    .map(|n| AuditEvent::system("embed.test", &format!("{appender}/{batch}/{n}")))
                    .collect();
                let sealed = sink.append_audit(&key, events).await.unwrap();
                assert_eq!(sealed.len(), BATCH);
                // A batch is contiguous: nobody else's records came between.
                assert!(sealed.windows(2).all(|pair| pair[1].seq == pair[0].seq + 1));
            }
        })
    });
    for appender in appenders {
        appender.await.unwrap();
    }

    let records = chain.records.lock().unwrap().clone();
    assert_eq!(records.len(), APPENDERS * BATCHES * BATCH);
    assert_eq!(sink.audit_head().await.unwrap().as_ref(), records.last());
    let mut verifier = Verifier::new(Keyring::new(key.clone(), vec![]), ChainHead::genesis());
    for record in &records {
        verifier.check(record).unwrap();
    }
    assert_eq!(verifier.checked(), records.len() as u64);

    // The verifier is not a formality: an edited record is caught where it was edited.
    let mut edited = records;
    edited[41].event.reason = "nothing to see here".into();
    let mut verifier = Verifier::new(Keyring::new(key, vec![]), ChainHead::genesis());
    let tamper = edited
        .iter()
        .find_map(|record| verifier.check(record).err());
    assert_eq!(tamper.map(|t| t.seq), Some(42));
}
