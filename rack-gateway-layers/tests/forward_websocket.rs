//! Websocket relay: a real tungstenite client, a hyper server serving RackForward, and an axum
//! fake rack.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{self, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::any;
use axum::Router;
use futures_util::{SinkExt as _, StreamExt as _};
use http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rack_gateway_core::identity::{Principal, UserPrincipal};
use rack_gateway_layers::forward::{
    OriginPolicy, RackForward, RackPath, RackTarget, RackTls, RelayStats, RelayStatsSender,
};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tower::ServiceExt as _;

#[derive(Clone)]
struct Rack {
    handshakes: mpsc::UnboundedSender<HeaderMap>,
    closes: mpsc::UnboundedSender<Option<(u16, String)>>,
}

/// Echoes text and binary; greets on connect; on "close please" closes with 4001 "bye".
async fn rack_socket(
    State(rack): State<Rack>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> axum::response::Response {
    let _ = rack.handshakes.send(headers);
    let closes = rack.closes;
    upgrade.on_upgrade(move |mut socket: WebSocket| async move {
        if socket
            .send(ws::Message::Text("welcome".into()))
            .await
            .is_err()
        {
            return;
        }
        while let Some(Ok(message)) = socket.recv().await {
            let reply = match message {
                ws::Message::Text(text) if text.as_str() == "close please" => {
                    ws::Message::Close(Some(ws::CloseFrame {
                        code: 4001,
                        reason: "bye".into(),
                    }))
                }
                ws::Message::Text(text) => ws::Message::Text(text),
                ws::Message::Binary(bytes) => ws::Message::Binary(bytes),
                ws::Message::Close(frame) => {
                    let _ = closes.send(frame.map(|f| (f.code, f.reason.as_str().to_owned())));
                    break;
                }
                ws::Message::Ping(_) | ws::Message::Pong(_) => continue,
            };
            if socket.send(reply).await.is_err() {
                break;
            }
        }
    })
}

struct Setup {
    gateway: SocketAddr,
    rack: SocketAddr,
    requests: Arc<AtomicUsize>,
    handshakes: mpsc::UnboundedReceiver<HeaderMap>,
    closes: mpsc::UnboundedReceiver<Option<(u16, String)>>,
    relay_stats: mpsc::UnboundedReceiver<oneshot::Receiver<RelayStats>>,
}

async fn setup() -> Setup {
    let requests = Arc::new(AtomicUsize::new(0));
    let (handshakes_tx, handshakes) = mpsc::unbounded_channel();
    let (closes_tx, closes) = mpsc::unbounded_channel();
    let counter = requests.clone();
    let router = Router::new()
        .route("/apps/web/processes/p1/exec", any(rack_socket))
        .with_state(Rack {
            handshakes: handshakes_tx,
            closes: closes_tx,
        })
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::SeqCst);
                next.run(request)
            },
        ));
    let rack_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let rack = rack_listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(rack_listener, router).await;
    });

    let forward = RackForward::new(
        RackTarget {
            base: format!("http://{rack}").parse().expect("base"),
            username: "convox".into(),
            token: "rack-token".into(),
            tls: RackTls::Verify,
            connect_timeout: Duration::from_secs(2),
            header_timeout: Duration::from_secs(5),
        },
        OriginPolicy::default(),
    )
    .expect("valid target");
    let (stats_tx, relay_stats) = mpsc::unbounded_channel();
    let gateway = serve_gateway(forward, stats_tx).await;
    Setup {
        gateway,
        rack,
        requests,
        handshakes,
        closes,
        relay_stats,
    }
}

/// The test's stand-in for the binary: HTTP/1.1 with upgrades, the authorization layer's
/// extensions added by hand, errors mapped to 502.
async fn serve_gateway(
    forward: RackForward,
    stats_tx: mpsc::UnboundedSender<oneshot::Receiver<RelayStats>>,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let forward = forward.clone();
            let stats_tx = stats_tx.clone();
            let service = service_fn(move |mut request: Request<Incoming>| {
                let forward = forward.clone();
                let stats_tx = stats_tx.clone();
                async move {
                    let path = request
                        .uri()
                        .path_and_query()
                        .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
                    let extensions = request.extensions_mut();
                    extensions.insert(RackPath(path));
                    extensions.insert(Arc::new(Principal::User(UserPrincipal {
                        id: 7,
                        email: "ops@example.com".into(),
                        name: "Ops".into(),
                        roles: Vec::new(),
                        session: None,
                    })));
                    let (sender, receiver) = RelayStatsSender::channel();
                    extensions.insert(sender);
                    let _ = stats_tx.send(receiver);
                    let response = match forward.oneshot(request).await {
                        Ok(response) => response,
                        Err(error) => rack_gateway_layers::body::refusal(
                            StatusCode::BAD_GATEWAY,
                            &error.to_string(),
                        ),
                    };
                    Ok::<_, Infallible>(response)
                }
            });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

fn client_request(
    gateway: SocketAddr,
    path: &str,
    origin: &str,
) -> tungstenite::handshake::client::Request {
    let mut request = format!("ws://{gateway}{path}")
        .into_client_request()
        .expect("request");
    let headers = request.headers_mut();
    headers.insert("origin", origin.parse().expect("origin"));
    headers.insert(
        "authorization",
        "Bearer gateway-session".parse().expect("v"),
    );
    headers.insert("cookie", "rgw_session=abc".parse().expect("v"));
    headers.insert("x-user-email", "spoof@evil.example".parse().expect("v"));
    headers.insert("tty", "true".parse().expect("v"));
    request
}

async fn next_message<S>(socket: &mut S) -> Message
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("a message in time")
        .expect("stream open")
        .expect("no error")
}

#[tokio::test]
async fn relays_text_binary_and_close_both_ways() {
    let mut setup = setup().await;
    let origin = format!("http://{}", setup.gateway);
    let request = client_request(setup.gateway, "/apps/web/processes/p1/exec", &origin);
    let (mut socket, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade through the gateway");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);

    // What the rack saw in the handshake.
    let seen = setup
        .handshakes
        .recv()
        .await
        .expect("handshake reached the rack");
    let header = |name: &str| {
        seen.get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    assert_eq!(
        header("authorization").as_deref(),
        Some("Basic Y29udm94OnJhY2stdG9rZW4=")
    );
    assert_eq!(header("x-user-email").as_deref(), Some("ops@example.com"));
    assert_eq!(header("origin"), Some(format!("http://{}", setup.rack)));
    assert_eq!(header("cookie"), None);
    assert_eq!(header("tty").as_deref(), Some("true"));
    assert!(header("sec-websocket-key").is_some());

    // Rack -> client, then echoes client -> rack -> client.
    assert_eq!(next_message(&mut socket).await, Message::text("welcome"));
    socket
        .send(Message::text("héllo ✓"))
        .await
        .expect("send text");
    assert_eq!(next_message(&mut socket).await, Message::text("héllo ✓"));
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    socket
        .send(Message::binary(binary.clone()))
        .await
        .expect("send binary");
    assert_eq!(next_message(&mut socket).await, Message::binary(binary));

    // The rack closes with its own code and reason; they reach the client unchanged.
    socket
        .send(Message::text("close please"))
        .await
        .expect("send");
    match next_message(&mut socket).await {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 4001);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected the rack's close frame, got {other:?}"),
    }
    // The close handshake completes and the stream ends.
    let end = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("closes");
    assert!(
        matches!(end, None | Some(Err(tungstenite::Error::ConnectionClosed))),
        "{end:?}"
    );

    let stats = setup.relay_stats.recv().await.expect("a stats receiver");
    let stats = tokio::time::timeout(Duration::from_secs(5), stats)
        .await
        .expect("relay ends")
        .expect("stats sent");
    assert!(
        stats.client_to_rack > 0 && stats.rack_to_client > 0,
        "{stats:?}"
    );
    assert_eq!(setup.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn foreign_origin_is_refused_before_the_rack() {
    let setup = setup().await;
    let request = client_request(
        setup.gateway,
        "/apps/web/processes/p1/exec",
        "https://evil.example",
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    assert_eq!(
        setup.requests.load(Ordering::SeqCst),
        0,
        "the rack was contacted"
    );
}

#[tokio::test]
async fn a_declined_upgrade_is_relayed_as_is() {
    let setup = setup().await;
    let origin = format!("http://{}", setup.gateway);
    let request = client_request(setup.gateway, "/apps/web/processes/missing/exec", &origin);
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
        }
        other => panic!("expected the rack's 404, got {other:?}"),
    }
    assert_eq!(setup.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn client_close_code_reaches_the_rack() {
    let mut setup = setup().await;
    let origin = format!("http://{}", setup.gateway);
    let request = client_request(setup.gateway, "/apps/web/processes/p1/exec", &origin);
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    assert_eq!(next_message(&mut socket).await, Message::text("welcome"));
    socket
        .close(Some(tungstenite::protocol::CloseFrame {
            code: tungstenite::protocol::frame::coding::CloseCode::from(4002),
            reason: "client bye".into(),
        }))
        .await
        .expect("close");
    let seen = tokio::time::timeout(Duration::from_secs(5), setup.closes.recv())
        .await
        .expect("the rack saw the close in time");
    assert_eq!(seen, Some(Some((4002, "client bye".to_owned()))));
}
