//! 20,000 recording calls of 10-turn conversations (200 live sessions) against an API that never
//! answers, so that every write stays in flight: prints the calls' p50 and p99, and is the program
//! to count a recording call's instructions with, which, unlike times, any machine reproduces:
//!
//! ```sh
//! cargo build --release -p inkeep-analytics-bench --example recording_call
//! valgrind --tool=callgrind --toggle-collect='recording_call::call*' target/release/examples/recording_call [--spool] [--by-reference]
//! ```
//!
//! The total divided by 20,000 is the instructions of one call: `record_conversation` with a copy
//! the call drops, or with `--by-reference`, `record_conversation_ref` on the session it keeps.

use std::time::{Duration, Instant};

use inkeep_analytics::types::CreateOpenAiConversation;
use inkeep_analytics::{Client, recorder::Recorder};
use inkeep_analytics_bench::chat::conversation;

/// One recording call, kept out of line so that callgrind can count it alone.
#[inline(never)]
fn call(recorder: &Recorder, record: CreateOpenAiConversation) {
    let _ = std::hint::black_box(recorder.record_conversation(record));
}

/// One recording call by reference, kept out of line as [`call`] is.
#[inline(never)]
fn call_by_reference(recorder: &Recorder, record: &CreateOpenAiConversation) {
    let _ = std::hint::black_box(recorder.record_conversation_ref(record));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Runtime::new()?;
    let _entered = runtime.enter();
    // Accepts connections (the kernel does) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let client = Client::builder()
        .api_key("sk-bench")
        .base_url(format!("http://{}", silent.local_addr()?))
        .build()?;
    let mut builder = Recorder::builder(client);
    let spool = std::env::temp_dir().join(format!("recording-call-{}", std::process::id()));
    if std::env::args().any(|arg| arg == "--spool") {
        builder = builder.spool(&spool);
    }
    let recorder = builder.build()?;
    let by_reference = std::env::args().any(|arg| arg == "--by-reference");
    let conversations: Vec<_> = (0..200)
        .map(|s| conversation(s, 10))
        .collect::<inkeep_analytics::Result<_>>()?;
    let mut times = Vec::with_capacity(20_000);
    for n in 0..20_000 {
        let session = &conversations[n % 200];
        if by_reference {
            let started = Instant::now();
            call_by_reference(&recorder, session);
            times.push(started.elapsed());
        } else {
            let record = session.clone();
            let started = Instant::now();
            call(&recorder, record);
            times.push(started.elapsed());
        }
    }
    times.sort();
    println!(
        "p50 {:?}, p99 {:?}, max {:?}",
        times[10_000],
        times[19_800],
        times[times.len() - 1]
    );
    recorder.shutdown_blocking(Duration::from_millis(50));
    let _ = std::fs::remove_dir_all(&spool);
    Ok(())
}
