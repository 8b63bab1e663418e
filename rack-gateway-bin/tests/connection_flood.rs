//! Connections that never send a byte cannot lock people out: the real binary under a flood of
//! 20,000 of them closes each within the first-byte timeout, keeps `/api/v1/health` and the
//! proxy answering, does not spin, and serves an authenticated request right afterwards. The
//! same holds when accept runs out of file descriptors first, and when each connection sends one
//! request and then idles; a bad MAX_CONNECTIONS stops start-up.
//!
//! The silent connections are opened by several `python3` child processes
//! (`common/silent_connections.py`) so that neither this process nor any child needs more file
//! descriptors than its limit allows.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::http::get;
use common::process::{DevGateway, Running};
use http::StatusCode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The gateway's default time from accept to the first byte.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// Scheduling slack on a busy two-core machine, on top of the timeout.
const MARGIN: Duration = Duration::from_secs(2);
/// How long a flooder waits, after opening its last connection, for the gateway to close them.
const GIVE_UP: Duration = Duration::from_secs(14);

/// The flood tests are heavy; they take turns so their timings mean something.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What one `silent_connections.py` child reported.
#[derive(Debug, serde::Deserialize)]
struct FloodReport {
    opened: usize,
    closed: usize,
    still_open: usize,
    still_connecting: usize,
    connect_failures: usize,
    connect_failure_kinds: Vec<String>,
    bytes_received: usize,
    answered: usize,
    closed_within_5s: usize,
    lifetime_max: Option<f64>,
    last_open_after_start: f64,
    last_close_after_start: Option<f64>,
}

/// What the flooders' connections do once connected.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Nothing at all.
    Silent,
    /// One health request, then nothing.
    RequestThenIdle,
}

/// Runs `children` flooders of `per_child` connections each against `address`, at `rate` new
/// connections per second per child, each waiting `give_up` after its last connection for the
/// gateway to close them; returns their reports.
async fn flood(
    address: SocketAddr,
    children: usize,
    per_child: usize,
    rate: usize,
    give_up: Duration,
    mode: Mode,
) -> Vec<FloodReport> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/common/silent_connections.py"
    );
    let give_up = give_up.as_secs_f64().to_string();
    let mode = match mode {
        Mode::Silent => "silent",
        Mode::RequestThenIdle => "request",
    };
    let mut running = Vec::new();
    for _ in 0..children {
        let child = tokio::process::Command::new("python3")
            .args([
                script,
                &address.ip().to_string(),
                &address.port().to_string(),
                &per_child.to_string(),
                &rate.to_string(),
                &give_up,
                mode,
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 is needed to open the silent connections");
        running.push(child);
    }
    let mut reports = Vec::new();
    for child in running {
        let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
            .await
            .expect("a flooder finishes")
            .expect("flooder output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "flooder failed ({}): {stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        reports.push(serde_json::from_str(stdout.trim()).expect("flooder JSON report"));
    }
    reports
}

/// User plus system CPU time of a process, in seconds (Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // The command name may hold spaces; the numeric fields start after its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the name.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ is 100 on every Linux configuration this runs on.
    ticks as f64 / 100.0
}

/// One `GET /api/v1/health` on a fresh connection; the time it took, or why it failed.
async fn health_once(address: SocketAddr) -> Result<Duration, String> {
    let started = Instant::now();
    let exchange = async {
        let mut stream = TcpStream::connect(address)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut reply = Vec::new();
        stream
            .read_to_end(&mut reply)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let reply = String::from_utf8_lossy(&reply).into_owned();
        if reply.starts_with("HTTP/1.1 200") && reply.contains(r#""status":"ok""#) {
            Ok(started.elapsed())
        } else {
            Err(format!("unexpected answer: {reply:?}"))
        }
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".to_owned()))
}

/// Latencies of health (and, with a token, proxy) requests made every `every` until `stop`.
async fn probe_until(
    gateway_address: SocketAddr,
    proxy: Option<(String, String)>,
    every: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> (Vec<Result<Duration, String>>, Vec<Result<Duration, String>>) {
    let mut health = Vec::new();
    let mut proxied = Vec::new();
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = &mut stop => return (health, proxied),
        }
        health.push(health_once(gateway_address).await);
        if let Some((url, token)) = &proxy {
            let started = Instant::now();
            let outcome = tokio::time::timeout(Duration::from_secs(5), get(url, Some(token))).await;
            proxied.push(match outcome {
                Ok(reply) if reply.status == StatusCode::OK => Ok(started.elapsed()),
                Ok(reply) => Err(format!("{}: {}", reply.status, reply.body)),
                Err(_) => Err("no answer within 5 s".to_owned()),
            });
        }
    }
}

fn address_of(base: &str) -> SocketAddr {
    base.trim_start_matches("http://")
        .parse()
        .expect("gateway address")
}

fn max_latency(results: &[Result<Duration, String>]) -> Duration {
    results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .copied()
        .max()
        .unwrap_or_default()
}

/// Checks every report: all connections were opened, all were closed by the gateway, none
/// lived longer than the first-byte timeout plus the margin.
fn assert_all_closed_in_time(reports: &[FloodReport], total: usize) {
    let opened: usize = reports.iter().map(|r| r.opened).sum();
    assert_eq!(opened, total, "{reports:#?}");
    let failures: usize = reports.iter().map(|r| r.connect_failures).sum();
    let kinds: Vec<&String> = reports
        .iter()
        .flat_map(|r| &r.connect_failure_kinds)
        .collect();
    assert_eq!(failures, 0, "connections refused ({kinds:?}): {reports:#?}");
    let never_connected: usize = reports.iter().map(|r| r.still_connecting).sum();
    assert_eq!(
        never_connected, 0,
        "connections never accepted: {reports:#?}"
    );
    let still_open: usize = reports.iter().map(|r| r.still_open).sum();
    assert_eq!(
        still_open, 0,
        "{still_open} silent connections were still open {GIVE_UP:?} after the last was opened: \
         {reports:#?}"
    );
    let closed: usize = reports.iter().map(|r| r.closed).sum();
    assert_eq!(closed, total, "{reports:#?}");
    let longest = reports
        .iter()
        .filter_map(|r| r.lifetime_max)
        .fold(0.0_f64, f64::max);
    assert!(
        longest <= (FIRST_BYTE_TIMEOUT + MARGIN).as_secs_f64(),
        "a silent connection lived {longest} s: {reports:#?}"
    );
    let bytes: usize = reports.iter().map(|r| r.bytes_received).sum();
    assert_eq!(
        bytes, 0,
        "the gateway wrote to silent connections: {reports:#?}"
    );
}

/// An authenticated proxy request answers 200 within a second.
async fn assert_proxy_answers_quickly(gateway: &DevGateway) -> Duration {
    let started = Instant::now();
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        get(&gateway.proxy("/apps"), Some(&gateway.admin_token)),
    )
    .await
    .expect("the proxy answers after the flood");
    let took = started.elapsed();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(took < Duration::from_secs(1), "the proxy took {took:?}");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_silent_connections_are_closed_and_everyone_else_gets_through() {
    let _turn = HEAVY.lock().await;
    let mut gateway = DevGateway::start().await;
    let address = address_of(&gateway.base);
    let pid = gateway.process.child.id().expect("gateway pid");

    let (stop, stopped) = tokio::sync::oneshot::channel();
    let probes = tokio::spawn(probe_until(
        address,
        Some((gateway.proxy("/apps"), gateway.admin_token.clone())),
        Duration::from_millis(500),
        stopped,
    ));
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    // Four processes of 5,000 each, 2,000 new connections a second in all: every process stays
    // far below its descriptor limit, and the gateway's accept queue is not the thing tested.
    let reports = flood(address, 4, 5_000, 500, GIVE_UP, Mode::Silent).await;
    let flood_time = started.elapsed();
    let cpu = cpu_seconds(pid) - cpu_before;
    let _ = stop.send(());
    let (health, proxied) = probes.await.expect("probes");

    let all_closed_after = reports
        .iter()
        .filter_map(|r| r.last_close_after_start)
        .fold(0.0_f64, f64::max);
    let shed: usize = reports.iter().map(|r| r.closed_within_5s).sum();
    let longest = reports
        .iter()
        .filter_map(|r| r.lifetime_max)
        .fold(0.0_f64, f64::max);
    println!(
        "flood: 20000 silent connections; last opened {:.1} s and last closed {all_closed_after:.1} s \
         after the start; longest lived {longest} s; {shed} closed within 5 s (to make room); \
         gateway CPU {cpu:.2} s over {flood_time:.1?}; {} health probes, slowest {:?}; \
         {} proxy probes, slowest {:?}",
        reports
            .iter()
            .map(|r| r.last_open_after_start)
            .fold(0.0_f64, f64::max),
        health.len(),
        max_latency(&health),
        proxied.len(),
        max_latency(&proxied),
    );

    assert_all_closed_in_time(&reports, 20_000);
    assert!(!health.is_empty());
    for outcome in &health {
        let took = outcome.as_ref().expect("health answers during the flood");
        assert!(*took < Duration::from_secs(2), "health took {took:?}");
    }
    for outcome in &proxied {
        outcome
            .as_ref()
            .expect("the proxy answers during the flood");
    }
    assert!(
        cpu < 5.0,
        "the gateway used {cpu:.2} s of CPU during the flood (spinning?)"
    );
    let took = assert_proxy_answers_quickly(&gateway).await;
    println!("after the flood: authenticated proxy request in {took:?}");
    assert!(
        gateway.process.child.try_wait().expect("wait").is_none(),
        "the gateway exited: {}",
        gateway.process.drain().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_silent_connections_make_room() {
    let _turn = HEAVY.lock().await;
    // The cap as high as the descriptor limit: the store, the mock rack and the runtime hold
    // some too, so accept runs out of descriptors before the cap is reached.
    let env = HashMap::from([("MAX_CONNECTIONS".to_owned(), "512".to_owned())]);
    let mut gateway = DevGateway::start_with(&env, Some(512)).await;
    let address = address_of(&gateway.base);
    let pid = gateway.process.child.id().expect("gateway pid");

    let (stop, stopped) = tokio::sync::oneshot::channel();
    let probes = tokio::spawn(probe_until(
        address,
        None,
        Duration::from_millis(250),
        stopped,
    ));
    let cpu_before = cpu_seconds(pid);
    let reports = flood(address, 1, 2_000, 1_000, GIVE_UP, Mode::Silent).await;
    let cpu = cpu_seconds(pid) - cpu_before;
    let _ = stop.send(());
    let (health, _) = probes.await.expect("probes");
    println!(
        "descriptor exhaustion: gateway CPU {cpu:.2} s; {} health probes, slowest {:?}; {reports:?}",
        health.len(),
        max_latency(&health)
    );

    assert_all_closed_in_time(&reports, 2_000);
    for outcome in &health {
        let took = outcome
            .as_ref()
            .expect("health answers while out of descriptors");
        assert!(*took < Duration::from_secs(2), "health took {took:?}");
    }
    assert!(
        cpu < 5.0,
        "the gateway used {cpu:.2} s of CPU (spinning on accept errors?)"
    );
    assert_proxy_answers_quickly(&gateway).await;
    let log = gateway.process.drain().join("\n");
    assert!(
        log.to_lowercase().contains("too many open files"),
        "the gateway never ran out of descriptors, so this test proved nothing:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_idle_after_one_request_make_room_too() {
    let _turn = HEAVY.lock().await;
    let env = HashMap::from([("MAX_CONNECTIONS".to_owned(), "500".to_owned())]);
    let gateway = DevGateway::start_with(&env, None).await;
    let address = address_of(&gateway.base);

    let (stop, stopped) = tokio::sync::oneshot::channel();
    let probes = tokio::spawn(probe_until(
        address,
        Some((gateway.proxy("/apps"), gateway.admin_token.clone())),
        Duration::from_millis(250),
        stopped,
    ));
    // Far below the 30 s keep-alive timeout: only making room can have closed them.
    let reports = flood(
        address,
        1,
        2_000,
        1_000,
        Duration::from_secs(2),
        Mode::RequestThenIdle,
    )
    .await;
    let _ = stop.send(());
    let (health, proxied) = probes.await.expect("probes");
    println!(
        "request then idle: {} health probes, slowest {:?}; {} proxy probes, slowest {:?}; \
         {reports:?}",
        health.len(),
        max_latency(&health),
        proxied.len(),
        max_latency(&proxied)
    );

    let report = &reports[0];
    assert_eq!(report.opened, 2_000, "{report:?}");
    assert_eq!(
        report.connect_failures + report.still_connecting,
        0,
        "{report:?}"
    );
    assert_eq!(
        report.answered, 2_000,
        "every connection got its answer: {report:?}"
    );
    assert!(
        report.closed >= 2_000 - 500,
        "no more than MAX_CONNECTIONS may stay open: {report:?}"
    );
    for outcome in health.iter().chain(&proxied) {
        let took = outcome.as_ref().expect("answers while the cap is reached");
        assert!(*took < Duration::from_secs(2), "took {took:?}");
    }
    assert_proxy_answers_quickly(&gateway).await;
}

#[tokio::test]
async fn a_bad_connection_limit_stops_start_up_naming_it() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    for value in ["0", "lots", "-5", "99999999999"] {
        let mut env = common::deploy::gateway_env("", "http://127.0.0.1:9");
        env.remove("DATABASE_URL");
        env.insert("RGW_DATA_DIR".into(), data_dir.path().display().to_string());
        env.insert("MAX_CONNECTIONS".into(), value.into());
        let mut process = Running::start(&["serve"], &env);
        let status = tokio::time::timeout(Duration::from_secs(20), process.child.wait())
            .await
            .unwrap_or_else(|_| panic!("serve started with MAX_CONNECTIONS={value}"))
            .expect("wait");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let output = process.drain();
        assert_eq!(
            status.code(),
            Some(2),
            "MAX_CONNECTIONS={value}: {output:?}"
        );
        assert_eq!(output.len(), 1, "MAX_CONNECTIONS={value}: {output:?}");
        assert!(
            output[0].starts_with("error: MAX_CONNECTIONS: "),
            "MAX_CONNECTIONS={value}: {output:?}"
        );
    }
}
