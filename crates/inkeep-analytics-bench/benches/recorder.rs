//! The recorder's cost on a service's request path, and what it spends: the latency of a
//! recording call while the server is slow (p50, p99, max; with and without a spool), the peak
//! memory while 100,000 records are recorded with the API down, and the bytes sent for 200
//! sessions of 20 turns with and without a minimum interval; and the recording call against its
//! floor, `serde_json::to_vec` of the same conversation, interleaved.
//!
//! Run with `cargo bench -p inkeep-analytics-bench --bench recorder`; the figures are printed.

// criterion_group! defines an undocumented public function.
#![allow(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use inkeep_analytics::types::CreateOpenAiConversation;
use inkeep_analytics::{Client, recorder::Recorder};

/// A local API stand-in that answers every write after `delay` and counts the bytes it received.
fn server(runtime: &tokio::runtime::Runtime, delay: Duration) -> (String, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(body.len() as u64, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            // The recorder counts any 200 as delivered, whatever the body.
            axum::Json(serde_json::json!({}))
        }
    });
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
            [127, 0, 0, 1],
            0,
        ))))
        .expect("bind a local port");
    let addr = listener.local_addr().expect("the bound address");
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), received)
}

fn client(url: &str) -> Client {
    Client::builder()
        .api_key("sk-bench")
        .base_url(url)
        .build()
        .expect("a client")
}

/// A benchmark session; its construction cannot fail for these ids.
fn conversation(s: usize, turns: usize) -> CreateOpenAiConversation {
    inkeep_analytics_bench::chat::conversation(s, turns).expect("a benchmark conversation")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn temp_spool(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("inkeep-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// How the benchmark's service hands a conversation to the recorder.
#[derive(Clone, Copy)]
enum Call {
    /// `record_conversation(conversation)`: the caller gives up its copy (the benchmark clones
    /// the session before the clock starts), and the call drops it.
    ByValue,
    /// `record_conversation_ref(&conversation)`: the caller keeps its history, as a chat does.
    ByReference,
}

/// Times one recording call per entry of `calls.order`, one by one.
fn time_calls(recorder: &Recorder, calls: &Calls, call: Call) -> Timed {
    let mut times = Vec::with_capacity(calls.order.len());
    let faults_before = minor_faults();
    for &index in &calls.order {
        let session = &calls.sessions[index];
        match call {
            Call::ByValue => {
                let record = session.clone();
                let started = Instant::now();
                let _ = recorder.record_conversation(record);
                times.push(started.elapsed());
            }
            Call::ByReference => {
                let started = Instant::now();
                let _ = recorder.record_conversation_ref(session);
                times.push(started.elapsed());
            }
        }
    }
    let faults = minor_faults() - faults_before;
    times.sort();
    Timed { times, faults }
}

/// The sorted times of a run of calls, and the page faults the process took meanwhile.
struct Timed {
    times: Vec<Duration>,
    faults: i64,
}

/// Minor page faults of the process so far: memory touched for the first time, one of the
/// things that makes a call slow now and then.
fn minor_faults() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|usage| usage.minor_page_faults())
        .unwrap_or(0)
}

fn summary(timed: &Timed) -> String {
    let times = &timed.times;
    format!(
        "p50 {:?}, p99 {:?}, max {:?}; {} page faults in {} calls",
        percentile(times, 0.5),
        percentile(times, 0.99),
        times[times.len() - 1],
        timed.faults,
        times.len()
    )
}

/// The live sessions of a run and the order in which they are recorded.
struct Calls {
    /// Each session's conversation, as the service holds it between turns.
    sessions: Vec<CreateOpenAiConversation>,
    /// Which session each call records.
    order: Vec<usize>,
}

/// 20,000 calls recording 10-turn conversations: `sessions_at_once` sessions at a time, each
/// recorded `rounds` times, then followed by as many new ones; sessions are numbered from
/// `first_session`. A call by reference reads the session as the service holds it, so a call
/// by value and one by reference read the same memory.
fn calls(first_session: usize, sessions_at_once: usize, rounds: usize) -> Calls {
    let groups = 20_000 / (sessions_at_once * rounds);
    let sessions = (0..groups * sessions_at_once)
        .map(|s| conversation(first_session + s, 10))
        .collect();
    let order = (0..20_000)
        .map(|n| n / (sessions_at_once * rounds) * sessions_at_once + n % sessions_at_once)
        .collect();
    Calls { sessions, order }
}

/// p50, p99 and max of 20,000 recording calls of 10-turn conversations (200 live sessions, each
/// call the whole conversation as a chat re-sends it) while every answer takes 200 ms:
/// - on a cold start, the recorder's first calls in a fresh process: every byte the queue holds
///   is memory the process touches for the first time;
/// - warm, as in a service that has been running: after a first pass over other sessions,
///   delivered, so that the queue reuses memory; 200 sessions, each recorded 100 times;
/// - warm with sessions coming and going: each session is recorded 10 times (one call in ten
///   starts a conversation), 200 at a time.
fn latency(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let (url, _) = server(&runtime, Duration::from_millis(200));
    let steady = calls(0, 200, 100);
    let warm_up = calls(1_000_000, 200, 100);
    let rolling = calls(2_000_000, 200, 10);
    for spool in [false, true] {
        let dir = temp_spool("latency");
        let mut builder = Recorder::builder(client(&url));
        if spool {
            builder = builder.spool(&dir);
        }
        let recorder = builder.build().expect("a recorder");
        let with = if spool {
            "with a spool"
        } else {
            "without a spool"
        };
        let cold = time_calls(&recorder, &steady, Call::ByValue);
        println!(
            "recording call, 10-turn conversation, server answering in 200 ms, {with}, cold start, by value: {}",
            summary(&cold)
        );
        for records in [&warm_up, &steady] {
            let _ = time_calls(&recorder, records, Call::ByValue);
            recorder.flush_blocking(Duration::from_secs(10));
        }
        for (call, how) in [
            (Call::ByValue, "by value"),
            (Call::ByReference, "by reference"),
        ] {
            let warm = time_calls(&recorder, &steady, call);
            println!(
                "recording call, 10-turn conversation, server answering in 200 ms, {with}, warm, {how}: {}",
                summary(&warm)
            );
            recorder.flush_blocking(Duration::from_secs(10));
            let coming_and_going = time_calls(&recorder, &rolling, call);
            println!(
                "recording call, 10-turn conversation, server answering in 200 ms, {with}, warm, a new session every 10 calls, {how}: {}",
                summary(&coming_and_going)
            );
            recorder.flush_blocking(Duration::from_secs(10));
        }
        let name = if spool {
            "record_conversation (10 turns, slow server, spool)"
        } else {
            "record_conversation (10 turns, slow server)"
        };
        let mut n = 0usize;
        c.bench_function(name, |b| {
            b.iter_batched(
                || {
                    n += 1;
                    steady.sessions[n % 200].clone()
                },
                |record| recorder.record_conversation(record),
                criterion::BatchSize::SmallInput,
            )
        });
        recorder.shutdown_blocking(Duration::from_millis(100));
        drop(recorder);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The issue-20 target: p99 of a recording call of a 10-turn conversation (200 live sessions,
/// the API down) against the p99 of `serde_json::to_vec` of the same conversation, the floor of
/// any recorder that sends JSON, timed in the same process and interleaved call by call, so that
/// both meet the same machine: without a spool (target: at most 2x) and with one (at most 5x).
fn recording_call_against_its_floor(c: &mut Criterion) {
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    // Interleaved with the recorder's calls after a warm-up pass, 200 sessions, each 100 times.
    let steady = calls(3_000_000, 200, 100);
    for spool in [false, true] {
        let dir = temp_spool("floor");
        let mut builder = Recorder::builder(client(&down));
        if spool {
            builder = builder.spool(&dir);
        }
        let recorder = builder.build().expect("a recorder");
        let with = if spool {
            "with a spool"
        } else {
            "without a spool"
        };
        for (call, how) in [
            (Call::ByReference, "by reference"),
            (Call::ByValue, "by value"),
        ] {
            // A first pass fills the queue's 200 slots and warms the caches of both.
            for _ in 0..2 {
                let mut floor = Vec::with_capacity(steady.order.len());
                let mut recording = Vec::with_capacity(steady.order.len());
                for &index in &steady.order {
                    let session = &steady.sessions[index];
                    let started = Instant::now();
                    let body = serde_json::to_vec(session);
                    floor.push(started.elapsed());
                    drop(std::hint::black_box(body));
                    let elapsed = match call {
                        Call::ByReference => {
                            let started = Instant::now();
                            let _ = std::hint::black_box(recorder.record_conversation_ref(session));
                            started.elapsed()
                        }
                        Call::ByValue => {
                            let record = session.clone();
                            let started = Instant::now();
                            let _ = std::hint::black_box(recorder.record_conversation(record));
                            started.elapsed()
                        }
                    };
                    recording.push(elapsed);
                }
                floor.sort();
                recording.sort();
                let (floor99, recording99) =
                    (percentile(&floor, 0.99), percentile(&recording, 0.99));
                println!(
                    "floor, API down, {with}, {how}: serde_json::to_vec p50 {:?} p99 {floor99:?}; recording call p50 {:?} p99 {recording99:?}; p99 ratio {:.2}x",
                    percentile(&floor, 0.5),
                    percentile(&recording, 0.5),
                    recording99.as_secs_f64() / floor99.as_secs_f64().max(1e-9)
                );
            }
        }
        let name = if spool {
            "record_conversation_ref (10 turns, API down, spool)"
        } else {
            "record_conversation_ref (10 turns, API down)"
        };
        let mut n = 0usize;
        c.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                recorder.record_conversation_ref(&steady.sessions[n % 200])
            })
        });
        recorder.shutdown_blocking(Duration::from_millis(50));
        drop(recorder);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let mut n = 0usize;
    c.bench_function("serde_json::to_vec (10 turns)", |b| {
        b.iter(|| {
            n += 1;
            serde_json::to_vec(&steady.sessions[n % 200])
        })
    });
}

fn max_rss_kib() -> i64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|usage| usage.max_rss())
        .unwrap_or(0)
}

/// Peak memory while 100,000 distinct conversations are recorded with the API down, with the
/// default bounds (10,000 records, 64 MiB): what is over the bound is dropped and counted.
fn memory_with_the_api_down(_c: &mut Criterion) {
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}", listener.local_addr().expect("addr"))
    };
    let template: Vec<_> = (0..100).map(|s| conversation(s, 3)).collect();
    let before = max_rss_kib();
    let recorder = Recorder::builder(client(&down))
        .build()
        .expect("a recorder");
    for n in 0..100_000 {
        let mut record = template[n % 100].clone();
        record = record.with_id(format!("down-{n}")).expect("an id");
        let _ = recorder.record_conversation(record);
    }
    let stats = recorder.stats();
    println!(
        "API down, 100,000 records (3 turns, {} bytes each as JSON): peak RSS grew by {} KiB (from {} KiB); held {} records ({} bytes), dropped {}",
        stats.pending_bytes / stats.pending.max(1),
        max_rss_kib() - before,
        before,
        stats.pending,
        stats.pending_bytes,
        stats.dropped()
    );
    recorder.shutdown_blocking(Duration::from_millis(50));
}

/// Bytes sent for 200 sessions of 20 turns, a turn of every session every 20 ms, with and
/// without a minimum interval of 200 ms per conversation.
fn bytes_sent(_c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    for interval in [Duration::ZERO, Duration::from_millis(200)] {
        let (url, received) = server(&runtime, Duration::from_millis(5));
        let recorder = Recorder::builder(client(&url))
            .min_interval(interval)
            .build()
            .expect("a recorder");
        for turn in 1..=20 {
            for s in 0..200 {
                let _ = recorder.record_conversation(conversation(s, turn));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let report = recorder.shutdown_blocking(Duration::from_secs(60));
        let naive: u64 = (1..=20)
            .map(|turn| {
                serde_json::to_vec(&conversation(0, turn))
                    .map(|b| b.len() as u64)
                    .unwrap_or(0)
            })
            .sum::<u64>()
            * 200;
        println!(
            "200 sessions x 20 turns, min interval {interval:?}: {} bytes sent in {} writes (every turn sent whole: {naive} bytes); complete {}",
            received.load(Ordering::Relaxed),
            report.delivered,
            report.complete
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = memory_with_the_api_down, recording_call_against_its_floor, latency, bytes_sent
}
criterion_main!(benches);
