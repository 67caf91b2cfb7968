//! The request-path cost of the recorder's SQLite spool against its floor: p50 and p99 of a
//! recording call of a 10-turn conversation (200 live sessions, the API down, so every call
//! commits to the spool and nothing is delivered) beside `serde_json::to_vec` of the same
//! conversation, measured in the same process, interleaved call by call, with and without a spool.
//!
//! Run with `cargo bench -p inkeep-analytics-bench --bench spool`; the figures are printed.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use inkeep_analytics::types::CreateOpenAiConversation;
use inkeep_analytics::{Client, Recorder};

/// A client of an API that is down: nothing listens on its port.
fn down_client() -> Client {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port");
    Client::builder()
        .api_key("sk-bench")
        .base_url(format!("http://127.0.0.1:{port}"))
        .build()
        .expect("a client")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// 20,000 calls over 200 sessions, each timed beside `serde_json::to_vec` of the same session:
/// returns the sorted times of the recording calls and of the floor.
fn interleaved(
    recorder: &Recorder,
    sessions: &[CreateOpenAiConversation],
) -> (Vec<Duration>, Vec<Duration>) {
    let mut calls = Vec::with_capacity(20_000);
    let mut floor = Vec::with_capacity(20_000);
    for n in 0..20_000 {
        let session = &sessions[n % sessions.len()];
        let started = Instant::now();
        black_box(serde_json::to_vec(session).expect("serializable"));
        floor.push(started.elapsed());
        let started = Instant::now();
        let _ = black_box(recorder.record_conversation_ref(session));
        calls.push(started.elapsed());
    }
    calls.sort();
    floor.sort();
    (calls, floor)
}

fn request_path(c: &mut Criterion) {
    let sessions: Vec<CreateOpenAiConversation> = (0..200)
        .map(|s| {
            inkeep_analytics_bench::chat::conversation(s, 10).expect("a benchmark conversation")
        })
        .collect();
    for spool in [false, true] {
        let dir = std::env::temp_dir().join(format!("inkeep-bench-spool-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut builder = Recorder::builder(down_client()).drop_timeout(Duration::from_millis(100));
        if spool {
            builder = builder.spool(&dir);
        }
        let recorder = builder.build().expect("a recorder");
        // A first pass, so that the queue and the spool hold every session, as in a running service.
        let _ = interleaved(&recorder, &sessions);
        let (calls, floor) = interleaved(&recorder, &sessions);
        let with = if spool {
            "with a spool"
        } else {
            "without a spool"
        };
        println!(
            "recording call, 10-turn conversation, 200 live sessions, API down, {with}: p50 {:?}, p99 {:?}; serde_json::to_vec of the same, interleaved: p50 {:?}, p99 {:?}; p99 ratio {:.1}x",
            percentile(&calls, 0.5),
            percentile(&calls, 0.99),
            percentile(&floor, 0.5),
            percentile(&floor, 0.99),
            percentile(&calls, 0.99).as_secs_f64() / percentile(&floor, 0.99).as_secs_f64()
        );
        let name = if spool {
            "record_conversation_ref (10 turns, API down, spool)"
        } else {
            "record_conversation_ref (10 turns, API down)"
        };
        let mut n = 0usize;
        c.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                recorder.record_conversation_ref(&sessions[n % sessions.len()])
            })
        });
        recorder.shutdown_blocking(Duration::from_millis(50));
        drop(recorder);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = request_path
}
criterion_main!(benches);
