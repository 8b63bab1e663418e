//! The listener over real sockets, with short limits: who is cut, when, and who gets through.

use std::net::SocketAddr;
use std::time::Instant as StdInstant;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

const LIMITS: ConnectionLimits = ConnectionLimits {
    max_connections: 100,
    first_byte_timeout: Duration::from_millis(300),
    header_read_timeout: Duration::from_millis(600),
    tls_handshake_timeout: Duration::from_millis(300),
};
/// Slack for a busy machine when checking that something happened in time.
const SLACK: Duration = Duration::from_millis(1500);

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n";
/// How long `GET /slow` takes to answer.
const SLOW: Duration = Duration::from_millis(800);

struct Server {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: JoinHandle<io::Result<()>>,
}

async fn start(limits: ConnectionLimits, tls: Option<TlsAcceptor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let service = tower::service_fn(|request: Request<Incoming>| async move {
        if request.uri().path() == "/slow" {
            tokio::time::sleep(SLOW).await;
        }
        Ok::<_, Infallible>(Response::new(rack_gateway_layers::body::full("ok")))
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve(listener, tls, service, limits, async {
        let _ = stopped.await;
    }));
    Server {
        address,
        stop: Some(stop),
        done,
    }
}

/// Reads until the server closes the stream (end of stream or reset); how long after `since`.
async fn closed_after<S: AsyncRead + Unpin>(
    stream: &mut S,
    since: StdInstant,
    within: Duration,
) -> Duration {
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "still open after {within:?}");
    since.elapsed()
}

/// Whether the stream is still open (nothing to read, no end) for `for_at_least`.
async fn still_open(stream: &mut TcpStream, for_at_least: Duration) -> bool {
    let mut buf = [0u8; 16];
    tokio::time::timeout(for_at_least, stream.read(&mut buf))
        .await
        .is_err()
}

/// Sends one request on `stream` and reads the answer's head and the "ok" body.
async fn request_ok<S: AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: &mut S) {
    stream.write_all(REQUEST).await.expect("write");
    read_ok(stream).await;
}

/// Reads an answer's head and the "ok" body.
async fn read_ok<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"ok") {
        let n = tokio::time::timeout(SLACK, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before answering: {answer:?}");
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

#[tokio::test]
async fn a_silent_connection_is_closed_at_the_first_byte_timeout() {
    let server = start(LIMITS, None).await;
    let opened = StdInstant::now();
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    let took = closed_after(&mut stream, opened, LIMITS.first_byte_timeout + SLACK).await;
    assert!(took >= LIMITS.first_byte_timeout, "{took:?}");
}

#[tokio::test]
async fn a_client_that_pauses_less_than_the_timeouts_is_served_and_kept_alive() {
    let server = start(LIMITS, None).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    tokio::time::sleep(LIMITS.first_byte_timeout / 2).await;
    request_ok(&mut stream).await;
    tokio::time::sleep(LIMITS.header_read_timeout / 2).await;
    request_ok(&mut stream).await;
}

#[tokio::test]
async fn a_stalled_protocol_sniff_is_cut_at_the_request_head_timeout() {
    // "P" could still become the HTTP/2 preface: hyper waits for more with no timeout of its own.
    let server = start(LIMITS, None).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    stream.write_all(b"P").await.expect("write");
    let sent = StdInstant::now();
    let took = closed_after(&mut stream, sent, LIMITS.header_read_timeout + SLACK).await;
    assert!(
        took >= LIMITS.header_read_timeout - Duration::from_millis(50),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_slow_header_sender_is_cut_at_the_request_head_timeout() {
    let server = start(LIMITS, None).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    let started = StdInstant::now();
    let trickle = async {
        stream
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        // One header byte every 50 ms: always busy, never done.
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if stream.write_all(b"X").await.is_err() {
                return started.elapsed();
            }
        }
    };
    let took = tokio::time::timeout(LIMITS.header_read_timeout + SLACK, trickle)
        .await
        .expect("cut in time");
    assert!(
        took >= LIMITS.header_read_timeout - Duration::from_millis(50),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_kept_alive_connection_waiting_for_its_next_request_is_closed() {
    let server = start(LIMITS, None).await;
    let mut stream = TcpStream::connect(server.address).await.expect("connect");
    request_ok(&mut stream).await;
    let answered = StdInstant::now();
    let took = closed_after(&mut stream, answered, LIMITS.header_read_timeout + SLACK).await;
    assert!(
        took >= LIMITS.header_read_timeout - Duration::from_millis(50),
        "{took:?}"
    );
}

#[tokio::test]
async fn at_the_cap_the_oldest_silent_connection_makes_room() {
    let limits = ConnectionLimits {
        max_connections: 2,
        first_byte_timeout: Duration::from_secs(30),
        ..LIMITS
    };
    let server = start(limits, None).await;
    let mut oldest = TcpStream::connect(server.address).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut newer = TcpStream::connect(server.address).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        still_open(&mut oldest, Duration::from_millis(100)).await,
        "nothing is shed ahead of need"
    );

    let mut client = TcpStream::connect(server.address).await.expect("connect");
    request_ok(&mut client).await;
    closed_after(&mut oldest, StdInstant::now(), SLACK).await;
    assert!(still_open(&mut newer, Duration::from_millis(100)).await);
}

#[tokio::test]
async fn at_the_cap_an_idle_connection_makes_room_when_none_is_silent() {
    let limits = ConnectionLimits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(30),
        ..LIMITS
    };
    let server = start(limits, None).await;
    let mut idle = TcpStream::connect(server.address).await.expect("connect");
    request_ok(&mut idle).await;
    let mut client = TcpStream::connect(server.address).await.expect("connect");
    request_ok(&mut client).await;
    closed_after(&mut idle, StdInstant::now(), SLACK).await;
}

#[tokio::test]
async fn while_every_connection_is_busy_new_ones_wait() {
    let limits = ConnectionLimits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(30),
        ..LIMITS
    };
    let server = start(limits, None).await;
    let mut busy = TcpStream::connect(server.address).await.expect("connect");
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: gateway\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut waiting = TcpStream::connect(server.address).await.expect("connect");
    waiting.write_all(REQUEST).await.expect("write");
    assert!(
        still_open(&mut waiting, SLOW / 2).await,
        "not served while the only place is busy"
    );
    // The busy connection is answered in full, not cut; once idle it makes room.
    read_ok(&mut busy).await;
    read_ok(&mut waiting).await;
    closed_after(&mut busy, StdInstant::now(), SLACK).await;
}

#[tokio::test]
async fn shutdown_does_not_wait_for_silent_connections() {
    let limits = ConnectionLimits {
        first_byte_timeout: Duration::from_secs(30),
        ..LIMITS
    };
    let mut server = start(limits, None).await;
    let mut silent = TcpStream::connect(server.address).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = server.stop.take().map(|stop| stop.send(()));
    tokio::time::timeout(SLACK, &mut server.done)
        .await
        .expect("serve returns promptly")
        .expect("task")
        .expect("serve");
    closed_after(&mut silent, StdInstant::now(), SLACK).await;
}

mod tls {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::TlsConnector;

    use super::*;

    struct Certificate {
        acceptor: TlsAcceptor,
        der: CertificateDer<'static>,
        _dir: tempfile::TempDir,
    }

    fn certificate() -> Certificate {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).expect("write cert");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
        Certificate {
            acceptor: tls_acceptor(&cert, &key).expect("acceptor"),
            der: certified.cert.der().clone(),
            _dir: dir,
        }
    }

    fn connector(der: &CertificateDer<'static>) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der.clone()).expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    fn limits() -> ConnectionLimits {
        // A first-byte timeout longer than the handshake's, to tell the two apart.
        ConnectionLimits {
            first_byte_timeout: Duration::from_secs(1),
            ..LIMITS
        }
    }

    #[tokio::test]
    async fn a_handshake_that_never_starts_is_cut() {
        let certificate = certificate();
        let server = start(limits(), Some(certificate.acceptor)).await;
        let opened = StdInstant::now();
        let mut stream = TcpStream::connect(server.address).await.expect("connect");
        let took = closed_after(&mut stream, opened, SLACK).await;
        assert!(took >= LIMITS.tls_handshake_timeout, "{took:?}");
        assert!(took < limits().first_byte_timeout, "{took:?}");
    }

    #[tokio::test]
    async fn a_handshake_that_stalls_halfway_is_cut() {
        let certificate = certificate();
        let server = start(limits(), Some(certificate.acceptor)).await;
        let opened = StdInstant::now();
        let mut stream = TcpStream::connect(server.address).await.expect("connect");
        // The start of a ClientHello record that never finishes.
        stream
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .expect("write");
        let took = closed_after(&mut stream, opened, SLACK).await;
        assert!(took >= LIMITS.tls_handshake_timeout, "{took:?}");
        assert!(took < limits().first_byte_timeout, "{took:?}");
    }

    #[tokio::test]
    async fn silence_after_the_handshake_is_cut_at_the_first_byte_timeout() {
        let certificate = certificate();
        let connector = connector(&certificate.der);
        let server = start(limits(), Some(certificate.acceptor)).await;

        let stream = TcpStream::connect(server.address).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let mut served = connector
            .connect(name.clone(), stream)
            .await
            .expect("handshake");
        request_ok(&mut served).await;

        let stream = TcpStream::connect(server.address).await.expect("connect");
        let mut silent = connector.connect(name, stream).await.expect("handshake");
        let handshaken = StdInstant::now();
        let took = closed_after(&mut silent, handshaken, limits().first_byte_timeout + SLACK).await;
        assert!(
            took >= limits().first_byte_timeout - Duration::from_millis(50),
            "{took:?}"
        );
    }
}

#[test]
fn accept_errors_are_told_apart() {
    let of = |error: io::Error| AcceptError::of(&error);
    assert_eq!(of(io::Error::from_raw_os_error(24)), AcceptError::Exhausted);
    assert_eq!(of(io::Error::from_raw_os_error(23)), AcceptError::Exhausted);
    assert_eq!(
        of(io::ErrorKind::OutOfMemory.into()),
        AcceptError::Exhausted
    );
    assert_eq!(
        of(io::ErrorKind::ConnectionAborted.into()),
        AcceptError::PeerGone
    );
    assert_eq!(of(io::ErrorKind::InvalidInput.into()), AcceptError::Other);
}

#[tokio::test(start_paused = true)]
async fn warnings_are_throttled_and_count_what_they_skipped() {
    let mut throttle = Throttle::default();
    assert_eq!(throttle.hit(), Some(1));
    assert_eq!(throttle.hit(), None);
    assert_eq!(throttle.hit(), None);
    tokio::time::advance(WARN_EVERY).await;
    assert_eq!(throttle.hit(), Some(3));
}
