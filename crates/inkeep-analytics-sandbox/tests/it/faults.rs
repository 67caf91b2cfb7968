//! Fault injection: each kind is produced when enabled, reproducibly, and can be changed at run time.

use std::time::{Duration, Instant};

use inkeep_analytics_sandbox::{FaultConfig, Outage, OutageKind, RateLimit, SandboxConfig};

use crate::support::*;

fn with_faults(faults: FaultConfig) -> SandboxConfig {
    SandboxConfig {
        conversations: 20,
        faults,
        ..SandboxConfig::default()
    }
}

#[tokio::test]
async fn rate_limiting_is_429_with_retry_after() {
    let sandbox = start_with(with_faults(FaultConfig {
        rate_limited: 1.0,
        retry_after_secs: 7,
        ..FaultConfig::default()
    }))
    .await;
    let answer = Raw::new(&sandbox).get("/conversations").await;
    assert_problem(&answer, 429, "too_many_requests");
    assert_eq!(answer.header("retry-after").as_deref(), Some("7"));
    // Faults come before authentication, as a rate limiter in front of the API does.
    let anonymous = Raw::with_key(&sandbox, None).get("/conversations").await;
    assert_eq!(anonymous.status, 429);

    // The SDK may retry and honour `Retry-After`: make the wait zero so that the test stays quick.
    sandbox
        .set_faults(FaultConfig {
            rate_limited: 1.0,
            retry_after_secs: 0,
            ..FaultConfig::default()
        })
        .must("set faults");
    let answer = Raw::new(&sandbox).get("/feedback").await;
    assert_eq!(answer.header("retry-after").as_deref(), Some("0"));
    let error = client(&sandbox)
        .list_conversations()
        .send()
        .await
        .err()
        .must("a 429");
    assert_eq!(error.status().map(|s| s.as_u16()), Some(429));
}

#[tokio::test]
async fn unavailable_is_503_with_an_html_body_and_bad_gateway_is_an_empty_502() {
    let sandbox = start_with(with_faults(FaultConfig {
        unavailable: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let answer = Raw::new(&sandbox).get("/conversations").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("content-type").as_deref(), Some("text/html"));
    assert!(
        answer
            .text()
            .contains("<h1>503 Service Temporarily Unavailable</h1>")
    );
    let error = client(&sandbox)
        .list_conversations()
        .send()
        .await
        .err()
        .must("a 503");
    let api = error.as_api().must("an API error from an HTML body");
    assert_eq!(api.status.as_u16(), 503);
    assert!(api.code.is_none());

    sandbox
        .set_faults(FaultConfig {
            bad_gateway: 1.0,
            ..FaultConfig::default()
        })
        .must("set faults");
    let answer = Raw::new(&sandbox).get("/feedback").await;
    assert_eq!(answer.status, 502);
    assert!(answer.body.is_empty());
    assert_eq!(answer.header("content-length").as_deref(), Some("0"));
}

#[tokio::test]
async fn a_dropped_connection_gets_no_answer() {
    let sandbox = start_with(with_faults(FaultConfig {
        dropped_connection: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let raw = Raw::new(&sandbox);
    let error = raw
        .send(reqwest::Method::GET, "/conversations", None)
        .await
        .err()
        .must("no answer");
    assert!(error.status().is_none());
    assert!(
        error.is_request() || error.is_connect() || error.is_body(),
        "{error:?}"
    );

    let error = client(&sandbox)
        .list_conversations()
        .send()
        .await
        .err()
        .must("no answer");
    assert!(
        error.status().is_none() && error.as_api().is_none(),
        "{error:?}"
    );

    // Turning the fault off restores normal service on new connections.
    sandbox.set_faults(FaultConfig::none()).must("set faults");
    assert_eq!(raw.get("/conversations?limit=1").await.status, 200);
}

#[tokio::test]
async fn a_truncated_body_announces_more_than_it_sends() {
    let sandbox = start_with(with_faults(FaultConfig {
        truncated_body: 1.0,
        ..FaultConfig::default()
    }))
    .await;
    let response = reqwest::Client::new()
        .get(format!("{}/conversations?limit=5", sandbox.base_url()))
        .bearer_auth(sandbox.api_key())
        .send()
        .await
        .must("the head arrives");
    assert_eq!(response.status().as_u16(), 200);
    let announced = response.content_length().must("a content length");
    assert!(announced > 1_000, "{announced}");
    let error = response.bytes().await.err().must("the body is cut");
    assert!(
        error.is_body() || error.is_decode() || error.is_request(),
        "{error:?}"
    );

    // Reading chunk by chunk shows the part that did arrive.
    let mut response = reqwest::Client::new()
        .get(format!("{}/conversations?limit=5", sandbox.base_url()))
        .bearer_auth(sandbox.api_key())
        .send()
        .await
        .must("the head arrives");
    let mut received = 0u64;
    let failed = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len() as u64,
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(failed, "the body must fail");
    assert!(
        received > 0 && received < announced,
        "{received} of {announced}"
    );

    let error = client(&sandbox)
        .list_conversations()
        .send()
        .await
        .err()
        .must("a cut body");
    assert!(error.as_api().is_none(), "{error:?}");
}

#[tokio::test]
async fn delays_slow_answers_down() {
    let sandbox = start_with(with_faults(FaultConfig {
        delayed: 1.0,
        delay: Duration::from_millis(300),
        ..FaultConfig::default()
    }))
    .await;
    let started = Instant::now();
    let answer = Raw::new(&sandbox).get("/conversations?limit=1").await;
    assert_eq!(answer.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn faults_are_drawn_from_the_seed_and_can_be_changed() {
    let faults = FaultConfig {
        rate_limited: 0.3,
        unavailable: 0.2,
        ..FaultConfig::default()
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let sandbox = start_with(with_faults(faults.clone())).await;
        let raw = Raw::new(&sandbox);
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(raw.get("/conversations?limit=1").await.status);
        }
        runs.push(statuses);
    }
    assert_eq!(runs[0], runs[1]);
    for status in [200, 429, 503] {
        assert!(runs[0].contains(&status), "{status} in {:?}", runs[0]);
    }

    let other_seed = start_with(SandboxConfig {
        seed: 7,
        ..with_faults(faults)
    })
    .await;
    let raw = Raw::new(&other_seed);
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(raw.get("/conversations?limit=1").await.status);
    }
    assert_ne!(statuses, runs[0]);

    // Invalid faults are refused and the current ones stay.
    let refused = other_seed.set_faults(FaultConfig {
        rate_limited: 1.5,
        ..FaultConfig::default()
    });
    assert!(matches!(
        refused,
        Err(inkeep_analytics_sandbox::Error::InvalidConfig(_))
    ));
    other_seed
        .set_faults(FaultConfig::none())
        .must("turn faults off");
    for _ in 0..10 {
        assert_eq!(raw.get("/conversations?limit=1").await.status, 200);
    }
}

fn rate_limited(per_second: f64, burst: u32) -> SandboxConfig {
    with_faults(FaultConfig {
        rate_limit: Some(RateLimit { per_second, burst }),
        ..FaultConfig::default()
    })
}

#[tokio::test]
async fn a_rate_limit_lets_the_burst_through_then_answers_429_until_a_token_is_back() {
    let sandbox = start_with(rate_limited(5.0, 3)).await;
    let raw = Raw::new(&sandbox);
    for request in 0..3 {
        assert_eq!(raw.get("/conversations").await.status, 200, "{request}");
    }
    let refused = raw.get("/conversations").await;
    let body = assert_problem(&refused, 429, "too_many_requests");
    assert_eq!(
        (sandbox.requests_answered(), sandbox.requests_rate_limited()),
        (4, 1)
    );
    // A token is back within 200 ms: the wait rounds up to whole seconds, never to 0.
    assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    assert!(body["detail"].as_str().is_some_and(|d| d.contains('1')));
    tokio::time::sleep(Duration::from_millis(260)).await;
    assert_eq!(raw.get("/conversations").await.status, 200);
    assert_eq!(raw.get("/conversations").await.status, 429);
}

#[tokio::test]
async fn a_rate_limit_holds_the_sustained_rate_of_a_client_that_never_waits() {
    let sandbox = start_with(rate_limited(20.0, 2)).await;
    let raw = Raw::new(&sandbox);
    let started = Instant::now();
    let (mut accepted, mut refused) = (0u32, 0u32);
    while started.elapsed() < Duration::from_millis(500) {
        match raw.get("/conversations?limit=1").await.status {
            200 => accepted += 1,
            429 => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // The burst, plus 20 a second for the time that passed; a token may be mid-refill at the end.
    let most = 2.0 + 20.0 * elapsed;
    assert!(
        f64::from(accepted) <= most + 1.0 && f64::from(accepted) >= most - 3.0,
        "{accepted} accepted in {elapsed:.3} s, expected about {most:.1}"
    );
    assert!(refused > 0, "a client that never waits meets the limit");
    // Replacing the faults lifts the limit at once.
    sandbox.set_faults(FaultConfig::none()).must("set faults");
    for _ in 0..5 {
        assert_eq!(raw.get("/conversations?limit=1").await.status, 200);
    }
}

#[tokio::test]
async fn a_rate_limit_states_its_rate_only_when_asked_to() {
    let sandbox = start_with(rate_limited(20.0, 1)).await;
    let raw = Raw::new(&sandbox);
    assert_eq!(
        raw.get("/conversations").await.header("ratelimit-policy"),
        None
    );
    let stating = |per_second| FaultConfig {
        rate_limit: Some(RateLimit {
            per_second,
            burst: 1,
        }),
        states_rate_limit: true,
        ..FaultConfig::default()
    };
    sandbox.set_faults(stating(20.0)).must("set faults");
    let accepted = raw.get("/conversations").await;
    assert_eq!(accepted.status, 200);
    assert_eq!(
        accepted.header("ratelimit-policy").as_deref(),
        Some("\"sandbox\";q=20;w=1")
    );
    // A refusal states it too, and a rate that is not whole is stated per minute.
    let refused = raw.get("/conversations").await;
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.header("ratelimit-policy").as_deref(),
        Some("\"sandbox\";q=20;w=1")
    );
    sandbox.set_faults(stating(2.5)).must("set faults");
    assert_eq!(
        raw.get("/conversations")
            .await
            .header("ratelimit-policy")
            .as_deref(),
        Some("\"sandbox\";q=150;w=60")
    );
}

#[test]
fn a_rate_limit_without_a_rate_or_a_burst_is_refused() {
    for (per_second, burst) in [(0.0, 1), (-1.0, 1), (10.0, 0)] {
        assert!(rate_limited(per_second, burst).validate().is_err());
    }
}

#[tokio::test]
async fn an_outage_of_503_answers_ends_after_its_window() {
    let sandbox = start_with(with_faults(FaultConfig {
        outage: Some(Outage {
            starts_after: Duration::ZERO,
            lasts: Duration::from_millis(300),
            kind: OutageKind::Unavailable,
        }),
        ..FaultConfig::default()
    }))
    .await;
    let raw = Raw::new(&sandbox);
    let answer = raw.get("/conversations").await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.header("content-type").as_deref(), Some("text/html"));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(raw.get("/conversations").await.status, 200);
}

#[tokio::test]
async fn an_outage_of_refused_connections_closes_the_listener_then_reopens_it() {
    let sandbox = start_with(with_faults(FaultConfig {
        outage: Some(Outage {
            starts_after: Duration::from_millis(150),
            lasts: Duration::from_millis(400),
            kind: OutageKind::Refused,
        }),
        ..FaultConfig::default()
    }))
    .await;
    let raw = Raw::new(&sandbox);
    // Before the window: served, and the connection is kept alive.
    assert_eq!(raw.get("/conversations").await.status, 200);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let connect = tokio::net::TcpStream::connect(sandbox.addr()).await;
    assert_eq!(
        connect.err().map(|error| error.kind()),
        Some(std::io::ErrorKind::ConnectionRefused),
        "a new connection is refused during the outage"
    );
    // The connection kept alive from before is closed without an answer.
    assert!(
        raw.send(reqwest::Method::GET, "/conversations", None)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(raw.get("/conversations").await.status, 200);
    assert_eq!(Raw::new(&sandbox).get("/feedback").await.status, 200);
}
