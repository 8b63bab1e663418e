//! RackForward over plain HTTP against a local fake rack: headers, paths, streaming, errors.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request as AxumRequest, State};
use axum::routing::any;
use axum::Router;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt as _;
use http::{HeaderMap, Request, StatusCode};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt as _, StreamBody};
use rack_gateway_core::identity::{Principal, UserPrincipal};
use rack_gateway_layers::body::Body;
use rack_gateway_layers::error::{is_caused_by, RackTimeout, RackUnavailable};
use rack_gateway_layers::forward::{
    ForwardError, OriginPolicy, RackForward, RackPath, RackTarget, RackTls,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower::ServiceExt as _;

const TOKEN: &str = "rack-token";
const MIB: usize = 1024 * 1024;

fn forward_to(base: &str, header_timeout: Duration) -> RackForward {
    RackForward::new(
        RackTarget {
            base: base.parse().expect("base"),
            username: "convox".into(),
            token: TOKEN.into(),
            tls: RackTls::Verify,
            connect_timeout: Duration::from_secs(2),
            header_timeout,
        },
        OriginPolicy::default(),
    )
    .expect("valid target")
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

fn alice() -> Arc<Principal> {
    Arc::new(Principal::User(UserPrincipal {
        id: 1,
        email: "alice@example.com".into(),
        name: "Alice".into(),
        roles: Vec::new(),
        session: None,
    }))
}

fn get(path: &str) -> Request<Body> {
    let mut request = Request::new(rack_gateway_layers::body::empty());
    request.extensions_mut().insert(RackPath(path.to_owned()));
    request
}

/// The fake rack's echo: the request line and headers as text, one per line.
async fn echo(request: AxumRequest) -> (StatusCode, HeaderMap, String) {
    let mut text = format!(
        "{} {}\n",
        request.method(),
        request
            .uri()
            .path_and_query()
            .map(|pq| pq.as_str())
            .unwrap_or("")
    );
    for (name, value) in request.headers() {
        text.push_str(&format!(
            "{}: {}\n",
            name,
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    let mut headers = HeaderMap::new();
    headers.insert("x-rack", "yes".parse().expect("value"));
    (StatusCode::CREATED, headers, text)
}

fn header_lines<'a>(echoed: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}: ");
    echoed
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect()
}

async fn text<B>(response: http::Response<B>) -> String
where
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn headers_in_and_out() {
    let addr = serve(Router::new().fallback(any(echo))).await;
    let forward = forward_to(&format!("http://{addr}"), Duration::from_secs(5));

    let mut request = get("/apps/web/processes?service=web&since=1h");
    let headers = request.headers_mut();
    for (name, value) in [
        ("authorization", "Bearer gateway-session-token"),
        ("cookie", "rgw_session=abc"),
        ("proxy-authorization", "Basic eDp5"),
        ("x-request-id", "req-123"),
        ("x-user-email", "spoof@evil.example"),
        ("x-api-token-name", "spoof"),
        ("environment", "SECRET=1"),
        ("version", "3.19.7"),
        ("content-type", "application/json"),
        ("command", "bin/console"),
        ("connection", "x-hop"),
        ("x-hop", "1"),
    ] {
        headers.append(name, value.parse().expect("value"));
    }
    request.extensions_mut().insert(alice());

    let response = forward.oneshot(request).await.expect("forwarded");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(
        response.headers().get("x-rack").map(|v| v.as_bytes()),
        Some(&b"yes"[..])
    );
    let echoed = text(response).await;

    let basic = base64::engine::general_purpose::STANDARD.encode(format!("convox:{TOKEN}"));
    assert!(
        echoed.starts_with("GET /apps/web/processes?service=web&since=1h\n"),
        "{echoed}"
    );
    assert_eq!(
        header_lines(&echoed, "authorization"),
        vec![format!("Basic {basic}").as_str()]
    );
    assert_eq!(
        header_lines(&echoed, "host"),
        vec![addr.to_string().as_str()]
    );
    assert_eq!(header_lines(&echoed, "x-request-id"), vec!["req-123"]);
    assert_eq!(
        header_lines(&echoed, "x-user-email"),
        vec!["alice@example.com"]
    );
    assert_eq!(header_lines(&echoed, "version"), vec!["3.19.7"]);
    assert_eq!(
        header_lines(&echoed, "content-type"),
        vec!["application/json"]
    );
    assert_eq!(header_lines(&echoed, "command"), vec!["bin/console"]);
    for gone in [
        "cookie",
        "proxy-authorization",
        "x-api-token-name",
        "environment",
        "x-hop",
    ] {
        assert!(
            header_lines(&echoed, gone).is_empty(),
            "{gone} reached the rack: {echoed}"
        );
    }
}

#[tokio::test]
async fn request_id_is_generated_and_spoofed_email_dropped_without_principal() {
    let addr = serve(Router::new().fallback(any(echo))).await;
    let forward = forward_to(&format!("http://{addr}/"), Duration::from_secs(5));

    let mut request = get("/system");
    request
        .headers_mut()
        .insert("x-user-email", "spoof@evil.example".parse().expect("v"));
    let echoed = text(forward.oneshot(request).await.expect("forwarded")).await;

    assert!(header_lines(&echoed, "x-user-email").is_empty(), "{echoed}");
    let ids = header_lines(&echoed, "x-request-id");
    assert_eq!(ids.len(), 1);
    let id = uuid::Uuid::parse_str(ids[0]).expect("a UUID");
    assert_eq!(id.get_version_num(), 4);
}

#[tokio::test]
async fn base_path_prefix_and_query_are_kept() {
    let addr = serve(Router::new().fallback(any(echo))).await;
    let forward = forward_to(&format!("http://{addr}/convox/"), Duration::from_secs(5));
    let echoed = text(
        forward
            .oneshot(get("/apps?limit=2&x=%2F"))
            .await
            .expect("ok"),
    )
    .await;
    assert!(
        echoed.starts_with("GET /convox/apps?limit=2&x=%2F\n"),
        "{echoed}"
    );
}

#[tokio::test]
async fn missing_or_bad_rack_path_is_never_forwarded() {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let addr = serve(Router::new().fallback(any(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { "reached" }
    })))
    .await;
    let forward = forward_to(&format!("http://{addr}"), Duration::from_secs(5));

    let error = forward
        .clone()
        .oneshot(Request::new(rack_gateway_layers::body::empty()))
        .await
        .expect_err("no RackPath");
    assert!(is_caused_by::<ForwardError>(&*error));
    for bad in ["apps", "", "//evil.example/x#frag"] {
        assert!(
            forward.clone().oneshot(get(bad)).await.is_err(),
            "{bad:?} accepted"
        );
    }
    // A leading "//" stays a path on the configured rack: it can never change the authority.
    let response = forward
        .oneshot(get("//evil.example/x"))
        .await
        .expect("forwarded");
    assert_eq!(text(response).await, "reached");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rack_errors_pass_through() {
    let addr = serve(Router::new()).await; // every path is a 404
    let forward = forward_to(&format!("http://{addr}"), Duration::from_secs(5));
    let response = forward
        .oneshot(get("/apps/nope"))
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Counts the bytes of a streamed request at the fake rack; signals the first bytes.
#[derive(Clone)]
struct UploadState {
    first_bytes: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

async fn count_upload(State(state): State<UploadState>, request: AxumRequest) -> String {
    let content_length = request
        .headers()
        .get("content-length")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_else(|| "none".into());
    let chunked = request.headers().get("transfer-encoding").is_some();
    let mut stream = request.into_body().into_data_stream();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return "body error".into();
        };
        total += chunk.len();
        if total > 0 {
            if let Some(signal) = state.first_bytes.lock().expect("lock").take() {
                let _ = signal.send(());
            }
        }
    }
    format!("received={total} content-length={content_length} chunked={chunked}")
}

/// A 64 MiB body made of one shared 64 KiB chunk. After the first chunk it waits until the
/// rack has seen bytes: a forwarder that buffered the whole body would deadlock here.
fn generated_upload(
    gate: oneshot::Receiver<()>,
) -> impl http_body::Body<Data = Bytes, Error = Infallible> {
    let chunk = Bytes::from(vec![0x5a; 64 * 1024]);
    let chunks = (64 * MIB) / chunk.len();
    let stream = futures_util::stream::unfold((0usize, Some(gate)), move |(sent, gate)| {
        let chunk = chunk.clone();
        async move {
            if sent == chunks {
                return None;
            }
            let gate = match gate {
                Some(gate) if sent == 1 => {
                    let _ = gate.await;
                    None
                }
                other => other,
            };
            Some((Ok::<_, Infallible>(Frame::data(chunk)), (sent + 1, gate)))
        }
    });
    StreamBody::new(stream)
}

pin_project_lite::pin_project! {
    /// Gives a streamed body an exact length, as a request with `Content-Length` has.
    struct Exact<B> {
        #[pin]
        inner: B,
        len: u64,
    }
}

impl<B: http_body::Body> http_body::Body for Exact<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().inner.poll_frame(cx)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

async fn upload(exact_length: bool) -> String {
    let (first_bytes, gate) = oneshot::channel();
    let state = UploadState {
        first_bytes: Arc::new(Mutex::new(Some(first_bytes))),
    };
    let addr = serve(Router::new().fallback(any(count_upload)).with_state(state)).await;
    let forward = forward_to(&format!("http://{addr}"), Duration::from_secs(5));

    let body = generated_upload(gate);
    let body = if exact_length {
        rack_gateway_layers::body::boxed(Exact {
            inner: body,
            len: (64 * MIB) as u64,
        })
    } else {
        rack_gateway_layers::body::boxed(body)
    };
    let mut request = Request::post("/apps/web/builds")
        .body(body)
        .expect("request");
    request
        .extensions_mut()
        .insert(RackPath("/apps/web/objects/tmp/app.tgz".into()));
    if exact_length {
        request
            .headers_mut()
            .insert("content-length", (64 * MIB).into());
    }
    let response = tokio::time::timeout(Duration::from_secs(60), forward.oneshot(request))
        .await
        .expect("upload did not stream (deadlock) or took too long")
        .expect("forwarded");
    assert_eq!(response.status(), StatusCode::OK);
    text(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_64_mib_streams_chunked() {
    let answer = upload(false).await;
    assert_eq!(
        answer,
        format!("received={} content-length=none chunked=true", 64 * MIB)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_of_64_mib_streams_with_content_length() {
    let answer = upload(true).await;
    assert_eq!(
        answer,
        format!("received={0} content-length={0} chunked=false", 64 * MIB)
    );
}

#[tokio::test]
async fn slow_upload_is_not_cut_by_the_header_timeout() {
    let addr = serve(
        Router::new()
            .fallback(any(count_upload))
            .with_state(UploadState {
                first_bytes: Arc::new(Mutex::new(None)),
            }),
    )
    .await;
    let forward = forward_to(&format!("http://{addr}"), Duration::from_millis(600));
    // Five chunks 200 ms apart: one second in all (longer than the header timeout), always
    // progressing.
    let stream = futures_util::stream::unfold(0u32, |n| async move {
        if n == 5 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"0123456789"))),
            n + 1,
        ))
    });
    let mut request = Request::new(rack_gateway_layers::body::boxed(StreamBody::new(stream)));
    request
        .extensions_mut()
        .insert(RackPath("/apps/web/builds".into()));
    let response = forward.oneshot(request).await.expect("forwarded");
    let answer = text(response).await;
    assert!(answer.starts_with("received=50 "), "{answer}");
}

#[tokio::test]
async fn response_streams_without_a_total_timeout() {
    let (release, released) = oneshot::channel::<()>();
    let released = Arc::new(Mutex::new(Some(released)));
    let addr = serve(Router::new().fallback(any(move || {
        let released = released.lock().expect("lock").take();
        async move {
            let first = futures_util::stream::once(async {
                Ok::<_, Infallible>(Bytes::from_static(b"first\n"))
            });
            let rest = futures_util::stream::once(async move {
                if let Some(released) = released {
                    let _ = released.await;
                }
                // Longer than the header timeout: only headers are timed.
                tokio::time::sleep(Duration::from_millis(900)).await;
                Ok::<_, Infallible>(Bytes::from_static(b"second\n"))
            });
            axum::body::Body::from_stream(first.chain(rest))
        }
    })))
    .await;
    let forward = forward_to(&format!("http://{addr}"), Duration::from_millis(400));

    let response = forward
        .oneshot(get("/apps/web/logs"))
        .await
        .expect("headers arrive");
    let mut body = response.into_body();
    let first = body
        .frame()
        .await
        .expect("a frame")
        .expect("ok")
        .into_data()
        .expect("data");
    assert_eq!(&first[..], b"first\n");
    // The rack sends the rest only now: the first part must have arrived on its own.
    let _ = release.send(());
    let rest = body.collect().await.expect("rest").to_bytes();
    assert_eq!(&rest[..], b"second\n");
}

#[tokio::test]
async fn unreachable_rack_is_unavailable_with_a_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let forward = forward_to(&format!("http://{addr}"), Duration::from_secs(5));

    let error = forward
        .oneshot(get("/apps"))
        .await
        .expect_err("nothing listens");
    assert!(is_caused_by::<RackUnavailable>(&*error), "{error}");
    let message = error.to_string();
    assert!(message.contains(&addr.to_string()), "{message}");
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn silent_rack_hits_the_header_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket); // accept, read nothing, answer nothing
        }
    });
    let forward = forward_to(&format!("http://{addr}"), Duration::from_millis(300));

    let started = std::time::Instant::now();
    let error = forward.oneshot(get("/apps")).await.expect_err("no answer");
    assert!(is_caused_by::<RackTimeout>(&*error), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
}
