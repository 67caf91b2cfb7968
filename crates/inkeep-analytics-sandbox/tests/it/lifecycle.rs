//! Starting, configuring and stopping sandboxes; determinism; concurrent inserts.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use inkeep_analytics_sandbox::{ConcurrentInserts, Error, Sandbox, SandboxConfig, serve};
use tokio::net::TcpStream;

use crate::support::*;

/// Every byte the sandbox serves for its seeded data.
async fn dump(sandbox: &Sandbox) -> Vec<Vec<u8>> {
    let raw = Raw::new(sandbox);
    let mut bodies = Vec::new();
    for offset in (0..250).step_by(100) {
        bodies.push(
            raw.get(&format!("/conversations?limit=100&offset={offset}"))
                .await
                .body,
        );
    }
    bodies.push(raw.get("/feedback?limit=100").await.body);
    bodies.push(raw.post("/query/events", "{}").await.body);
    bodies.push(raw.post("/query/semantic-threads/export", "{}").await.body);
    bodies.push(raw.get("/query/weekly-search-users").await.body);
    bodies
}

#[tokio::test]
async fn the_same_seed_serves_the_same_bytes() {
    let first = start().await;
    let second = start().await;
    let (a, b) = (dump(&first).await, dump(&second).await);
    assert_eq!(a, b);
    let other = start_with(SandboxConfig {
        seed: 43,
        ..SandboxConfig::default()
    })
    .await;
    let c = dump(&other).await;
    assert_ne!(a[0], c[0]);
}

/// Whether something still accepts connections on `addr`, waiting up to two seconds for it to stop.
async fn refuses_soon(addr: SocketAddr) -> bool {
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_dropped_sandbox_stops_listening() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    assert!(sandbox.base_url().ends_with(&addr.port().to_string()));
    assert!(addr.ip().is_loopback());
    // An open keep-alive connection does not keep it alive.
    let raw = Raw::new(&sandbox);
    assert_eq!(raw.get("/conversations?limit=1").await.status, 200);
    drop(sandbox);
    assert!(refuses_soon(addr).await, "{addr} still accepts connections");
    assert!(
        raw.send(reqwest::Method::GET, "/conversations", None)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn shutdown_waits_until_the_port_is_closed() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    sandbox.shutdown().await.must("shut down");
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn serve_runs_until_its_shutdown_signal() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .must("a free port")
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = SandboxConfig {
        conversations: 12,
        api_keys: vec!["sk-one".into(), "sk-two".into()],
        web_keys: vec![],
        ..SandboxConfig::default()
    };
    let server = tokio::spawn(serve(config, addr, async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let mut answer = None;
    for _ in 0..100 {
        match http
            .get(format!("http://{addr}/conversations"))
            .bearer_auth("sk-two")
            .send()
            .await
        {
            Ok(response) => {
                answer = Some(response.json::<serde_json::Value>().await.must("JSON"));
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert_eq!(answer.must("an answer")["total"], 12);
    let _ = stop.send(());
    let finished = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "{finished:?}");
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn bad_configurations_and_taken_ports_are_errors() {
    let no_key = Sandbox::start_with(SandboxConfig {
        api_keys: vec![],
        ..SandboxConfig::default()
    })
    .await;
    assert!(matches!(no_key, Err(Error::InvalidConfig(_))));
    let running = start_with(SandboxConfig {
        conversations: 1,
        ..SandboxConfig::default()
    })
    .await;
    let taken = Sandbox::start_on(SandboxConfig::default(), running.addr()).await;
    assert!(matches!(taken, Err(Error::Bind { .. })), "{taken:?}");
}

#[tokio::test]
async fn small_and_empty_sandboxes_work() {
    let empty = start_with(SandboxConfig {
        conversations: 0,
        ..SandboxConfig::default()
    })
    .await;
    let raw = Raw::new(&empty);
    let page = raw.get("/conversations").await.json();
    assert_eq!(page["total"], 0);
    let count = raw
        .post(
            "/query/conversations",
            r#"{"select":[{"type":"aggregation","aggregation":"count"}]}"#,
        )
        .await
        .json();
    assert_eq!(count["data"]["result"], serde_json::json!([{"count": 0}]));
    assert_eq!(
        raw.get("/query/top-search-queries").await.json()["data"]["total"],
        0
    );
}

#[tokio::test]
async fn concurrent_inserts_shift_offset_pages() {
    let sandbox = start_with(SandboxConfig {
        conversations: 50,
        concurrent_inserts: Some(ConcurrentInserts { every: 1, count: 3 }),
        ..SandboxConfig::default()
    })
    .await;
    let raw = Raw::new(&sandbox);
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["conversations"]
            .as_array()
            .must("conversations")
            .iter()
            .map(|c| c["id"].as_str().must("id").to_string())
            .collect()
    };
    let first = raw.get("/conversations?limit=10&offset=0").await.json();
    assert_eq!(first["total"], 50);
    let second = raw.get("/conversations?limit=10&offset=10").await.json();
    // Three newer conversations were inserted after the first page: the last three of the
    // first page come again at the start of the second.
    assert_eq!(second["total"], 53);
    assert_eq!(ids(&second)[..3], ids(&first)[7..]);
    let newest = raw.get("/conversations?limit=3").await.json();
    assert_eq!(newest["total"], 56);
    assert!(ids(&newest).iter().all(|id| !ids(&first).contains(id)));
    assert!(
        newest["conversations"][0]["createdAt"].as_str()
            > first["conversations"][0]["createdAt"].as_str()
    );

    // An export that pages by offset sees duplicates.
    let all: Vec<String> = {
        let mut all = Vec::new();
        loop {
            let page = raw
                .get(&format!("/conversations?limit=25&offset={}", all.len()))
                .await
                .json();
            let page_ids = ids(&page);
            let done = page_ids.len() < 25;
            all.extend(page_ids);
            if done {
                break all;
            }
        }
    };
    let unique: HashSet<&String> = all.iter().collect();
    assert!(
        unique.len() < all.len(),
        "paging by offset while inserting shows duplicates"
    );

    // Other operations do not insert.
    let before = raw.get("/conversations?limit=0").await.json()["total"]
        .as_u64()
        .must("total");
    raw.get("/feedback").await;
    raw.post("/query/conversations", "{}").await;
    let after = raw.get("/conversations?limit=0").await.json()["total"]
        .as_u64()
        .must("total");
    assert_eq!(after, before + 3);
}
