//! The routes of the API and their handlers: parsing and validating requests, and answering in
//! the shapes of the spec.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use inkeep_analytics::query::MAX_PROPERTY_VALUES_LIMIT;
use inkeep_analytics::types;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::ingest::{self, list};
use crate::problem::Problem;
use crate::query::{self, CompiledQuery, PropertyQuery, QUERY_PAGE_SIZE, QuerySpec};
use crate::records::{Conversation, Feedback, FeedbackWithContext};
use crate::state::Shared;
use crate::views::View;

/// The API refuses request bodies over 2 MB: the SDK's constant, which it checks before sending.
pub(crate) const MAX_BODY_BYTES: usize = inkeep_analytics::config::MAX_REQUEST_BODY_BYTES;

/// The page size of `GET /conversations` when `limit` is not given.
/// The SDK does not expose it yet; source: /work/shared/api-reference.md, operation 2
/// (`limit` int 0..100 default 20).
pub(crate) const DEFAULT_CONVERSATIONS_LIMIT: usize = 20;

/// The page size of `GET /feedback` when `limit` is not given.
/// The SDK does not expose it yet; source: /work/shared/api-reference.md, operation 8
/// (`limit` int 0..100 default 10).
pub(crate) const DEFAULT_FEEDBACK_LIMIT: usize = 10;

/// The largest `limit` of the listings: the SDK's page size bound.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(crate) const MAX_LIMIT: usize = inkeep_analytics::listing::MAX_PAGE_SIZE as usize;

// The cast above keeps the SDK's value only while it is positive and small.
const _: () = assert!(
    inkeep_analytics::listing::MAX_PAGE_SIZE > 0
        && inkeep_analytics::listing::MAX_PAGE_SIZE <= 1 << 31
);

/// How many queries `GET /query/top-search-queries` returns at most.
/// Not documented (/work/shared/api-reference.md, operations 21 and 22, give no bound): the
/// sandbox's choice.
const TOP_SEARCH_QUERIES: usize = 100;

type AppState = State<Arc<Shared>>;

fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from(SystemTime::now())
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/conversations",
            get(list_conversations).post(log_conversation),
        )
        .route(
            "/conversations/{id}",
            get(get_conversation).delete(delete_conversation),
        )
        .route(
            "/conversations/external/{external_id}",
            get(get_conversation_by_external_id),
        )
        .route("/events", post(log_event))
        .route("/feedback", get(list_feedback).post(log_feedback))
        .route("/feedback/{id}", get(get_feedback).delete(delete_feedback))
        .route("/query/conversations", post(query_conversations))
        .route("/query/conversations/export", post(export_conversations))
        .route("/query/events", post(query_events))
        .route("/query/events/export", post(export_events))
        .route("/query/feedback", post(query_feedback))
        .route("/query/feedback/export", post(export_feedback))
        .route("/query/semantic-threads", post(query_semantic_threads))
        .route(
            "/query/semantic-threads/export",
            post(export_semantic_threads),
        )
        .route("/query/property-keys", post(property_keys))
        .route("/query/property-values", post(property_values))
        .route("/query/top-search-queries", get(top_search_queries))
        .route("/query/weekly-search-users", get(weekly_search_users))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(shared)
}

async fn not_found(request: Request) -> Problem {
    Problem::not_found(format!(
        "No operation at {} {}",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed(request: Request) -> Problem {
    Problem::method_not_allowed(format!(
        "{} is not an operation of {}",
        request.method(),
        request.uri().path()
    ))
}

// Extractors whose rejections are problem+json.

/// A path parameter.
struct Id(String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Id(id)),
            Err(rejection) => Err(Problem::bad_request(format!(
                "Invalid path parameter: {rejection}"
            ))),
        }
    }
}

/// The query string, as name-value pairs.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match Query::<Vec<(String, String)>>::from_request_parts(parts, state).await {
            Ok(Query(pairs)) => Ok(Params(pairs)),
            Err(rejection) => Err(Problem::bad_request(format!(
                "Invalid query string: {rejection}"
            ))),
        }
    }
}

/// A JSON request body: `413` over 2 MB, `400` when it is not JSON.
struct JsonBody(Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Problem> {
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                Problem::payload_too_large(format!(
                    "The request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(Problem::bad_request("The request needs a JSON body"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| Problem::bad_request(format!("Malformed JSON body: {error}")))
    }
}

/// Reads a body with the SDK's generated type: a mismatch is a `422` naming where it is.
fn decode<T: DeserializeOwned>(value: Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if path == "." {
            Problem::unprocessable(format!("Invalid body: {inner}"))
        } else {
            Problem::unprocessable(format!("{path}: {inner}"))
        }
    })
}

fn json_response<T: Serialize>(body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => {
            Problem::internal(format!("Could not serialize the answer: {error}")).into_response()
        }
    }
}

/// Reads `limit` and `offset`: absent, empty or `null` means the default; otherwise an integer
/// in range, or `400`.
fn paging(params: &Params, default_limit: usize) -> Result<(usize, usize), Problem> {
    let read = |name: &str, default: usize, max: Option<usize>| -> Result<usize, Problem> {
        let Some(raw) = params
            .get(name)
            .filter(|raw| !raw.is_empty() && *raw != "null")
        else {
            return Ok(default);
        };
        let range = match max {
            Some(max) => format!("between 0 and {max}"),
            None => "0 or more".to_string(),
        };
        let Ok(number) = raw.trim().parse::<i64>() else {
            return Err(Problem::bad_request(format!(
                "{name}: `{raw}` is not an integer; it must be {range}"
            )));
        };
        usize::try_from(number)
            .ok()
            .filter(|n| max.is_none_or(|max| *n <= max))
            .ok_or_else(|| Problem::bad_request(format!("{name}: must be {range}, got {number}")))
    };
    Ok((
        read("limit", default_limit, Some(MAX_LIMIT))?,
        read("offset", 0, None)?,
    ))
}

// Conversations.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConversationPage<'a> {
    conversations: Vec<&'a Conversation>,
    total: usize,
    page_size: usize,
    count: usize,
}

async fn list_conversations(State(shared): AppState, params: Params) -> Result<Response, Problem> {
    let (limit, offset) = paging(&params, DEFAULT_CONVERSATIONS_LIMIT)?;
    let (page, total) = {
        let store = shared.store();
        (
            store.conversation_page(limit, offset),
            store.conversation_count(),
        )
    };
    let response = json_response(&ConversationPage {
        conversations: page.iter().map(AsRef::as_ref).collect(),
        total,
        page_size: limit,
        count: page.len(),
    });
    shared.store().after_list_request(shared.concurrent_inserts);
    Ok(response)
}

/// Reads a conversation with the generated type of its kind, so that a mistake inside it is
/// reported with its full path (`messages[1].role`).
fn decode_conversation(value: Value) -> Result<types::CreateConversation, Problem> {
    Ok(match value.get("type").and_then(Value::as_str) {
        Some("openai") => types::CreateConversation::OpenAi(decode(value)?),
        Some("support_ticket") => types::CreateConversation::SupportTicket(decode(value)?),
        Some("support_copilot") => types::CreateConversation::SupportCopilot(decode(value)?),
        _ if !value.is_object() => {
            return Err(Problem::unprocessable(
                "Invalid body: a conversation is a JSON object",
            ));
        }
        _ => types::CreateConversation::Unknown(value),
    })
}

async fn log_conversation(
    State(shared): AppState,
    JsonBody(value): JsonBody,
) -> Result<Response, Problem> {
    let request = decode_conversation(value)?;
    let conversation = ingest::log_conversation(&mut shared.store(), &request, now())?;
    Ok(json_response(conversation.as_ref()))
}

async fn get_conversation(State(shared): AppState, Id(id): Id) -> Result<Response, Problem> {
    let conversation = shared.store().conversation(&id);
    match conversation {
        Some(conversation) => Ok(json_response(conversation.as_ref())),
        None => Err(Problem::not_found(format!("Conversation `{id}` not found"))),
    }
}

async fn get_conversation_by_external_id(
    State(shared): AppState,
    Id(external_id): Id,
) -> Result<Response, Problem> {
    let conversation = shared.store().conversation_by_external_id(&external_id);
    match conversation {
        Some(conversation) => Ok(json_response(conversation.as_ref())),
        None => Err(Problem::not_found(format!(
            "No conversation with external id `{external_id}`"
        ))),
    }
}

async fn delete_conversation(State(shared): AppState, Id(id): Id) -> Result<Response, Problem> {
    if shared.store().delete_conversation(&id) {
        Ok(json_response(&json!({
            "success": true,
            "message": format!("Conversation {id} deleted successfully"),
        })))
    } else {
        Err(Problem::not_found(format!("Conversation `{id}` not found")))
    }
}

// Events.

async fn log_event(
    State(shared): AppState,
    JsonBody(value): JsonBody,
) -> Result<Response, Problem> {
    let request = match value.get("entityType").and_then(Value::as_str) {
        Some("message") => types::InsertEvent::Message(decode(value)?),
        Some("conversation") => types::InsertEvent::Conversation(decode(value)?),
        Some("search") => types::InsertEvent::Search(decode(value)?),
        _ if !value.is_object() => {
            return Err(Problem::unprocessable(
                "Invalid body: an event is a JSON object",
            ));
        }
        _ => types::InsertEvent::Unknown(value),
    };
    let event = ingest::log_event(&mut shared.store(), &request, now())?;
    Ok(json_response(event.as_ref()))
}

// Feedback.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FeedbackListBody<'a> {
    positive_feedback_count: usize,
    negative_feedback_count: usize,
    positive_feedback: Vec<FeedbackWithContext<'a>>,
    negative_feedback: Vec<FeedbackWithContext<'a>>,
}

/// Feedback with the conversation of its message, looked up while the store is locked.
type InContext = (Arc<Feedback>, Arc<Conversation>);

fn with_context(items: &[InContext]) -> Vec<FeedbackWithContext<'_>> {
    items
        .iter()
        .filter_map(|(feedback, conversation)| {
            Some(FeedbackWithContext {
                feedback,
                conversation,
                message: conversation.message(&feedback.message_id)?,
            })
        })
        .collect()
}

async fn list_feedback(State(shared): AppState, params: Params) -> Result<Response, Problem> {
    let (limit, offset) = paging(&params, DEFAULT_FEEDBACK_LIMIT)?;
    let (positive_total, negative_total, positive, negative) = {
        let store = shared.store();
        let page = store.feedback_page(limit, offset);
        let context = |items: Vec<Arc<Feedback>>| -> Vec<InContext> {
            items
                .into_iter()
                .filter_map(|f| {
                    let conversation = store.conversation(&f.conversation_id)?;
                    Some((f, conversation))
                })
                .collect()
        };
        (
            page.positive_total,
            page.negative_total,
            context(page.positive),
            context(page.negative),
        )
    };
    Ok(json_response(&FeedbackListBody {
        positive_feedback_count: positive_total,
        negative_feedback_count: negative_total,
        positive_feedback: with_context(&positive),
        negative_feedback: with_context(&negative),
    }))
}

async fn log_feedback(
    State(shared): AppState,
    JsonBody(value): JsonBody,
) -> Result<Response, Problem> {
    let input: types::FeedbackInput = decode(value)?;
    let feedback = ingest::log_feedback(&mut shared.store(), &input, now())?;
    Ok(json_response(feedback.as_ref()))
}

async fn get_feedback(State(shared): AppState, Id(id): Id) -> Result<Response, Problem> {
    let found = {
        let store = shared.store();
        store.feedback(&id).and_then(|feedback| {
            let conversation = store.conversation(&feedback.conversation_id)?;
            Some((feedback, conversation))
        })
    };
    let items: Vec<InContext> = found.into_iter().collect();
    match with_context(&items).first() {
        Some(item) => Ok(json_response(item)),
        None => Err(Problem::not_found(format!("Feedback `{id}` not found"))),
    }
}

async fn delete_feedback(State(shared): AppState, Id(id): Id) -> Result<Response, Problem> {
    if shared.store().delete_feedback(&id) {
        Ok(json_response(&json!({
            "success": true,
            "message": format!("Feedback {id} deleted successfully"),
        })))
    } else {
        Err(Problem::not_found(format!("Feedback `{id}` not found")))
    }
}

// Queries.

fn run_query<B>(shared: &Shared, view: View, value: Value, csv: bool) -> Result<Response, Problem>
where
    B: DeserializeOwned + Into<QuerySpec>,
{
    let body: B = decode(value)?;
    let spec: QuerySpec = body.into();
    // Every problem of the body is found before the data is read.
    let compiled = CompiledQuery::compile(view, &spec)?;
    let snapshot = shared.store().snapshot();
    let table = compiled.run(view.rows(&snapshot));
    if csv {
        let mut response = (StatusCode::OK, Body::from(query::to_csv(&table))).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        );
        if let Ok(disposition) = HeaderValue::from_str(&format!(
            "attachment; filename=\"{}.csv\"",
            view.wire_name()
        )) {
            headers.insert(header::CONTENT_DISPOSITION, disposition);
        }
        return Ok(response);
    }
    let total = table.rows.len();
    let result: Vec<_> = table.rows.into_iter().take(QUERY_PAGE_SIZE).collect();
    Ok(json_response(&json!({
        "status": "ok",
        "data": {
            "result": result,
            "total": total,
            "pageSize": QUERY_PAGE_SIZE,
            "count": result.len(),
        },
    })))
}

macro_rules! query_handlers {
    ($($name:ident, $export:ident, $body:ty, $view:expr;)*) => {$(
        async fn $name(State(shared): AppState, JsonBody(value): JsonBody) -> Result<Response, Problem> {
            run_query::<$body>(&shared, $view, value, false)
        }

        async fn $export(State(shared): AppState, JsonBody(value): JsonBody) -> Result<Response, Problem> {
            run_query::<$body>(&shared, $view, value, true)
        }
    )*};
}

query_handlers! {
    query_conversations, export_conversations, types::QueryConversationsBody, View::Conversations;
    query_events, export_events, types::QueryEventsBody, View::Events;
    query_feedback, export_feedback, types::QueryFeedbackBody, View::Feedback;
    query_semantic_threads, export_semantic_threads, types::QuerySemanticThreadsBody, View::SemanticThreads;
}

fn property_field(field: &types::PropertyField) -> Result<&'static str, Problem> {
    types::PropertyField::KNOWN
        .iter()
        .copied()
        .find(|known| *known == field.as_str())
        .ok_or_else(|| {
            Problem::unprocessable(format!(
                "field: `{field}` is not one of {}",
                list(types::PropertyField::KNOWN)
            ))
        })
}

fn views(views: &[types::View]) -> Result<Vec<View>, Problem> {
    if views.is_empty() {
        return Ok(View::ALL.to_vec());
    }
    views
        .iter()
        .enumerate()
        .map(|(index, view)| {
            View::from_generated(view).ok_or_else(|| {
                Problem::unprocessable(format!(
                    "views[{index}]: `{view}` is not one of {}",
                    list(types::View::KNOWN)
                ))
            })
        })
        .collect()
}

async fn property_keys(
    State(shared): AppState,
    JsonBody(value): JsonBody,
) -> Result<Response, Problem> {
    let request: types::PropertyKeysRequest = decode(value)?;
    let field = property_field(&request.field)?;
    let views = views(&request.views)?;
    let compiled = PropertyQuery::compile(&views, request.where_.as_ref())?;
    let snapshot = shared.store().snapshot();
    let results = compiled.keys(&snapshot, field);
    Ok(json_response(&json!({ "results": results })))
}

async fn property_values(
    State(shared): AppState,
    JsonBody(value): JsonBody,
) -> Result<Response, Problem> {
    let request: types::PropertyValuesRequest = decode(value)?;
    let field = property_field(&request.field)?;
    let views = views(&request.views)?;
    if request.limit.get() > MAX_PROPERTY_VALUES_LIMIT {
        return Err(Problem::unprocessable(format!(
            "limit: must be between 1 and {MAX_PROPERTY_VALUES_LIMIT}, got {}",
            request.limit
        )));
    }
    let limit = usize::try_from(request.limit.get()).unwrap_or(usize::MAX);
    let compiled = PropertyQuery::compile(&views, request.where_.as_ref())?;
    let snapshot = shared.store().snapshot();
    let results = compiled.values(&snapshot, field, &request.key, limit);
    Ok(json_response(&json!({ "results": results })))
}

fn search_filters(params: &Params) -> Result<(Option<DateTime<Utc>>, Option<String>), Problem> {
    let after = params
        .get("after")
        .filter(|after| !after.is_empty())
        .map(query::parse_after)
        .transpose()?;
    let project_id = params
        .get("project_id")
        .filter(|id| !id.is_empty())
        .map(str::to_string);
    Ok((after, project_id))
}

async fn top_search_queries(State(shared): AppState, params: Params) -> Result<Response, Problem> {
    let (after, project_id) = search_filters(&params)?;
    let snapshot = shared.store().snapshot();
    let (counts, total) =
        query::top_search_queries(&snapshot, after, project_id.as_deref(), TOP_SEARCH_QUERIES);
    let result: Vec<Value> = counts
        .into_iter()
        .map(|(query, count)| json!({"search_query": query, "count": count.to_string()}))
        .collect();
    Ok(json_response(
        &json!({"data": {"result": result, "total": total}}),
    ))
}

async fn weekly_search_users(State(shared): AppState, params: Params) -> Result<Response, Problem> {
    let (after, project_id) = search_filters(&params)?;
    let snapshot = shared.store().snapshot();
    let weeks = query::weekly_search_users(&snapshot, after, project_id.as_deref());
    let total = weeks.len();
    let result: Vec<Value> = weeks
        .into_iter()
        .map(|(week, users)| json!({"week": week, "unique_users": users.to_string()}))
        .collect();
    Ok(json_response(
        &json!({"data": {"result": result, "total": total}}),
    ))
}
