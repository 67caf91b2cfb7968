//! What typed queries send through the client (the exact JSON body, per view) and how their answers read through the typed row accessors.

use futures::TryStreamExt;
use httpmock::Method::{GET, POST};
use httpmock::MockServer;
use inkeep_analytics::Error;
use inkeep_analytics::query::{self, Column, Field, Filter, GroupBy, OrderBy, Selection};
use inkeep_analytics::types::{
    AggregationFunction, ConversationsViewField as C, EventsViewField as E, FeedbackViewField as F,
    FieldMode, PropertyField, SemanticThreadsViewField as S, TimeUnit,
};
use serde_json::json;

use crate::support::client;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[tokio::test]
async fn query_conversations_sends_the_typed_query_and_reads_its_rows() -> TestResult {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/query/conversations")
                .header("content-type", "application/json")
                .json_body(json!({
                    "select": [
                        {"type": "time", "timeUnit": "day", "field": "firstMessageTime"},
                        {"type": "aggregation", "aggregation": "count", "field": "id"},
                        {"type": "aggregation", "aggregation": "avg", "field": "userMessageCount"}
                    ],
                    "groupBy": [{"field": "type", "includeInSelect": true}],
                    "where": {"and": [
                        {"condition": {"field": "type", "operator": "in", "value": ["openai", "support_copilot"]}},
                        {"or": [
                            {"condition": {"field": "userProperties", "operator": "eq", "value": {"path": ["userType"], "value": "admin"}}},
                            {"condition": {"field": "integrationId", "operator": "isNull"}}
                        ]}
                    ]},
                    "orderBy": [
                        {"field": "firstMessageTime_day", "direction": "desc"},
                        {"field": "count_id", "direction": "desc"}
                    ],
                    "notes": "daily conversations by type"
                }));
            then.status(200).json_body(json!({
                "status": "ok",
                "data": {
                    "result": [
                        {"firstMessageTime_day": "2025-01-02T00:00:00.000Z", "type": "openai", "count_id": "12", "avg_userMessageCount": 2.5},
                        {"firstMessageTime_day": "2025-01-01T00:00:00.000Z", "type": "support_copilot", "count_id": 3, "avg_userMessageCount": "1.0", "newKey": [1, 2]}
                    ],
                    "total": 2,
                    "pageSize": 2,
                    "count": 2
                }
            }));
        })
        .await;

    let day = Column::time_bucket(C::FirstMessageTime, TimeUnit::Day);
    let count = Column::aggregate(AggregationFunction::Count, C::Id);
    let average = Column::aggregate(AggregationFunction::Avg, C::UserMessageCount);
    let query = query::conversations()
        .select(Selection::time_of(C::FirstMessageTime, TimeUnit::Day))
        .select(Selection::aggregate(AggregationFunction::Count, C::Id))
        .select(Selection::aggregate(
            AggregationFunction::Avg,
            C::UserMessageCount,
        ))
        .group_by(GroupBy::new(C::Type).include_in_select(true))
        .filter(
            Filter::is_in(C::Type, ["openai", "support_copilot"]).and(Filter::any([
                Filter::eq(Field::user_properties(["userType"]), "admin"),
                Filter::is_null(C::IntegrationId),
            ])),
        )
        .order_by(day.clone().desc())
        .order_by(OrderBy::desc(count.clone()))
        .notes("daily conversations by type")?;
    let response = client(&server).query_conversations(query).await?;
    mock.assert_async().await;

    assert_eq!(response.status, "ok");
    let rows = response.rows();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].get_str(&day), Some("2025-01-02T00:00:00.000Z"));
    assert_eq!(rows[0].get_str("type"), Some("openai"));
    // Counts arrive as strings or numbers; both read the same.
    assert_eq!(rows[0].get_u64(&count), Some(12));
    assert_eq!(rows[1].get_u64(&count), Some(3));
    assert_eq!(rows[0].get_f64(&average), Some(2.5));
    assert_eq!(rows[1].get_f64(&average), Some(1.0));
    // Keys the query did not ask for are kept.
    assert_eq!(rows[1].get_as::<Vec<u8>>("newKey")?, Some(vec![1, 2]));
    Ok(())
}

#[tokio::test]
async fn query_events_sends_every_selection_kind() -> TestResult {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST).path("/query/events").json_body(json!({
                "select": [
                    {"type": "field", "field": "eventType"},
                    {"type": "field", "field": "properties", "path": ["page"], "mode": "json"},
                    {"type": "time", "timeUnit": "hour"},
                    {"type": "aggregation", "aggregation": "countDistinct", "field": "userProperties", "path": ["userId"]},
                    {"type": "aggregation", "aggregation": "count"}
                ],
                "groupBy": [{"field": "eventType"}, {"field": "properties", "path": ["page"]}],
                "where": {"condition": {"field": "createdAt", "operator": "gte", "value": "2025-01-01T00:00:00.000Z"}},
                "orderBy": [{"field": "count", "direction": "desc"}]
            }));
            then.status(200).json_body(json!({
                "status": "ok",
                "data": {"result": [], "total": 0, "pageSize": 0, "count": 0}
            }));
        })
        .await;

    let query = query::events()
        .select(E::EventType)
        .select(Selection::field_as(
            Field::properties(["page"]),
            FieldMode::Json,
        ))
        .select(Selection::time(TimeUnit::Hour))
        .select(Selection::aggregate(
            AggregationFunction::CountDistinct,
            Field::user_properties(["userId"]),
        ))
        .select(Selection::count())
        .group_by(E::EventType)
        .group_by(Field::properties(["page"]))
        .filter(Filter::gte(E::CreatedAt, "2025-01-01T00:00:00.000Z"))
        .order_by(Column::aggregate_rows(AggregationFunction::Count).desc());
    let response = client(&server).query_events(query).await?;
    mock.assert_async().await;
    assert!(response.rows().is_empty());
    Ok(())
}

#[tokio::test]
async fn query_feedback_and_semantic_threads_send_their_own_bodies() -> TestResult {
    let server = MockServer::start_async().await;
    let empty =
        json!({"status": "ok", "data": {"result": [], "total": 0, "pageSize": 0, "count": 0}});
    let feedback = server
        .mock_async(|when, then| {
            when.method(POST).path("/query/feedback").json_body(json!({
                "where": {"and": [
                    {"condition": {"field": "type", "operator": "eq", "value": "negative"}},
                    {"condition": {"field": "reasons", "operator": "jsonArrayContainsObject", "value": {"label": "inaccurate"}}}
                ]}
            }));
            then.status(200).json_body(empty.clone());
        })
        .await;
    let threads = server
        .mock_async(|when, then| {
            when.method(POST).path("/query/semantic-threads").json_body(json!({
                "query": "rotate an API key",
                "select": [{"type": "field", "field": "question"}],
                "where": {"condition": {"field": "hasNegativeFeedback", "operator": "eq", "value": true}}
            }));
            then.status(200).json_body(empty.clone());
        })
        .await;

    let client = client(&server);
    client
        .query_feedback(
            query::feedback().filter(Filter::eq(F::Type, "negative").and(
                Filter::json_array_contains_object(F::Reasons, json!({"label": "inaccurate"})),
            )),
        )
        .await?;
    client
        .query_semantic_threads(
            query::semantic_threads()
                .search("rotate an API key")
                .select(S::Question)
                .filter(Filter::eq(S::HasNegativeFeedback, true)),
        )
        .await?;
    feedback.assert_async().await;
    threads.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn an_export_sends_the_same_typed_body() -> TestResult {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/query/semantic-threads/export")
                .header("accept", "text/csv")
                .json_body(json!({
                    "query": "billing",
                    "select": [{"type": "field", "field": "subject"}, {"type": "field", "field": "sentiment"}]
                }));
            then.status(200)
                .header("content-type", "text/csv")
                .body("subject,sentiment\nbilling,negative\n");
        })
        .await;
    let query = query::semantic_threads()
        .search("billing")
        .select(S::Subject)
        .select(S::Sentiment);
    let export = client(&server)
        .export_semantic_threads_query_results(query)
        .await?;
    let chunks: Vec<_> = export.try_collect().await?;
    mock.assert_async().await;
    assert_eq!(chunks.concat(), b"subject,sentiment\nbilling,negative\n");
    Ok(())
}

#[tokio::test]
async fn notes_that_are_too_long_never_reach_the_server() -> TestResult {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(POST).path("/query/conversations");
            then.status(200).json_body(json!({
                "status": "ok",
                "data": {"result": [], "total": 0, "pageSize": 0, "count": 0}
            }));
        })
        .await;
    let client = client(&server);
    let send = async {
        let query = query::conversations().notes(
            "a note that runs well past the eighty characters which the API accepts in the notes of a query body",
        )?;
        client.query_conversations(query).await
    };
    match send.await {
        Err(Error::InvalidInput { reason }) => {
            assert!(reason.contains("longer than 80 characters"), "{reason}");
        }
        other => panic!("expected a local refusal, got {other:?}"),
    }
    assert_eq!(mock.calls_async().await, 0);
    Ok(())
}

#[tokio::test]
async fn property_look_ups_send_their_view_and_filter() -> TestResult {
    let server = MockServer::start_async().await;
    let keys = server
        .mock_async(|when, then| {
            when.method(POST).path("/query/property-keys").json_body(json!({
                "field": "userProperties",
                "views": ["events_view"],
                "where": {"condition": {"field": "eventType", "operator": "eq", "value": "search"}}
            }));
            then.status(200)
                .json_body(json!({"results": ["userId", "userType"]}));
        })
        .await;
    let values = server
        .mock_async(|when, then| {
            when.method(POST)
                .path("/query/property-values")
                .json_body(json!({"field": "properties", "key": "plan", "limit": 100}));
            then.status(200)
                .json_body(json!({"results": ["pro", "team"]}));
        })
        .await;
    let client = client(&server);
    let found = client
        .query_property_keys(query::property_keys_in(
            PropertyField::UserProperties,
            Some(Filter::eq(E::EventType, "search")),
        ))
        .await?;
    assert_eq!(found.results, ["userId", "userType"]);
    let found = client
        .query_property_values(query::property_values(PropertyField::Properties, "plan"))
        .await?;
    assert_eq!(found.results, ["pro", "team"]);
    keys.assert_async().await;
    values.assert_async().await;
    Ok(())
}

#[tokio::test]
async fn search_statistics_read_their_string_counts() -> TestResult {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/query/top-search-queries");
            then.status(200).json_body(json!({
                "data": {"result": [{"search_query": "api key", "count": "31"}], "total": 1}
            }));
        })
        .await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/query/weekly-search-users");
            then.status(200).json_body(json!({
                "data": {"result": [{"week": "2025-01-06", "unique_users": "8"}], "total": 1}
            }));
        })
        .await;
    let client = client(&server);
    let top = client.top_search_queries(None, None).await?;
    assert_eq!(top.data.result[0].count_u64()?, 31);
    let weekly = client.weekly_search_users(None, None).await?;
    assert_eq!(weekly.data.result[0].unique_users_u64()?, 8);
    Ok(())
}

/// The keys of the rows the sandbox answers `query` with, and the columns the selections name.
async fn row_keys_and_columns<V: query::ViewKind>(
    client: &inkeep_analytics::Client,
    selections: Vec<Selection<V>>,
    send: impl AsyncFnOnce(
        &inkeep_analytics::Client,
        query::Query<V>,
    ) -> inkeep_analytics::Result<inkeep_analytics::types::QueryResponse>,
) -> Result<(Vec<String>, Vec<String>), Box<dyn std::error::Error>> {
    let columns: Vec<String> = selections
        .iter()
        .filter_map(|selection| selection.column().map(|column| column.to_string()))
        .collect();
    assert_eq!(
        columns.len(),
        selections.len(),
        "every selection names its column"
    );
    let query = selections
        .into_iter()
        .fold(query::Query::<V>::new(), |query, selection| {
            query.select(selection)
        });
    let response = send(client, query).await?;
    let Some(row) = response.rows().first() else {
        return Err("the sandbox answered no rows".into());
    };
    let mut keys: Vec<String> = row.keys().cloned().collect();
    keys.sort();
    let mut sorted = columns.clone();
    sorted.sort();
    Ok((keys, sorted))
}

#[tokio::test]
async fn the_columns_selections_name_are_the_keys_of_the_rows() -> TestResult {
    let sandbox = inkeep_analytics_sandbox::Sandbox::start().await?;
    let client = inkeep_analytics::Client::builder()
        .api_key(sandbox.api_key())
        .base_url(sandbox.base_url())
        .build()?;
    let count = AggregationFunction::Count;
    let (keys, columns) = row_keys_and_columns(
        &client,
        vec![
            Selection::aggregate(count.clone(), Field::properties(["plan"])),
            Selection::field(C::Type),
            Selection::time(TimeUnit::Month),
            Selection::aggregate(count.clone(), C::Id),
        ],
        async |client, query| client.query_conversations(query).await,
    )
    .await?;
    assert_eq!(keys, columns);
    let (keys, columns) = row_keys_and_columns(
        &client,
        vec![Selection::time(TimeUnit::Day), Selection::count()],
        async |client, query| client.query_events(query).await,
    )
    .await?;
    assert_eq!(keys, columns);
    let (keys, columns) = row_keys_and_columns(
        &client,
        vec![
            Selection::time(TimeUnit::Week),
            Selection::field(Field::user_properties(["userType"])),
        ],
        async |client, query| client.query_feedback(query).await,
    )
    .await?;
    assert_eq!(keys, columns);
    let (keys, columns) = row_keys_and_columns(
        &client,
        vec![
            Selection::time(TimeUnit::Hour),
            Selection::field(S::Subject),
        ],
        async |client, query| client.query_semantic_threads(query).await,
    )
    .await?;
    assert_eq!(keys, columns);
    Ok(())
}
