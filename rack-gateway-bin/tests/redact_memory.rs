//! Masking holds whole responses in memory; many large ones at once must not take the process's
//! memory with them. 150 concurrent ops listings of a 10 MB release, through the real binary:
//! the gateway's resident memory stays under 512 MiB, every answer is either masked or a 503
//! asking to retry, and none leaks a secret.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::deploy::{
    create_token, fresh_database, gateway_env, start_gateway, start_mock_rack, RACK_TOKEN,
};
use common::http::{basic, send};
use http::{Method, StatusCode};

const LISTINGS: usize = 150;
const RSS_LIMIT_KIB: u64 = 512 * 1024;
const SECRET: &str = "sk_live_do-not-show-this-0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_masked_listings_keep_memory_bounded() {
    let database_url = fresh_database().await;
    let (_rack, rack_url) = start_mock_rack().await;
    let env = gateway_env(&database_url, &rack_url);
    let ops = basic(&create_token(&env, "ops-memory", "ops").await);
    let (gateway, base) = start_gateway(&env).await;

    // A release of ~10 MB of env on the rack (straight to the rack: the gateway's form limit is
    // far smaller), with a secret in it.
    let mut text = format!("STRIPE_SECRET_KEY={SECRET}\n");
    let mut i = 0;
    while text.len() < 10 * 1024 * 1024 {
        text.push_str(&format!("SETTING_{i:07}={}\n", "v".repeat(96)));
        i += 1;
    }
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("env", text.trim_end())
        .finish();
    let created = send(
        Method::POST,
        &format!("{rack_url}/apps/web/releases"),
        &[
            ("authorization", basic(RACK_TOKEN).as_str()),
            ("content-type", "application/x-www-form-urlencoded"),
        ],
        Bytes::from(form),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    drop(text);

    let baseline = gateway.rss_kib();
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let pid = gateway.child.id().expect("running");
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                if let Some(rss) = rss_of(pid) {
                    peak.fetch_max(rss, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let url = format!("{base}/api/v1/rack-proxy/apps/web/releases?limit=1");
    let listings: Vec<_> = (0..LISTINGS)
        .map(|n| {
            let (url, ops) = (url.clone(), ops.clone());
            tokio::spawn(async move {
                let id = format!("big-{n}");
                let reply = send(
                    Method::GET,
                    &url,
                    &[
                        ("authorization", ops.as_str()),
                        ("x-request-id", id.as_str()),
                    ],
                    Bytes::new(),
                )
                .await;
                (reply.status, reply.body.len(), reply.body.contains(SECRET))
            })
        })
        .collect();
    let mut masked = 0;
    let mut busy = 0;
    for listing in listings {
        let (status, length, leaked) = listing.await.expect("listing task");
        assert!(!leaked, "a secret left the gateway");
        match status {
            StatusCode::OK => {
                assert!(length > 10 * 1024 * 1024, "a whole release: {length} bytes");
                masked += 1;
            }
            StatusCode::SERVICE_UNAVAILABLE => busy += 1,
            other => panic!("unexpected {other}"),
        }
    }
    done.store(true, Ordering::SeqCst);
    let _ = sampler.await;
    let peak = peak.load(Ordering::SeqCst);
    eprintln!(
        "{masked} masked, {busy} asked to retry; RSS {} MiB before, peak {} MiB",
        baseline / 1024,
        peak / 1024
    );
    assert!(
        masked >= 6,
        "the budget serves several at once: {masked} masked"
    );
    assert!(
        peak < RSS_LIMIT_KIB,
        "peak RSS {} MiB is over {} MiB",
        peak / 1024,
        RSS_LIMIT_KIB / 1024
    );
}

fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
