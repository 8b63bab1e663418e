//! AuthenticateLayer and AuthorizeLayer over a real embedded store, around an inner service
//! that records what reached it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use chrono::Utc;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use rack_gateway_core::identity::{
    ApiTokenSecret, IdentityResolver, NewApiToken, NewUser, Principal, ResolverConfig,
};
use rack_gateway_core::rbac::Role;
use rack_gateway_core::routes::RouteTable;
use rack_gateway_core::store::{EmbeddedStore, Store};
use rack_gateway_layers::authn::AuthenticateLayer;
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::body::{self, Body};
use rack_gateway_layers::decision::Decision;
use rack_gateway_layers::forward::RackPath;
use rack_gateway_layers::BoxError;
use tower::{Service, ServiceBuilder, ServiceExt as _};

struct Fixture {
    store: Arc<dyn Store>,
    resolver: Arc<IdentityResolver>,
    reached: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).await.expect("store"));
        store.migrate().await.expect("migrate");
        let resolver = IdentityResolver::start(Arc::clone(&store), ResolverConfig::default())
            .await
            .expect("resolver");
        Fixture {
            store,
            resolver,
            reached: Arc::new(AtomicUsize::new(0)),
            _dir: dir,
        }
    }

    async fn token(&self, name: &str, role: Role, owner: Option<&str>, expired: bool) -> String {
        let owner_id = match owner {
            Some(email) => Some(
                self.store
                    .ensure_user(&NewUser {
                        email: email.into(),
                        name: "Owner".into(),
                        roles: vec![Role::Admin],
                    })
                    .await
                    .expect("owner")
                    .id,
            ),
            None => None,
        };
        let secret = ApiTokenSecret::generate();
        self.store
            .insert_token(&NewApiToken {
                name: name.into(),
                hash: secret.hash(),
                owner_id,
                permissions: role.permissions().iter().map(|p| (*p).to_owned()).collect(),
                role: Some(role.name().into()),
                created_by: None,
                expires_at: expired.then(|| Utc::now() - chrono::Duration::seconds(5)),
            })
            .await
            .expect("token");
        secret.expose().to_owned()
    }

    fn stack(
        &self,
    ) -> impl Service<
        Request<Body>,
        Response = Response<impl http_body::Body<Data = bytes::Bytes, Error = BoxError>>,
        Error = BoxError,
    > + Clone {
        let reached = Arc::clone(&self.reached);
        let authorize = AuthorizeLayer::new(RouteTable::convox()).prefix("/api/v1/rack-proxy");
        ServiceBuilder::new()
            .layer(AuthenticateLayer::new(Arc::clone(&self.resolver)))
            .layer(authorize)
            .service_fn(move |request: Request<Body>| {
                let reached = Arc::clone(&reached);
                async move {
                    reached.fetch_add(1, Ordering::SeqCst);
                    let path = request
                        .extensions()
                        .get::<RackPath>()
                        .expect("rack path")
                        .0
                        .clone();
                    let who = request
                        .extensions()
                        .get::<Arc<Principal>>()
                        .expect("principal")
                        .label();
                    let decision = request.extensions().get::<Decision>().expect("decision");
                    let text = format!("{who} {path} {}", decision.reason);
                    Ok::<_, BoxError>(Response::new(body::full(text)))
                }
            })
    }
}

fn request(method: &str, path: &str, token: Option<&str>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("convox:{token}"));
        builder = builder.header("authorization", format!("Basic {encoded}"));
    }
    builder.body(body::empty()).expect("request")
}

async fn call<B>(
    service: impl Service<Request<Body>, Response = Response<B>, Error = BoxError>,
    request: Request<Body>,
) -> (StatusCode, String)
where
    B: http_body::Body<Data = bytes::Bytes, Error = BoxError>,
{
    let response = service
        .oneshot(request)
        .await
        .expect("no infrastructure error");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn allowed_requests_reach_the_inner_service_with_path_and_principal() {
    let fixture = Fixture::new().await;
    let token = fixture.token("viewer", Role::Viewer, None, false).await;
    let (status, text) = call(
        fixture.stack(),
        request(
            "GET",
            "/api/v1/rack-proxy/apps/web/processes?service=web",
            Some(&token),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        text.starts_with("token:viewer /apps/web/processes?service=web "),
        "{text}"
    );
    assert!(text.contains("convox:process:list granted"), "{text}");
    // Served again from the cache.
    let (status, _) = call(
        fixture.stack(),
        request("GET", "/api/v1/rack-proxy/apps", Some(&token)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fixture.reached.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn refusals_never_reach_the_inner_service() {
    let fixture = Fixture::new().await;
    let viewer = fixture.token("viewer", Role::Viewer, None, false).await;
    let expired = fixture.token("old", Role::Admin, None, true).await;
    let unknown = ApiTokenSecret::generate();
    let cases = [
        (
            request("POST", "/api/v1/rack-proxy/apps/web/restart", Some(&viewer)),
            StatusCode::FORBIDDEN,
            "convox:app:restart",
        ),
        (
            request("GET", "/api/v1/rack-proxy/racks", Some(&viewer)),
            StatusCode::NOT_FOUND,
            "/racks",
        ),
        (
            request("GET", "/api/v1/rack-proxy/apps/../system", Some(&viewer)),
            StatusCode::BAD_REQUEST,
            "dot segment",
        ),
        (
            request("GET", "/api/v1/rack-proxy/apps", None),
            StatusCode::UNAUTHORIZED,
            "missing authorization",
        ),
        (
            request("GET", "/api/v1/rack-proxy/apps", Some(&expired)),
            StatusCode::UNAUTHORIZED,
            "expired",
        ),
        (
            request("GET", "/api/v1/rack-proxy/apps", Some(unknown.expose())),
            StatusCode::UNAUTHORIZED,
            "invalid API token",
        ),
        (
            request("GET", "/api/v1/rack-proxyx/apps", Some(&viewer)),
            StatusCode::NOT_FOUND,
            "not a path under /api/v1/rack-proxy",
        ),
    ];
    for (request, status, needle) in cases {
        let label = format!("{} {}", request.method(), request.uri());
        let (got, text) = call(fixture.stack(), request).await;
        assert_eq!(got, status, "{label}: {text}");
        assert!(text.contains(needle), "{label}: {text}");
    }
    assert_eq!(fixture.reached.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn tokens_die_with_their_owner_and_on_revocation_despite_the_cache() {
    let fixture = Fixture::new().await;
    let token = fixture
        .token("owned", Role::Viewer, Some("owner@example.com"), false)
        .await;
    let ok = || request("GET", "/api/v1/rack-proxy/apps", Some(&token));
    assert_eq!(call(fixture.stack(), ok()).await.0, StatusCode::OK);

    async fn eventually(
        fixture: &Fixture,
        request: impl Fn() -> Request<Body>,
        status: StatusCode,
        needle: &str,
    ) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        loop {
            let (got, text) = call(fixture.stack(), request()).await;
            if got == status && text.contains(needle) {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "still {got} {text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fixture
        .store
        .set_user_lock("owner@example.com", Some("test"))
        .await
        .expect("lock");
    eventually(&fixture, ok, StatusCode::UNAUTHORIZED, "owner is locked").await;
    fixture
        .store
        .set_user_lock("owner@example.com", None)
        .await
        .expect("unlock");
    eventually(&fixture, ok, StatusCode::OK, "").await;
    fixture.store.revoke_token("owned").await.expect("revoke");
    eventually(&fixture, ok, StatusCode::UNAUTHORIZED, "invalid API token").await;
}
