//! The recorder against the sandbox: a simulated live service through faults and an outage, the
//! deadlines of flush and shutdown against a server that never answers, backoff, dead letters and hooks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use inkeep_analytics::query::{self, Filter, Selection};
use inkeep_analytics::types::{
    CreateOpenAiConversation, CreateOpenAiMessage, EventsViewField, FeedbackInput, InsertEvent,
};
use inkeep_analytics::{
    Client,
    config::RetryPolicy,
    recorder::{DeadLetterReason, Outcome, Record, RecordKind, Recorder},
};
use inkeep_analytics_sandbox::{FaultConfig, Sandbox, SandboxConfig};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A small deterministic generator, so that a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

async fn sandbox() -> Result<Sandbox, Box<dyn std::error::Error>> {
    Ok(Sandbox::start_with(SandboxConfig {
        conversations: 5,
        ..SandboxConfig::default()
    })
    .await?)
}

/// A client with a quick backoff, so that faults cost the tests little time.
fn client(sandbox: &Sandbox) -> Result<Client, inkeep_analytics::Error> {
    Client::builder()
        .api_key(sandbox.api_key())
        .base_url(sandbox.base_url())
        .retry_policy(RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(200),
            ..RetryPolicy::default()
        })
        .timeout(Duration::from_secs(5))
        .build()
}

/// The conversation of session `session` after `turns` turns: a user and an assistant message per turn.
fn session(
    session: usize,
    turns: usize,
) -> Result<CreateOpenAiConversation, inkeep_analytics::Error> {
    let mut messages = Vec::new();
    for turn in 1..=turns {
        messages.push(
            CreateOpenAiMessage::user(format!("question {turn} of session {session}"))
                .with_id(format!("sim{session}-u{turn}"))?,
        );
        messages.push(
            CreateOpenAiMessage::assistant(format!("answer {turn}"))
                .with_id(format!("sim{session}-a{turn}"))?,
        );
    }
    CreateOpenAiConversation::new(messages).with_id(format!("sim{session}"))
}

fn faulty() -> FaultConfig {
    FaultConfig {
        rate_limited: 0.03,
        retry_after_secs: 1,
        unavailable: 0.04,
        bad_gateway: 0.04,
        dropped_connection: 0.04,
        truncated_body: 0.04,
        delayed: 0.1,
        delay: Duration::from_millis(30),
        rate_limit: None,
        states_rate_limit: false,
        outage: None,
    }
}

/// 200 interleaved sessions of 2 to 6 turns, each with feedback and two events, recorded through
/// faults and a 1.5 s outage: the server ends up with the last version of every conversation and
/// each feedback item and event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_service_through_faults_and_an_outage_ends_with_the_latest_of_everything()
-> TestResult {
    live_service(|builder| builder).await.map(drop)
}

/// The same service with a spool and a queue of 20 records: the outage spills most records to
/// the spool, which reads them back (without its lock) while the service keeps recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_service_with_a_spool_and_a_small_queue_ends_with_the_latest_of_everything()
-> TestResult {
    let dir = std::env::temp_dir().join(format!("inkeep-it-spool-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = live_service(|builder| builder.spool(&dir).max_pending_records(20)).await;
    let _ = std::fs::remove_dir_all(&dir);
    let stats = result?;
    assert!(stats.spilled > 100, "the spool was read back: {stats:?}");
    Ok(())
}

/// 200 chat sessions recorded turn by turn, with feedback and events, through faults and an
/// outage of 1.5 s; afterwards the sandbox holds the last version of every conversation, and
/// every feedback and event once.
async fn live_service(
    configure: impl FnOnce(
        inkeep_analytics::recorder::RecorderBuilder,
    ) -> inkeep_analytics::recorder::RecorderBuilder,
) -> Result<inkeep_analytics::recorder::RecorderStats, Box<dyn std::error::Error>> {
    const SESSIONS: usize = 200;
    let sandbox = sandbox().await?;
    let recorder = configure(Recorder::builder(client(&sandbox)?).max_in_flight(8)).build()?;
    sandbox.set_faults(faulty())?;
    let mut rng = Lcg(11);
    let turns: Vec<usize> = (0..SESSIONS).map(|_| 2 + rng.below(5) as usize).collect();
    let mut done = vec![0usize; SESSIONS];
    let mut feedback_ids = Vec::new();
    let mut event_ids = Vec::new();
    let total: usize = turns.iter().sum();
    let mut step = 0;
    while step < total {
        let s = rng.below(SESSIONS as u64) as usize;
        if done[s] == turns[s] {
            continue;
        }
        done[s] += 1;
        step += 1;
        if step == total / 2 {
            sandbox.set_faults(FaultConfig {
                unavailable: 1.0,
                ..FaultConfig::none()
            })?;
            let sandbox_faults = faulty();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            sandbox.set_faults(sandbox_faults)?;
        }
        let started = Instant::now();
        // Half the sessions are recorded by reference, as a chat that keeps its history does.
        let conversation = session(s, done[s])?;
        if s.is_multiple_of(2) {
            recorder.record_conversation_ref(&conversation)?;
        } else {
            recorder.record_conversation(conversation)?;
        }
        // A call that waited for the network would wait for the outage (1.5 s); the bound
        // leaves a loaded CI machine room for a commit to the spool on a busy disk.
        assert!(
            started.elapsed() < Duration::from_millis(1400),
            "recording does not wait: {:?}",
            started.elapsed()
        );
        if done[s] == 2 {
            // Feedback and an event on a message that is recorded but maybe not delivered yet.
            let fb = recorder.record_feedback(FeedbackInput::positive(format!("sim{s}-a1")))?;
            feedback_ids.push(fb.id);
            let ev = recorder
                .record_event(InsertEvent::message(format!("sim{s}-a2"), "recorder_sim"))?;
            event_ids.push(ev.id);
        }
        if done[s] == turns[s] {
            let ev = recorder
                .record_event(InsertEvent::conversation(format!("sim{s}"), "recorder_sim"))?;
            event_ids.push(ev.id);
        }
        if step % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let report = recorder.shutdown(Duration::from_secs(120)).await;
    assert!(report.complete, "{report:?} {:?}", recorder.stats());
    assert_eq!(report.dead_lettered, 0, "{:?}", recorder.stats());
    assert_eq!(report.dropped, 0);
    let stats = recorder.stats();
    assert!(stats.retried > 0, "the faults were met: {stats:?}");
    assert!(
        recorder
            .record_event(InsertEvent::search("q", "x"))
            .is_err(),
        "closed after shutdown"
    );

    sandbox.set_faults(FaultConfig::none())?;
    let reader = client(&sandbox)?;
    for (s, turns) in turns.iter().enumerate() {
        let stored = reader.get_conversation(&format!("sim{s}")).await?;
        let ids: Vec<&str> = stored.messages().iter().filter_map(|m| m.id()).collect();
        let expected: Vec<String> = (1..=*turns)
            .flat_map(|t| [format!("sim{s}-u{t}"), format!("sim{s}-a{t}")])
            .collect();
        assert_eq!(ids, expected, "session {s} is stored at its last version");
    }
    let feedback: Vec<_> = reader.list_feedback().items().try_collect().await?;
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for item in &feedback {
        if item.feedback.message_id.starts_with("sim") {
            *per_id.entry(item.feedback.id.as_str()).or_default() += 1;
        }
    }
    assert_eq!(per_id.len(), feedback_ids.len());
    for id in &feedback_ids {
        assert_eq!(
            per_id.get(id.as_str()),
            Some(&1),
            "feedback {id} is stored once"
        );
    }
    let rows = reader
        .query_events(
            query::events()
                .select(Selection::field(EventsViewField::Id))
                .filter(Filter::eq(EventsViewField::Type, "recorder_sim")),
        )
        .await?;
    let mut events: HashMap<String, usize> = HashMap::new();
    for row in rows.rows() {
        if let Some(id) = row.get_str("id") {
            *events.entry(id.to_string()).or_default() += 1;
        }
    }
    assert_eq!(events.len(), event_ids.len());
    for id in &event_ids {
        assert_eq!(events.get(id), Some(&1), "event {id} is stored once");
    }
    Ok(stats)
}

/// A server that accepts connections and reads requests but never answers, until the test ends.
fn silent_server() -> Result<(String, std::thread::JoinHandle<()>), std::io::Error> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    let thread = std::thread::spawn(move || {
        let started = Instant::now();
        let mut held = Vec::new();
        // It stops by itself, long after every deadline under test.
        while started.elapsed() < Duration::from_secs(20) {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Ok((url, thread))
}

fn silent_recorder(url: &str) -> Result<Recorder, inkeep_analytics::Error> {
    let client = Client::builder()
        .api_key("sk-test")
        .base_url(url)
        .timeout(Duration::from_secs(60))
        .build()?;
    Recorder::builder(client).build()
}

fn one_conversation(id: &str) -> Result<CreateOpenAiConversation, inkeep_analytics::Error> {
    CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi")]).with_id(id)
}

async fn deadlines_hold(recorder: Recorder) -> TestResult {
    for n in 0..20 {
        recorder.record_conversation(one_conversation(&format!("c{n}"))?)?;
    }
    let started = Instant::now();
    let report = recorder.flush(Duration::from_millis(300)).await;
    let took = started.elapsed();
    assert!(!report.complete && report.pending == 20, "{report:?}");
    assert!(
        // A flush that did not keep its deadline would wait for the silent server (60 s).
        took >= Duration::from_millis(290) && took < Duration::from_secs(30),
        "flush took {took:?}"
    );
    let started = Instant::now();
    let report = recorder.shutdown(Duration::from_millis(300)).await;
    let took = started.elapsed();
    assert!(
        !report.complete && report.pending == 20 && report.delivered == 0,
        "{report:?}"
    );
    assert!(took < Duration::from_secs(30), "shutdown took {took:?}");
    Ok(())
}

#[tokio::test(flavor = "current_thread")]
async fn flush_and_shutdown_meet_their_deadline_on_a_current_thread_runtime() -> TestResult {
    let (url, _server) = silent_server()?;
    deadlines_hold(silent_recorder(&url)?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_and_shutdown_meet_their_deadline_on_a_multi_thread_runtime() -> TestResult {
    let (url, _server) = silent_server()?;
    deadlines_hold(silent_recorder(&url)?).await
}

#[test]
fn recording_and_shutting_down_work_without_a_runtime() -> TestResult {
    let (url, _server) = silent_server()?;
    let recorder = silent_recorder(&url)?;
    let recorded = recorder.record_conversation(one_conversation("sync")?)?;
    assert_eq!(recorded.outcome, Outcome::Queued);
    let started = Instant::now();
    let report = recorder.shutdown_blocking(Duration::from_millis(200));
    assert!(!report.complete && report.pending == 1, "{report:?}");
    // Far above the 200 ms deadline, far below the silent server's 60 s.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        recorder
            .record_conversation(one_conversation("late")?)
            .is_err()
    );
    Ok(())
}

/// A 429 with `Retry-After` pauses every write, not one: while it lasts, nothing else is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_pauses_the_whole_recorder() -> TestResult {
    let sandbox = sandbox().await?;
    sandbox.set_faults(FaultConfig {
        rate_limited: 1.0,
        retry_after_secs: 1,
        ..FaultConfig::none()
    })?;
    let client = Client::builder()
        .api_key(sandbox.api_key())
        .base_url(sandbox.base_url())
        .retry_policy(RetryPolicy {
            max_backoff: Duration::from_secs(5),
            ..RetryPolicy::default()
        })
        .build()?;
    let recorder = Recorder::builder(client).max_in_flight(2).build()?;
    for n in 0..10 {
        recorder.record_conversation(one_conversation(&format!("rl{n}"))?)?;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stats = recorder.stats();
    assert!(
        stats.retried <= 2,
        "only the first writes met the 429: {stats:?}"
    );
    sandbox.set_faults(FaultConfig::none())?;
    let report = recorder.flush(Duration::from_secs(10)).await;
    assert!(report.complete && report.delivered == 10, "{report:?}");
    Ok(())
}

/// Refused records go to the dead letters, are counted, and hold nothing else back; a
/// `before_send` hook redacts, drops, and fails closed when it panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_and_before_send() -> TestResult {
    let sandbox = sandbox().await?;
    let letters = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&letters);
    let recorder = Recorder::builder(client(&sandbox)?)
        .dead_letter(move |letter| {
            if let Ok(mut letters) = kept.lock() {
                letters.push((letter.id, letter.error.status().map(|s| s.as_u16())));
            }
        })
        .before_send(|record| match record {
            Record::Conversation(inkeep_analytics::types::CreateConversation::OpenAi(mut c)) => {
                match c.id.as_deref().map(String::as_str) {
                    Some("drop-me") => None,
                    Some("panic-me") => panic!("a hook that fails"),
                    _ => {
                        c.tags = Some(vec!["redacted".into()]);
                        Some(Record::Conversation(c.into()))
                    }
                }
            }
            other => Some(other),
        })
        .build()?;
    let refused = recorder.record_feedback(FeedbackInput::negative("no-such-message"))?;
    recorder.record_conversation(one_conversation("kept")?)?;
    recorder.record_conversation(one_conversation("drop-me")?)?;
    recorder.record_conversation(one_conversation("panic-me")?)?;
    assert!(
        recorder
            .record_conversation(CreateOpenAiConversation::new(vec![]))
            .is_err(),
        "a conversation without messages is refused at once"
    );
    let report = recorder.flush(Duration::from_secs(10)).await;
    assert!(report.complete, "{report:?}");
    assert_eq!(
        (report.delivered, report.dead_lettered, report.dropped),
        (1, 1, 2),
        "{report:?}"
    );
    let letters = letters.lock().map(|l| l.clone()).unwrap_or_default();
    assert_eq!(letters, vec![(refused.id, Some(422))]);
    let reader = client(&sandbox)?;
    let kept = reader.get_conversation("kept").await?;
    let Some(inkeep_analytics::types::Conversation::OpenAi(kept)) = Some(kept) else {
        panic!("an openai conversation");
    };
    assert_eq!(kept.tags, Some(vec!["redacted".to_string()]));
    assert!(reader.get_conversation("drop-me").await.is_err());
    assert!(reader.get_conversation("panic-me").await.is_err());
    Ok(())
}

/// `before_send` and `dead_letter` take closures that are not `RefUnwindSafe`: here each captures
/// a user's callback behind `Arc<dyn Fn + Send + Sync>`, which may hold interior mutability (a
/// `Cell` or `RefCell` cannot be captured itself, as the worker's thread needs `Sync`). The
/// worker catches their panics itself; they are called as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_need_not_be_unwind_safe() -> TestResult {
    let writes = Writes::default();
    let url = stand_in_api(writes.clone()).await?;
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let kept = Arc::clone(&seen);
    let note: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |what| {
        if let Ok(mut seen) = kept.lock() {
            seen.push(what);
        }
    });
    let on_send = Arc::clone(&note);
    let on_letter = Arc::clone(&note);
    let recorder = Recorder::builder(stand_in_client(&url, Duration::from_millis(10))?)
        .max_attempts(1)
        .before_send(move |record| {
            on_send("send".to_owned());
            Some(record)
        })
        .dead_letter(move |letter| on_letter(format!("letter {}", letter.id)))
        .build()?;
    recorder.record_conversation(one_conversation("unwind-ok")?)?;
    recorder.record_conversation(one_conversation("poison-unwind")?)?;
    let report = recorder.shutdown(Duration::from_secs(60)).await;
    assert_eq!(
        (report.delivered, report.dead_lettered),
        (1, 1),
        "{report:?}"
    );
    let mut seen = seen.lock().map(|s| s.clone()).unwrap_or_default();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "letter poison-unwind".to_owned(),
            "send".to_owned(),
            "send".to_owned()
        ]
    );
    Ok(())
}

/// Sampling keeps the same conversations in every recorder, and their feedback and events follow.
#[test]
fn sampling_is_deterministic_by_conversation_and_its_feedback_follows() -> TestResult {
    let (url, _server) = silent_server()?;
    let decisions =
        |recorder: &Recorder| -> Result<Vec<(bool, bool, bool)>, inkeep_analytics::Error> {
            let mut out = Vec::new();
            for n in 0..200 {
                let conversation = CreateOpenAiConversation::new(vec![
                    CreateOpenAiMessage::user("q").with_id(format!("sm{n}-u"))?,
                ])
                .with_id(format!("sm{n}"))?;
                let c = recorder.record_conversation(conversation)?.outcome != Outcome::SampledOut;
                let f = recorder
                    .record_feedback(FeedbackInput::positive(format!("sm{n}-u")))?
                    .outcome
                    != Outcome::SampledOut;
                let e = recorder
                    .record_event(InsertEvent::conversation(format!("sm{n}"), "x"))?
                    .outcome
                    != Outcome::SampledOut;
                out.push((c, f, e));
            }
            Ok(out)
        };
    let build = || -> Result<Recorder, inkeep_analytics::Error> {
        let client = Client::builder()
            .api_key("sk-test")
            .base_url(&url)
            .build()?;
        Recorder::builder(client).sample_rate(0.5).build()
    };
    let first = build()?;
    let one = decisions(&first)?;
    let second = build()?;
    let two = decisions(&second)?;
    assert_eq!(
        one, two,
        "the same conversations are kept in every recorder"
    );
    assert!(
        one.iter().all(|(c, f, e)| c == f && c == e),
        "feedback and events follow"
    );
    let kept = one.iter().filter(|(c, _, _)| *c).count();
    assert!((60..=140).contains(&kept), "about half are kept: {kept}");
    assert_eq!(first.stats().sampled_out, 3 * (200 - kept as u64));
    first.shutdown_blocking(Duration::from_millis(10));
    second.shutdown_blocking(Duration::from_millis(10));
    Ok(())
}

/// The delivery check reads conversations back, finds what is missing or stale, and sends it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_check_resends_what_is_missing_or_stale() -> TestResult {
    let sandbox = sandbox().await?;
    let client = client(&sandbox)?;
    let recorder = Recorder::builder(client.clone()).build()?;
    let v1 = session(1000, 1)?;
    let v2 = session(1000, 2)?;
    let other = session(1001, 1)?;
    let absent = session(1002, 2)?;
    client.log_conversation(v1).await?;
    client.log_conversation(other.clone()).await?;
    let check = recorder
        .check_delivery([
            v2.clone().into(),
            other.clone().into(),
            absent.clone().into(),
        ])
        .await?;
    assert_eq!(check.delivered, vec!["sim1001".to_string()]);
    assert_eq!(check.stale, vec!["sim1000".to_string()]);
    assert_eq!(check.missing, vec!["sim1002".to_string()]);
    assert!(recorder.flush(Duration::from_secs(10)).await.complete);
    let again = recorder
        .check_delivery([v2.into(), other.into(), absent.into()])
        .await?;
    assert!(
        again.is_complete() && again.delivered.len() == 3,
        "{again:?}"
    );
    Ok(())
}

/// What the stand-in API of the delivery tests received: each write's path, id and answer.
#[derive(Clone, Default)]
struct Writes {
    log: Arc<Mutex<Vec<(String, String, u16)>>>,
    /// Writes are held until this says `true`.
    open: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Writes {
    fn log(&self) -> Vec<(String, String, u16)> {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }
}

/// Answers a write 500 when its id starts with `poison`, else stores it (200 with the body).
async fn stand_in_write(
    axum::extract::State(writes): axum::extract::State<Writes>,
    uri: axum::http::Uri,
    body: bytes::Bytes,
) -> (axum::http::StatusCode, String) {
    if let Some(mut open) = writes.open.clone() {
        let _ = open.wait_for(|open| *open).await;
    }
    let id = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.get("id")?.as_str().map(str::to_owned))
        .unwrap_or_default();
    let status = if id.starts_with("poison") { 500 } else { 200 };
    if let Ok(mut log) = writes.log.lock() {
        log.push((uri.path().to_owned(), id, status));
    }
    let code = axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let answer = if status == 200 {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        r#"{"title":"Internal Server Error","status":500,"detail":"poisoned"}"#.to_owned()
    };
    (code, answer)
}

/// Starts the stand-in API on 127.0.0.1; it stops with the test's runtime.
async fn stand_in_api(writes: Writes) -> Result<String, Box<dyn std::error::Error>> {
    let app = axum::Router::new()
        .route("/conversations", axum::routing::post(stand_in_write))
        .route("/feedback", axum::routing::post(stand_in_write))
        .route("/events", axum::routing::post(stand_in_write))
        .with_state(writes);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

fn stand_in_client(url: &str, backoff: Duration) -> Result<Client, inkeep_analytics::Error> {
    Client::builder()
        .api_key("sk-test")
        .base_url(url)
        .retry_policy(RetryPolicy {
            initial_backoff: backoff,
            max_backoff: backoff * 4,
            ..RetryPolicy::default()
        })
        .timeout(Duration::from_secs(30))
        .build()
}

/// A conversation the API always answers with 500 is retried on its own, with a backoff of its
/// own, while every other record goes through; past its retry budget it is dead-lettered with
/// the feedback and event that depend on it, which are never sent to a certain 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_always_answered_500_holds_back_no_other_and_ends_dead_lettered_with_its_dependents()
-> TestResult {
    let writes = Writes::default();
    let url = stand_in_api(writes.clone()).await?;
    let letters = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&letters);
    // Its own backoff is drawn from [0, 0.5 s), then [0, 1 s), [0, 2 s) and [0, 2 s): four
    // pauses that all fall under a tenth of a second have odds of about one in 60,000.
    let recorder = Recorder::builder(stand_in_client(&url, Duration::from_millis(500))?)
        .max_attempts(5)
        .dead_letter(move |letter| {
            if let Ok(mut letters) = kept.lock() {
                letters.push((letter.id, letter.reason));
            }
        })
        .build()?;
    let poison =
        CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi").with_id("poison-m1")?])
            .with_id("poison")?;
    recorder.record_conversation(poison)?;
    let feedback = recorder.record_feedback(FeedbackInput::negative("poison-m1"))?;
    let event = recorder.record_event(InsertEvent::conversation("poison", "x"))?;
    const OTHERS: usize = 40;
    for n in 0..OTHERS {
        recorder.record_conversation(one_conversation(&format!("ok{n}"))?)?;
    }
    let report = recorder.flush(Duration::from_secs(60)).await;
    assert!(report.complete, "{report:?}");
    assert_eq!(
        (report.delivered, report.dead_lettered),
        (OTHERS as u64, 3),
        "{report:?}"
    );
    let log = writes.log();
    let poison_attempts: Vec<usize> = log
        .iter()
        .enumerate()
        .filter(|(_, (_, id, _))| id == "poison")
        .map(|(at, _)| at)
        .collect();
    assert_eq!(poison_attempts.len(), 5, "its budget: {log:?}");
    let last_other = log
        .iter()
        .rposition(|(_, id, status)| id.starts_with("ok") && *status == 200);
    assert!(
        last_other.is_some_and(|last| poison_attempts[4] > last),
        "every other record was delivered before the poison's last attempt: {log:?}"
    );
    assert!(
        log.iter().all(|(path, _, _)| path == "/conversations"),
        "its dependents were never sent: {log:?}"
    );
    let letters = letters.lock().map(|l| l.clone()).unwrap_or_default();
    let mut names: Vec<&str> = letters.iter().map(|(id, _)| id.as_str()).collect();
    names.sort_unstable();
    let mut expected = vec!["poison", feedback.id.as_str(), event.id.as_str()];
    expected.sort_unstable();
    assert_eq!(names, expected);
    for (id, reason) in &letters {
        match reason {
            DeadLetterReason::RetryBudget { attempts, .. } => {
                assert_eq!((id.as_str(), *attempts), ("poison", 5));
            }
            DeadLetterReason::Dependency { kind, id: on } => {
                assert_eq!((*kind, on.as_str()), (RecordKind::Conversation, "poison"));
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    let mut named: Vec<String> = report
        .dead_lettered_ids
        .iter()
        .map(ToString::to_string)
        .collect();
    named.sort_unstable();
    let mut expected = vec![
        "conversation poison".to_owned(),
        format!("feedback {}", feedback.id),
        format!("event {}", event.id),
    ];
    expected.sort_unstable();
    assert_eq!(named, expected);
    Ok(())
}

/// Feedback and an event recorded after their conversation was dead-lettered are dead-lettered
/// too, with its id as their reason, and never sent to a certain 422, while a conversation
/// stored meanwhile takes its event as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_recorded_after_its_conversation_was_dead_lettered_is_dead_lettered_too()
-> TestResult {
    let writes = Writes::default();
    let url = stand_in_api(writes.clone()).await?;
    let letters = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&letters);
    let recorder = Recorder::builder(stand_in_client(&url, Duration::from_millis(10))?)
        .max_attempts(1)
        .dead_letter(move |letter| {
            if let Ok(mut letters) = kept.lock() {
                letters.push((letter.id, letter.reason));
            }
        })
        .build()?;
    let poison = CreateOpenAiConversation::new(vec![
        CreateOpenAiMessage::user("hi").with_id("poison-late-m1")?,
    ])
    .with_id("poison-late")?;
    recorder.record_conversation(poison)?;
    let report = recorder.flush(Duration::from_secs(60)).await;
    assert_eq!(report.dead_lettered, 1, "{report:?}");

    let feedback = recorder.record_feedback(FeedbackInput::negative("poison-late-m1"))?;
    let event = recorder.record_event(InsertEvent::conversation("poison-late", "x"))?;
    let report = recorder.flush(Duration::from_secs(60)).await;
    assert!(report.complete, "{report:?}");
    assert_eq!(
        (report.delivered, report.dead_lettered),
        (0, 3),
        "{report:?}"
    );
    let log = writes.log();
    assert!(
        log.iter().all(|(path, _, _)| path == "/conversations"),
        "the late dependents were never sent: {log:?}"
    );
    let letters = letters.lock().map(|l| l.clone()).unwrap_or_default();
    for id in [&feedback.id, &event.id] {
        let reason = letters
            .iter()
            .find(|(letter, _)| letter == id)
            .map(|(_, reason)| reason.clone());
        assert_eq!(
            reason,
            Some(DeadLetterReason::Dependency {
                kind: RecordKind::Conversation,
                id: "poison-late".to_owned()
            }),
            "{letters:?}"
        );
    }

    let healed =
        CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("hi").with_id("healed-m1")?])
            .with_id("healed")?;
    recorder.record_conversation(healed)?;
    recorder.record_event(InsertEvent::conversation("healed", "x"))?;
    let report = recorder.shutdown(Duration::from_secs(60)).await;
    assert!(report.complete, "{report:?}");
    assert_eq!(
        (report.delivered, report.dead_lettered),
        (2, 3),
        "{report:?}"
    );
    Ok(())
}

/// A report names what is still pending, oldest first, and what was dropped.
#[test]
fn a_report_names_what_was_not_delivered() -> TestResult {
    let (url, _server) = silent_server()?;
    let client = Client::builder()
        .api_key("sk-test")
        .base_url(url)
        .timeout(Duration::from_secs(60))
        .build()?;
    let recorder = Recorder::builder(client).max_pending_records(2).build()?;
    recorder.record_conversation(one_conversation("first")?)?;
    let feedback = recorder.record_feedback(FeedbackInput::positive("elsewhere"))?;
    let dropped = recorder.record_conversation(one_conversation("third")?)?;
    assert_eq!(dropped.outcome, Outcome::DroppedQueueFull);
    let report = recorder.flush_blocking(Duration::from_millis(200));
    assert!(!report.complete && !report.all_delivered(), "{report:?}");
    let pending: Vec<String> = report.pending_ids.iter().map(ToString::to_string).collect();
    assert_eq!(
        pending,
        vec![
            "conversation first".to_owned(),
            format!("feedback {}", feedback.id)
        ]
    );
    let dropped: Vec<String> = report.dropped_ids.iter().map(ToString::to_string).collect();
    assert_eq!(dropped, vec!["conversation third"]);
    assert!(report.dead_lettered_ids.is_empty());
    let _ = recorder.shutdown_blocking(Duration::from_millis(50));
    Ok(())
}

/// The waiting calls wait for room in a full queue, take the record once a write frees some,
/// and, with no room by their deadline, drop it as the non-waiting calls do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_waiting_calls_wait_for_room_and_keep_their_deadline() -> TestResult {
    let (open, gate) = tokio::sync::watch::channel(false);
    let writes = Writes {
        open: Some(gate),
        ..Writes::default()
    };
    let url = stand_in_api(writes.clone()).await?;
    let recorder = Recorder::builder(stand_in_client(&url, Duration::from_millis(50))?)
        .max_pending_records(1)
        .build()?;
    let record = |id: &str| -> Result<Record, inkeep_analytics::Error> {
        Ok(Record::Conversation(one_conversation(id)?.into()))
    };
    assert_eq!(
        recorder.record(record("held")?)?.outcome,
        Outcome::Queued,
        "its write is held by the server"
    );
    let started = Instant::now();
    let late = recorder
        .record_when_room(record("async-late")?, Duration::from_millis(200))
        .await?;
    assert_eq!(late.outcome, Outcome::DroppedQueueFull);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let blocking = recorder.clone();
    let started = Instant::now();
    let late = tokio::task::spawn_blocking(move || {
        blocking.record_when_room_blocking(record("blocking-late")?, Duration::from_millis(200))
    })
    .await??;
    assert_eq!(late.outcome, Outcome::DroppedQueueFull);
    assert!(started.elapsed() >= Duration::from_millis(200));

    // Both wait with a long deadline; the server lets the held write through after a while.
    let waiting = recorder.clone();
    let blocked = tokio::task::spawn_blocking(move || {
        waiting.record_when_room_blocking(record("blocking")?, Duration::from_secs(60))
    });
    let awaited = recorder.record_when_room(record("async")?, Duration::from_secs(60));
    let release = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(writes.log().is_empty(), "nothing was answered yet");
        let _ = open.send(true);
    };
    let (awaited, ()) = tokio::join!(awaited, release);
    let blocked = blocked.await??;
    assert_eq!(
        (awaited?.outcome, blocked.outcome),
        (Outcome::Queued, Outcome::Queued)
    );
    let report = recorder.flush(Duration::from_secs(30)).await;
    assert!(report.complete, "{report:?}");
    assert_eq!((report.delivered, report.dropped), (3, 2), "{report:?}");
    let dropped: Vec<String> = report.dropped_ids.iter().map(ToString::to_string).collect();
    assert_eq!(
        dropped,
        vec!["conversation async-late", "conversation blocking-late"]
    );
    Ok(())
}

/// An API that cannot be reached is an outage, not a failure of each record: with a budget of
/// one attempt, nothing is dead-lettered while nothing listens, and everything stays pending.
#[test]
fn an_unreachable_api_costs_no_record_its_retry_budget() -> TestResult {
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("http://{}", listener.local_addr()?)
    };
    let recorder = Recorder::builder(stand_in_client(&down, Duration::from_millis(10))?)
        .max_attempts(1)
        .build()?;
    recorder.record_conversation(one_conversation("kept-1")?)?;
    recorder.record_conversation(one_conversation("kept-2")?)?;
    let report = recorder.flush_blocking(Duration::from_millis(500));
    assert!(
        !report.complete && report.pending == 2 && report.dead_lettered == 0,
        "{report:?}"
    );
    assert!(recorder.stats().retried >= 2, "{:?}", recorder.stats());
    let _ = recorder.shutdown_blocking(Duration::from_millis(50));
    Ok(())
}
