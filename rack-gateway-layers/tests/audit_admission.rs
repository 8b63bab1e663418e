//! Long-lived requests (websocket sessions, slow streams) must not use up the audit queue: a
//! request is admitted while the queue has room, but holds no place in it while it runs, so new
//! requests keep getting through. And an inner service that cannot become ready is answered for,
//! not called.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use rack_gateway_core::audit::ChainKey;
use rack_gateway_core::store::{AuditFilter, AuditStore, EmbeddedStore, Store};
use rack_gateway_layers::audit::{AuditConfig, AuditLayer, AuditWriter, WriterConfig};
use rack_gateway_layers::body::{self, Body};
use rack_gateway_layers::error::StoreUnavailable;
use rack_gateway_layers::rescue::RescueLayer;
use rack_gateway_layers::BoxError;
use tokio::sync::Semaphore;
use tower::{Service, ServiceBuilder, ServiceExt as _};

const QUEUE: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_hold_no_place_in_the_audit_queue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EmbeddedStore::open(dir.path()).await.expect("store"));
    store.migrate().await.expect("migrate");
    let audit_store: Arc<dyn AuditStore> = store.clone();
    let (writer, task) = AuditWriter::spawn(
        audit_store,
        ChainKey::new(b"audit-admission-test-key-0123456789"),
        WriterConfig {
            queue_capacity: QUEUE,
            enqueue_timeout: Duration::from_millis(500),
            ..WriterConfig::default()
        },
    );
    // Requests to /hold stay open until released, like websocket sessions.
    let release = Arc::new(Semaphore::new(0));
    let inner = Holding {
        release: Arc::clone(&release),
    };
    let stack = ServiceBuilder::new()
        .layer(AuditLayer::new(writer.clone(), AuditConfig::new("")))
        .service(inner);

    // Driven in this task (not spawned): they run concurrently while it waits below.
    let held = futures_util::future::join_all((0..QUEUE * 3).map(|i| {
        let request = Request::get("/hold")
            .header("x-request-id", format!("held-{i}"))
            .body(body::empty())
            .expect("request");
        stack.clone().oneshot(request)
    }));
    tokio::pin!(held);
    let quick = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Three times the queue's size is open, and a new request still gets through at once.
        let request = Request::get("/quick")
            .header("x-request-id", "quick")
            .body(body::empty())
            .expect("request");
        tokio::time::timeout(Duration::from_secs(2), stack.clone().oneshot(request)).await
    };
    let response = tokio::select! {
        _ = &mut held => panic!("the held requests were released early"),
        quick = quick => quick
            .expect("answered without waiting for the open requests")
            .expect("response"),
    };
    assert_eq!(response.status(), StatusCode::OK);

    release.add_permits(QUEUE * 3);
    for response in held.await {
        assert_eq!(response.expect("response").status(), StatusCode::OK);
    }
    drop(stack);
    drop(writer);
    task.finished().await;
    let records = store
        .audit_query(&AuditFilter::default(), 1000)
        .await
        .expect("query");
    // Every request, the held ones included, left its record.
    assert_eq!(records.len(), QUEUE * 3 + 1);
}

/// Answers at once, except `/hold`, which waits for a permit of `release`.
#[derive(Clone)]
struct Holding {
    release: Arc<Semaphore>,
}

impl Service<Request<Body>> for Holding {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let release = Arc::clone(&self.release);
        Box::pin(async move {
            if request.uri().path() == "/hold" {
                if let Ok(permit) = release.acquire().await {
                    permit.forget();
                }
            }
            Ok(Response::new(body::full("ok")))
        })
    }
}

/// A service that is never ready: it fails `poll_ready`, and counts the calls it gets anyway.
#[derive(Clone)]
struct NeverReady {
    calls: Arc<AtomicUsize>,
}

impl Service<Request<Body>> for NeverReady {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = std::future::Ready<Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Err(StoreUnavailable("pool exhausted".into()).into()))
    }

    fn call(&mut self, _request: Request<Body>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(Response::new(body::full("should not be called"))))
    }
}

#[tokio::test]
async fn a_service_that_cannot_become_ready_is_answered_for_not_called() {
    let calls = Arc::new(AtomicUsize::new(0));
    let service = ServiceBuilder::new()
        .layer(RescueLayer::new())
        .service(NeverReady {
            calls: Arc::clone(&calls),
        });
    let response = service
        .oneshot(Request::get("/").body(body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "called without being ready"
    );
}
