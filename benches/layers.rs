//! Micro benchmark of the gateway's request path, without the network or the rack.
//!
//! - `stack`: one request through `RescueLayer` → `AuthenticateLayer` → `AuthorizeLayer` → a
//!   no-op service that answers 200 at once. The identity cache is warm (an `EmbeddedStore` in
//!   a temporary directory holds one viewer token, resolved once before timing, with a TTL
//!   longer than the run), so this is the per-request cost of the layers on the hot path:
//!   parsing the credential, hashing it for the cache lookup, classifying the path and checking
//!   the permission.
//! - `noop_service`: the same request to the no-op service alone (the baseline to subtract).
//! - `explain_get_apps`: `rbac::explain` alone for `GET /apps` with the viewer's permissions.
//! - `parse_authorization_basic`: `authn::parse_authorization` alone on a Basic header.
//!
//! Everything is built once outside the timed loop; each iteration builds the request and
//! calls. Requests are driven by a current-thread tokio runtime (`block_on`), in the baseline
//! too. Each benchmark takes 2000 samples of 100 iterations (divan's own options, such as
//! `--sample-count`, still apply). Run with `cargo bench -p rack-gateway-benches --bench layers`.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use divan::{black_box, Bencher};
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::Empty;
use rack_gateway_core::identity::{ApiTokenSecret, IdentityResolver, NewApiToken, ResolverConfig};
use rack_gateway_core::rbac::{explain, Access, Permission, Policy, Role};
use rack_gateway_core::routes::RouteTable;
use rack_gateway_core::store::{EmbeddedStore, Store};
use rack_gateway_layers::authn::{parse_authorization, AuthenticateLayer};
use rack_gateway_layers::authz::AuthorizeLayer;
use rack_gateway_layers::rescue::RescueLayer;
use rack_gateway_layers::{body, Body, BoxError};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tower::{Service, ServiceBuilder, ServiceExt as _};

/// The gateway's proxy prefix, as in `rack-gateway serve`.
const PREFIX: &str = "/api/v1/rack-proxy";
/// The proxied path every request asks for (`convox:app:list`, which a viewer holds).
const PATH: &str = "/api/v1/rack-proxy/apps";

type Req = Request<Empty<Bytes>>;

fn main() {
    divan::main();
}

/// The runtime, a warm resolver and the Authorization header of its one token.
struct Fixture {
    runtime: Runtime,
    resolver: Arc<IdentityResolver>,
    authorization: HeaderValue,
    /// Dropped last: the store's directory.
    _dir: TempDir,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("building a current-thread tokio runtime")
}

fn fixture() -> Fixture {
    let runtime = runtime();
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let secret = ApiTokenSecret::generate();
    let token = secret.expose().to_owned();
    let resolver = runtime.block_on(async {
        let store = EmbeddedStore::open(dir.path())
            .await
            .expect("opening the embedded store");
        store.migrate().await.expect("migrating the embedded store");
        store
            .insert_token(&NewApiToken {
                name: "bench".to_owned(),
                hash: secret.hash(),
                owner_id: None,
                permissions: Role::Viewer
                    .permissions()
                    .iter()
                    .map(|p| (*p).to_owned())
                    .collect(),
                role: Some(Role::Viewer.name().to_owned()),
                created_by: Some("bench".to_owned()),
                expires_at: None,
            })
            .await
            .expect("storing the bench token");
        let store: Arc<dyn Store> = Arc::new(store);
        let config = ResolverConfig {
            ttl: Duration::from_secs(24 * 3600),
            ..ResolverConfig::default()
        };
        let resolver = IdentityResolver::start(store, config)
            .await
            .expect("starting the identity resolver");
        resolver
            .resolve_api_token(&token)
            .await
            .expect("resolving the bench token");
        // Let the background "last used" write and a feed poll finish, then warm again.
        tokio::time::sleep(Duration::from_millis(500)).await;
        resolver
            .resolve_api_token(&token)
            .await
            .expect("resolving the bench token again");
        resolver
    });
    assert!(
        resolver.cached_api_token(&token).is_some(),
        "the identity cache should be warm before timing"
    );
    let authorization = basic_header(&secret);
    Fixture {
        runtime,
        resolver,
        authorization,
        _dir: dir,
    }
}

/// `Authorization: Basic base64(convox:<token>)`, as the Convox CLI sends it.
fn basic_header(token: &ApiTokenSecret) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "Basic {}",
        STANDARD.encode(format!("convox:{}", token.expose()))
    ))
    .expect("a Basic header value")
}

/// The innermost service: 200 with an empty body, at once.
fn noop(
) -> impl Service<Req, Response = Response<Body>, Error = BoxError, Future: Send> + Clone + Send + 'static
{
    tower::service_fn(|_request: Req| async { Ok::<_, BoxError>(Response::new(body::empty())) })
}

/// What each iteration builds: the request a Convox CLI sends for `convox apps`.
fn request(authorization: &HeaderValue) -> Req {
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = http::Uri::from_static(PATH);
    request
        .headers_mut()
        .insert(header::AUTHORIZATION, authorization.clone());
    request
}

/// Sends one request through `service` and returns the response.
async fn call<S, B>(service: &mut S, request: Req) -> Response<B>
where
    S: Service<Req, Response = Response<B>>,
    S::Error: std::fmt::Debug,
{
    let ready = service.ready().await.expect("the service should be ready");
    ready
        .call(request)
        .await
        .expect("the service should answer")
}

#[divan::bench(sample_count = 2000, sample_size = 100)]
fn stack(bencher: Bencher<'_, '_>) {
    let fixture = fixture();
    let authorize = AuthorizeLayer::new(RouteTable::convox()).prefix(PREFIX);
    let mut service = ServiceBuilder::new()
        .layer(RescueLayer::new())
        .layer(AuthenticateLayer::new(Arc::clone(&fixture.resolver)))
        .layer(authorize)
        .service(noop());
    let first = fixture
        .runtime
        .block_on(call(&mut service, request(&fixture.authorization)));
    assert_eq!(
        first.status(),
        StatusCode::OK,
        "the stack should allow the bench request"
    );
    bencher.bench_local(|| {
        fixture
            .runtime
            .block_on(call(&mut service, request(&fixture.authorization)))
    });
}

#[divan::bench(sample_count = 2000, sample_size = 100)]
fn noop_service(bencher: Bencher<'_, '_>) {
    let runtime = runtime();
    let authorization = basic_header(&ApiTokenSecret::generate());
    let mut service = noop();
    bencher.bench_local(|| runtime.block_on(call(&mut service, request(&authorization))));
}

#[divan::bench(sample_count = 2000, sample_size = 100)]
fn explain_get_apps(bencher: Bencher<'_, '_>) {
    let permissions: Vec<Permission> = Role::Viewer
        .permissions()
        .iter()
        .map(|p| Permission::parse(p).expect("viewer permissions parse"))
        .collect();
    let policy = Policy::default();
    bencher.bench_local(|| {
        explain(
            &Access::Permissions(black_box(&permissions)),
            black_box(&policy),
            black_box("GET"),
            black_box(false),
            black_box("/apps"),
        )
    });
}

#[divan::bench(sample_count = 2000, sample_size = 100)]
fn parse_authorization_basic(bencher: Bencher<'_, '_>) {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::AUTHORIZATION,
        basic_header(&ApiTokenSecret::generate()),
    );
    bencher.bench_local(|| parse_authorization(black_box(&headers)));
}
