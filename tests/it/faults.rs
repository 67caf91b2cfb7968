//! Fault tests, end to end on loopback: exports and writes through a sandbox of the API that
//! fails 30% of requests in every way it can, and client errors that must fail fast.
//!
//! The sandbox injects `429` with `Retry-After`, `503` with an HTML page, `502` with an empty
//! body, dropped connections, truncated bodies and slow answers. Every record must still arrive
//! exactly once, as the same sandbox serves it with its faults turned off, and every write must
//! be stored exactly once. A `401`, `403`, `404` or `422` must come back at once, from a single
//! request, with its request id. Each test runs under a time limit, and every sandbox listens on
//! 127.0.0.1 and stops when the test drops it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use inkeep_analytics::query::{self, Filter};
use inkeep_analytics::types::{
    Conversation, ConversationsViewField, CreateOpenAiConversation, CreateOpenAiMessage,
    FeedbackInput,
};
use inkeep_analytics::{Client, Error, config::RetryPolicy, listing::FeedbackItem};
use inkeep_analytics_sandbox::{FaultConfig, Sandbox, SandboxConfig};
use serde_json::Value;

/// The seed of every sandbox here; the fault draws come from it too.
const SEED: u64 = 20_250;

/// How many conversations the export tests page through.
const EXPORTED_CONVERSATIONS: usize = 5_000;

/// How many conversations, and how many feedback items, the write tests log.
const LOGGED: usize = 1_000;

/// How many writes are in flight at once in the write tests.
const CONCURRENT_WRITES: usize = 8;

/// The longest a test may take; the whole module takes a fraction of it.
const TIME_LIMIT: Duration = Duration::from_secs(40);

/// The longest a client error may take to come back.
const FAST: Duration = Duration::from_secs(1);

/// 30% of requests meet a fault, split evenly over the six kinds.
///
/// The five kinds that answer in place of the API exclude each other and take 5% each; a slow
/// answer is drawn on its own, with 1/15, so that 1 - 0.75 * 14/15 = 0.30 of requests meet at
/// least one fault. `Retry-After: 0` and a 20 ms delay keep the tests fast.
fn thirty_percent_faults() -> FaultConfig {
    FaultConfig {
        rate_limited: 0.05,
        retry_after_secs: 0,
        unavailable: 0.05,
        bad_gateway: 0.05,
        dropped_connection: 0.05,
        truncated_body: 0.05,
        delayed: 1.0 / 15.0,
        delay: Duration::from_millis(20),
        rate_limit: None,
        states_rate_limit: false,
        outage: None,
    }
}

/// Ten retries with short backoffs: a request fails for good only after eleven failures in a
/// row, which the 25% of requests that fail (a slow answer only delays) make about once in four
/// million requests.
fn patient_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 10,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

/// Runs a test body under [`TIME_LIMIT`], failing the test when it takes longer.
async fn within_time_limit(test: impl Future<Output = ()>) {
    let started = Instant::now();
    if tokio::time::timeout(TIME_LIMIT, test).await.is_err() {
        panic!(
            "the test did not finish within {TIME_LIMIT:?} (stopped after {:?})",
            started.elapsed()
        );
    }
}

/// The value of an SDK call the test needs to succeed.
#[track_caller]
fn ok<T>(result: Result<T, Error>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what}: {error}"),
    }
}

/// A sandbox with [`SEED`], `conversations` and `faults`, on 127.0.0.1.
async fn start_sandbox(conversations: usize, faults: FaultConfig) -> Sandbox {
    let config = SandboxConfig {
        seed: SEED,
        conversations,
        faults,
        ..SandboxConfig::default()
    };
    match Sandbox::start_with(config).await {
        Ok(sandbox) => sandbox,
        Err(error) => panic!("cannot start a sandbox: {error}"),
    }
}

/// A client of `sandbox` with `key` and `policy`, and a time limit per request.
fn client_for(sandbox: &Sandbox, key: &str, policy: RetryPolicy) -> Client {
    ok(
        Client::builder()
            .api_key(key)
            .base_url(sandbox.base_url())
            .retry_policy(policy)
            .timeout(Duration::from_secs(10))
            .build(),
        "build a client",
    )
}

/// Turns the sandbox's faults off.
#[track_caller]
fn quiet(sandbox: &Sandbox) {
    if let Err(error) = sandbox.set_faults(FaultConfig::none()) {
        panic!("cannot turn the faults off: {error}");
    }
}

/// The retries the SDK logged while a test ran, by what went wrong.
///
/// The SDK logs every retry at `warn` with its reason; counting them shows that the faults were
/// met and survived, not merely absent. The subscriber is the test thread's default, and a
/// `#[tokio::test]` runs the client and the sandbox on that one thread.
#[derive(Clone, Default)]
struct Retries(Arc<Mutex<BTreeMap<String, usize>>>);

impl Retries {
    /// Counts the retries of this thread until the guard is dropped.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    /// The retries so far, by kind.
    fn counts(&self) -> BTreeMap<String, usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The message and reason of a retry event.
#[derive(Default)]
struct RetryEvent {
    message: String,
    reason: String,
}

impl tracing::field::Visit for RetryEvent {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "reason" => self.reason = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Retries {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut fields = RetryEvent::default();
        event.record(&mut fields);
        if !fields.message.starts_with("retrying") {
            return;
        }
        // Statuses by their number; a body that could not be read is a truncated one, and any
        // other failure is the connection's.
        let kind = if let Some(status) = fields.reason.strip_prefix("status ") {
            format!("status {status}")
        } else if fields.reason.contains("body") || fields.message.contains("body") {
            "truncated body".to_string()
        } else {
            "network".to_string()
        };
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(kind)
            .or_default() += 1;
    }
}

/// The `id` of a record as JSON text.
#[track_caller]
fn raw_id(record: &str) -> String {
    let value: Value = match serde_json::from_str(record) {
        Ok(value) => value,
        Err(error) => panic!("a record that is not JSON ({error}): {record}"),
    };
    match value["id"].as_str() {
        Some(id) => id.to_string(),
        None => panic!("a record without a string id: {record}"),
    }
}

/// Checks that `received` holds every record of `expected` exactly once, and each equal to it.
#[track_caller]
fn assert_exactly_once<T: PartialEq>(
    what: &str,
    received: Vec<(String, T)>,
    expected: &HashMap<String, T>,
) {
    let mut seen = HashSet::new();
    for (id, record) in received {
        assert!(seen.insert(id.clone()), "{what}: {id} arrived twice");
        match expected.get(&id) {
            Some(sent) => assert!(
                *sent == record,
                "{what}: {id} differs from what the server holds"
            ),
            None => panic!("{what}: {id} arrived but the server does not hold it"),
        }
    }
    let missing: Vec<&String> = expected.keys().filter(|id| !seen.contains(*id)).collect();
    assert!(missing.is_empty(), "{what}: never arrived: {missing:?}");
}

/// Every conversation through the typed item stream, by id.
async fn typed_conversations(client: &Client) -> Vec<(String, Conversation)> {
    let items: Vec<Conversation> = ok(
        client.list_conversations().items().try_collect().await,
        "list every conversation",
    );
    items
        .into_iter()
        .map(|conversation| {
            let id = conversation.id().map(str::to_string).unwrap_or_default();
            (id, conversation)
        })
        .collect()
}

/// Every feedback item through the typed item stream, by id.
async fn typed_feedback(client: &Client) -> Vec<(String, FeedbackItem)> {
    let items: Vec<FeedbackItem> = ok(
        client.list_feedback().items().try_collect().await,
        "list every feedback item",
    );
    items
        .into_iter()
        .map(|item| (item.feedback.id.clone(), item))
        .collect()
}

/// Every conversation through the raw page stream, by id, as the exact JSON the server sent.
async fn raw_conversations(client: &Client) -> Vec<(String, String)> {
    let pages: Vec<_> = ok(
        client.list_conversations().raw_pages().try_collect().await,
        "page through every conversation",
    );
    pages
        .iter()
        .flat_map(|page| &page.conversations)
        .map(|record| (raw_id(record.get()), record.get().to_string()))
        .collect()
}

/// Every feedback item through the raw page stream, by id, as the exact JSON the server sent.
async fn raw_feedback(client: &Client) -> Vec<(String, String)> {
    let pages: Vec<_> = ok(
        client.list_feedback().raw_pages().try_collect().await,
        "page through every feedback item",
    );
    pages
        .iter()
        .flat_map(|page| page.positive_feedback.iter().chain(&page.negative_feedback))
        .map(|record| (raw_id(record.get()), record.get().to_string()))
        .collect()
}

/// The map of a listing read without faults, refusing an id the server sent twice.
#[track_caller]
fn by_id<T>(what: &str, records: Vec<(String, T)>) -> HashMap<String, T> {
    let mut map = HashMap::new();
    for (id, record) in records {
        assert!(
            map.insert(id.clone(), record).is_none(),
            "{what}: the quiet server sent {id} twice"
        );
    }
    map
}

/// The kinds of [`Retries`] the faults cause: every fault but a slow answer, which is only slow.
const EVERY_RETRIED_FAULT: [&str; 5] = [
    "status 429",
    "status 502",
    "status 503",
    "network",
    "truncated body",
];

/// Checks that every kind of fault the sandbox answers with was met and retried.
#[track_caller]
fn assert_every_fault_was_retried(retries: &BTreeMap<String, usize>, kinds: &[&str]) {
    for kind in kinds {
        assert!(
            retries.get(*kind).is_some_and(|count| *count > 0),
            "no retry after {kind}; the faults were not met: {retries:?}"
        );
    }
}

#[tokio::test]
async fn typed_items_arrive_exactly_once_through_thirty_percent_faults() {
    within_time_limit(async {
        let retries = Retries::default();
        let _subscriber = retries.install();
        let sandbox = start_sandbox(EXPORTED_CONVERSATIONS, thirty_percent_faults()).await;
        let client = client_for(&sandbox, sandbox.api_key(), patient_policy());

        let conversations = typed_conversations(&client).await;
        let feedback = typed_feedback(&client).await;

        quiet(&sandbox);
        let expected_conversations = by_id("conversations", typed_conversations(&client).await);
        let expected_feedback = by_id("feedback", typed_feedback(&client).await);
        assert_eq!(expected_conversations.len(), EXPORTED_CONVERSATIONS);
        assert!(
            expected_feedback.len() > 1_000,
            "enough feedback for many pages: {}",
            expected_feedback.len()
        );
        assert_exactly_once("conversations", conversations, &expected_conversations);
        assert_exactly_once("feedback", feedback, &expected_feedback);
        assert_every_fault_was_retried(&retries.counts(), &EVERY_RETRIED_FAULT);
    })
    .await;
}

#[tokio::test]
async fn raw_pages_arrive_exactly_once_through_thirty_percent_faults() {
    within_time_limit(async {
        let retries = Retries::default();
        let _subscriber = retries.install();
        let sandbox = start_sandbox(EXPORTED_CONVERSATIONS, thirty_percent_faults()).await;
        let client = client_for(&sandbox, sandbox.api_key(), patient_policy());

        let conversations = raw_conversations(&client).await;
        let feedback = raw_feedback(&client).await;

        quiet(&sandbox);
        let expected_conversations = by_id("conversations", raw_conversations(&client).await);
        let expected_feedback = by_id("feedback", raw_feedback(&client).await);
        assert_eq!(expected_conversations.len(), EXPORTED_CONVERSATIONS);
        assert_exactly_once("conversations", conversations, &expected_conversations);
        assert_exactly_once("feedback", feedback, &expected_feedback);
        assert_every_fault_was_retried(&retries.counts(), &EVERY_RETRIED_FAULT);
    })
    .await;
}

/// What every logged record carries in its `properties`, to be told apart from seeded ones.
const BATCH: &str = "logged-through-faults";

/// The `properties` of logged record `number`: the batch and the number.
fn marker(number: usize) -> serde_json::Map<String, Value> {
    let mut properties = serde_json::Map::new();
    properties.insert("batch".to_string(), Value::from(BATCH));
    properties.insert("number".to_string(), Value::from(number));
    properties
}

/// How many times each number of [`BATCH`] is held, from the records' `properties`.
fn numbers_in_batch<'a>(
    properties: impl Iterator<Item = Option<&'a serde_json::Map<String, Value>>>,
) -> BTreeMap<u64, usize> {
    let mut numbers = BTreeMap::new();
    for properties in properties.flatten() {
        if properties.get("batch").and_then(Value::as_str) == Some(BATCH)
            && let Some(number) = properties.get("number").and_then(Value::as_u64)
        {
            *numbers.entry(number).or_default() += 1;
        }
    }
    numbers
}

/// Checks that every number of `0..LOGGED` is held exactly once.
#[track_caller]
fn assert_each_held_once(what: &str, numbers: &BTreeMap<u64, usize>) {
    let twice: Vec<(&u64, &usize)> = numbers.iter().filter(|(_, count)| **count > 1).collect();
    assert!(
        twice.is_empty(),
        "{what} held more than once (number, copies): {twice:?}"
    );
    let missing: Vec<usize> = (0..LOGGED)
        .filter(|number| !numbers.contains_key(&(*number as u64)))
        .collect();
    assert!(missing.is_empty(), "{what} not held: {missing:?}");
    assert_eq!(numbers.len(), LOGGED, "{what}: numbers outside the batch");
}

/// The `properties` of a conversation of any kind.
fn conversation_properties(conversation: &Conversation) -> Option<serde_json::Map<String, Value>> {
    match serde_json::to_value(conversation) {
        Ok(Value::Object(mut object)) => match object.remove("properties") {
            Some(Value::Object(properties)) => Some(properties),
            _ => None,
        },
        _ => None,
    }
}

#[tokio::test]
async fn conversations_logged_through_thirty_percent_faults_are_held_exactly_once() {
    within_time_limit(async {
        let retries = Retries::default();
        let _subscriber = retries.install();
        let sandbox = start_sandbox(20, thirty_percent_faults()).await;
        let client = client_for(&sandbox, sandbox.api_key(), patient_policy());

        // No ids are given: keeping a retried write from being stored twice is the SDK's job.
        let logged: Vec<Result<Conversation, Error>> = futures::stream::iter(0..LOGGED)
            .map(|number| {
                let client = client.clone();
                let mut conversation = CreateOpenAiConversation::new(vec![
                    CreateOpenAiMessage::user(format!("Question {number}")),
                    CreateOpenAiMessage::assistant(format!("Answer {number}")),
                ]);
                conversation.properties = Some(marker(number));
                async move { client.log_conversation(conversation).await }
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let failures: Vec<String> = logged
            .iter()
            .filter_map(|result| result.as_ref().err().map(ToString::to_string))
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {LOGGED} conversations were not logged; the first: {}",
            failures.len(),
            failures.first().map_or("", String::as_str)
        );

        quiet(&sandbox);
        let held = typed_conversations(&client).await;
        let properties: Vec<Option<serde_json::Map<String, Value>>> = held
            .iter()
            .map(|(_, conversation)| conversation_properties(conversation))
            .collect();
        let numbers = numbers_in_batch(properties.iter().map(Option::as_ref));
        assert_each_held_once("conversations", &numbers);
        // A truncated body answers a write the server has stored: its retry is what would store
        // it twice.
        assert_every_fault_was_retried(&retries.counts(), &EVERY_RETRIED_FAULT);
        assert_eq!(
            held.len(),
            20 + LOGGED,
            "the server holds the seeded conversations and the logged ones, no more"
        );
    })
    .await;
}

#[tokio::test]
async fn feedback_logged_through_thirty_percent_faults_is_held_exactly_once() {
    within_time_limit(async {
        let retries = Retries::default();
        let _subscriber = retries.install();
        let sandbox = start_sandbox(400, FaultConfig::none()).await;
        let client = client_for(&sandbox, sandbox.api_key(), patient_policy());

        // Messages to give feedback on, read before the faults start: one item per message.
        let messages: Vec<String> = typed_conversations(&client)
            .await
            .iter()
            .flat_map(|(_, conversation)| conversation.messages())
            .filter_map(|message| message.id().map(str::to_string))
            .take(LOGGED)
            .collect();
        assert_eq!(messages.len(), LOGGED, "the sandbox has too few messages");
        let before = typed_feedback(&client).await.len();

        if let Err(error) = sandbox.set_faults(thirty_percent_faults()) {
            panic!("cannot turn the faults on: {error}");
        }
        let logged: Vec<Result<_, Error>> = futures::stream::iter(messages.iter().enumerate())
            .map(|(number, message)| {
                let client = client.clone();
                let mut feedback = FeedbackInput::positive(message.clone());
                feedback.properties = Some(marker(number));
                async move { client.log_feedback(feedback).await }
            })
            .buffer_unordered(CONCURRENT_WRITES)
            .collect()
            .await;
        let failures: Vec<String> = logged
            .iter()
            .filter_map(|result| result.as_ref().err().map(ToString::to_string))
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {LOGGED} feedback items were not logged; the first: {}",
            failures.len(),
            failures.first().map_or("", String::as_str)
        );

        quiet(&sandbox);
        let held = typed_feedback(&client).await;
        let numbers = numbers_in_batch(
            held.iter()
                .map(|(_, item)| item.feedback.properties.as_ref()),
        );
        assert_each_held_once("feedback items", &numbers);
        assert_every_fault_was_retried(&retries.counts(), &EVERY_RETRIED_FAULT);
        assert_eq!(
            held.len(),
            before + LOGGED,
            "the server holds the seeded feedback and the logged items, no more"
        );
    })
    .await;
}

/// The request ids a quiet sandbox with [`SEED`] gives its first `count` requests, in order.
///
/// The sandbox numbers its requests and derives each id from the seed and the number, so a
/// second sandbox with the same seed gives the same ids: the id an error carries tells which
/// request of its sandbox it answered, and so how many requests were sent.
async fn request_ids(count: usize) -> Vec<String> {
    let twin = start_sandbox(0, FaultConfig::none()).await;
    let client = client_for(&twin, "sk-wrong-key", RetryPolicy::none());
    let mut ids = Vec::new();
    for _ in 0..count {
        let error = match client.list_conversations().limit(1).send().await {
            Ok(_) => panic!("the twin sandbox accepted a wrong key"),
            Err(error) => error,
        };
        match error.request_id() {
            Some(id) => ids.push(id.to_string()),
            None => panic!("a 401 without a request id: {error}"),
        }
    }
    ids
}

/// The outcome of a call that must fail with a client error, and how long it took.
struct ClientErrorCase {
    status: u16,
    what: &'static str,
    outcome: Result<(), Error>,
    elapsed: Duration,
}

/// Awaits a call that must fail with `status`.
async fn client_error_case<T>(
    status: u16,
    what: &'static str,
    call: impl Future<Output = Result<T, Error>>,
) -> ClientErrorCase {
    let started = Instant::now();
    let outcome = call.await.map(drop);
    ClientErrorCase {
        status,
        what,
        outcome,
        elapsed: started.elapsed(),
    }
}

#[tokio::test]
async fn client_errors_fail_fast_from_one_request_with_their_request_id() {
    within_time_limit(async {
        let sandbox = start_sandbox(20, FaultConfig::none()).await;
        // Ten retries, with backoffs long enough that retries would show in the time too; the
        // request ids count the requests exactly.
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(300),
            max_backoff: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        let client = client_for(&sandbox, sandbox.api_key(), policy.clone());
        let wrong_key = client_for(&sandbox, "sk-not-a-key", policy.clone());
        // The SDK refuses a read before any request when it knows its key is a web integration
        // key; given as an API key, the key reaches the server, which answers 403.
        let Some(web_key) = sandbox.web_key() else {
            panic!("the sandbox has no web integration key");
        };
        let web_key_as_api_key = client_for(&sandbox, web_key, policy);
        let unknown_field = query::conversations().filter(Filter::eq(
            ConversationsViewField::Other("notAField".to_string()),
            1,
        ));

        // The sandbox's requests number 0, 1, 2, ... in this order, one per case if none is retried.
        let cases = vec![
            client_error_case(
                401,
                "a wrong key",
                wrong_key.list_conversations().limit(1).send(),
            )
            .await,
            client_error_case(
                403,
                "a web integration key on a read",
                web_key_as_api_key.list_conversations().limit(1).send(),
            )
            .await,
            client_error_case(
                404,
                "getting an unknown conversation",
                client.get_conversation("conv_does_not_exist"),
            )
            .await,
            client_error_case(
                404,
                "deleting an unknown feedback item",
                client.delete_feedback("fb_does_not_exist"),
            )
            .await,
            client_error_case(
                422,
                "a query on an unknown field",
                client.query_conversations(unknown_field),
            )
            .await,
            client_error_case(
                422,
                "feedback on an unknown message (a write with an id, so retryable)",
                client.log_feedback(FeedbackInput::positive("msg_does_not_exist")),
            )
            .await,
            // One more request shows that nothing was sent after the last case either.
            client_error_case(
                401,
                "a last request",
                wrong_key.list_conversations().limit(1).send(),
            )
            .await,
        ];

        let ids = request_ids(cases.len()).await;
        for (number, case) in cases.into_iter().enumerate() {
            let what = case.what;
            let error = match case.outcome {
                Ok(()) => panic!("{what} succeeded"),
                Err(error) => error,
            };
            assert_eq!(
                error.status().map(|status| status.as_u16()),
                Some(case.status),
                "{what}: {error}"
            );
            assert!(
                case.elapsed < FAST,
                "{what} took {:?}; a client error must not be retried: {error}",
                case.elapsed
            );
            assert_eq!(
                error.request_id(),
                Some(ids[number].as_str()),
                "{what}: the error must carry the id of the sandbox's request number {number}, \
                 or more than one request was sent: {error}"
            );
            assert!(
                error.to_string().contains(&ids[number]),
                "{what}: the message names the request id: {error}"
            );
        }
    })
    .await;
}
