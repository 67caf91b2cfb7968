//! The page and item streams: where they stop, what they guard against, and how they tag feedback.

use futures::{StreamExt, TryStreamExt};
use httpmock::Method::GET;
use httpmock::{Mock, MockServer};
use inkeep_analytics::{
    Error,
    listing::{FeedbackItem, Sentiment},
};
use serde_json::json;

use crate::support::{
    client, client_at, conversation_page, feedback_item, scope_prefix, scoped_base_url,
};

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("c{n}")).collect()
}

/// Serves one page of conversations at `offset` with page size `limit`.
async fn serve_page<'a>(
    server: &'a MockServer,
    limit: usize,
    offset: usize,
    page_ids: Vec<String>,
    total: usize,
) -> Mock<'a> {
    server
        .mock_async(move |when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("limit", limit.to_string())
                .query_param("offset", offset.to_string());
            then.status(200)
                .json_body(conversation_page(&page_ids, total));
        })
        .await
}

async fn collect_ids(
    stream: futures::stream::BoxStream<
        'static,
        inkeep_analytics::Result<inkeep_analytics::types::Conversation>,
    >,
) -> Result<Vec<String>, Error> {
    stream
        .map_ok(|conversation| conversation.id().unwrap_or_default().to_string())
        .try_collect()
        .await
}

#[tokio::test]
async fn an_empty_listing_yields_nothing_after_one_request() {
    let server = MockServer::start_async().await;
    let page = serve_page(&server, 100, 0, vec![], 0).await;
    let result = collect_ids(client(&server).list_conversations().items()).await;
    assert!(result.is_ok_and(|ids| ids.is_empty()));
    page.assert_calls_async(1).await;
}

#[tokio::test]
async fn an_exact_multiple_of_the_page_size_stops_without_an_extra_request() {
    let server = MockServer::start_async().await;
    let first = serve_page(&server, 3, 0, ids(0..3), 6).await;
    let second = serve_page(&server, 3, 3, ids(3..6), 6).await;
    let third = serve_page(&server, 3, 6, vec![], 6).await;
    let result = collect_ids(client(&server).list_conversations().limit(3).items()).await;
    assert_eq!(result.ok(), Some(ids(0..6)));
    first.assert_calls_async(1).await;
    second.assert_calls_async(1).await;
    third.assert_calls_async(0).await;
}

#[tokio::test]
async fn a_short_last_page_ends_the_listing() {
    let server = MockServer::start_async().await;
    serve_page(&server, 3, 0, ids(0..3), 7).await;
    serve_page(&server, 3, 3, ids(3..6), 7).await;
    let last = serve_page(&server, 3, 6, ids(6..7), 7).await;
    let result = collect_ids(client(&server).list_conversations().limit(3).items()).await;
    assert_eq!(result.ok(), Some(ids(0..7)));
    last.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_short_page_ends_the_listing_even_when_total_says_more() {
    let server = MockServer::start_async().await;
    serve_page(&server, 3, 0, ids(0..3), 50).await;
    serve_page(&server, 3, 3, ids(3..4), 50).await;
    let after = serve_page(&server, 3, 4, ids(4..7), 50).await;
    let result = collect_ids(client(&server).list_conversations().limit(3).items()).await;
    assert_eq!(result.ok(), Some(ids(0..4)));
    after.assert_calls_async(0).await;
}

#[tokio::test]
async fn a_growing_total_is_followed() {
    let server = MockServer::start_async().await;
    serve_page(&server, 3, 0, ids(0..3), 5).await;
    serve_page(&server, 3, 3, ids(3..6), 8).await;
    serve_page(&server, 3, 6, ids(6..8), 8).await;
    let result = collect_ids(client(&server).list_conversations().limit(3).items()).await;
    assert_eq!(result.ok(), Some(ids(0..8)));
}

#[tokio::test]
async fn a_shrinking_total_stops_the_listing() {
    let server = MockServer::start_async().await;
    serve_page(&server, 3, 0, ids(0..3), 9).await;
    serve_page(&server, 3, 3, ids(3..6), 4).await;
    let beyond = serve_page(&server, 3, 6, ids(6..9), 4).await;
    // Without fetching ahead, which would have asked for offset 6 while the total was still 9.
    let result = collect_ids(
        client(&server)
            .list_conversations()
            .limit(3)
            .prefetch(0)
            .items(),
    )
    .await;
    assert_eq!(result.ok(), Some(ids(0..6)));
    beyond.assert_calls_async(0).await;
}

#[tokio::test]
async fn pages_ahead_are_fetched_while_the_caller_reads_and_never_past_the_total() {
    let server = MockServer::start_async().await;
    let mut mocks = Vec::new();
    for page in 0..5 {
        mocks.push(serve_page(&server, 2, page * 2, ids(page * 2..page * 2 + 2), 10).await);
    }
    let past_total = serve_page(&server, 2, 10, vec![], 10).await;
    let mut pages = client(&server)
        .list_conversations()
        .limit(2)
        .prefetch(2)
        .pages();
    let first = pages.next().await;
    assert!(matches!(first, Some(Ok(ref p)) if p.conversations.len() == 2));
    // The caller has not asked for more, yet the next two pages are on their way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while mocks[1].calls_async().await + mocks[2].calls_async().await < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no page was fetched ahead"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(mocks[3].calls_async().await, 0, "at most two pages ahead");
    let rest: Vec<_> = pages.collect().await;
    let rest_ids: Vec<String> = rest
        .into_iter()
        .flat_map(|page| page.map(|page| page.conversations).unwrap_or_default())
        .filter_map(|conversation| conversation.id().map(str::to_string))
        .collect();
    assert_eq!(rest_ids, ids(2..10), "every item once, in order");
    for mock in &mocks {
        mock.assert_calls_async(1).await;
    }
    past_total.assert_calls_async(0).await;
}

#[tokio::test]
async fn the_stream_starts_at_the_given_offset_and_pages_are_lazy() {
    let server = MockServer::start_async().await;
    let first = serve_page(&server, 2, 10, ids(10..12), 13).await;
    let second = serve_page(&server, 2, 12, ids(12..13), 13).await;
    let mut pages = client(&server)
        .list_conversations()
        .limit(2)
        .offset(10)
        .prefetch(0)
        .pages();
    first.assert_calls_async(0).await;
    let page = pages.next().await;
    assert!(matches!(page, Some(Ok(ref p)) if p.conversations.len() == 2));
    first.assert_calls_async(1).await;
    second.assert_calls_async(0).await;
    let rest: Vec<_> = pages.collect().await;
    assert_eq!(rest.len(), 1);
    second.assert_calls_async(1).await;
}

#[tokio::test]
async fn a_server_ignoring_offset_is_caught_instead_of_looped() {
    let server = MockServer::start_async().await;
    let same = server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.status(200)
                .json_body(conversation_page(&ids(0..2), 1_000_000));
        })
        .await;
    let results: Vec<_> = client(&server)
        .list_conversations()
        .limit(2)
        .prefetch(0)
        .items()
        .collect()
        .await;
    let items = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(items, 2, "the first page is delivered once");
    assert!(
        matches!(results.last(), Some(Err(Error::Pagination { .. }))),
        "{results:?}"
    );
    same.assert_calls_async(2).await;
}

#[tokio::test]
async fn a_server_that_never_ends_is_stopped_by_the_page_budget() {
    let server = MockServer::start_async().await;
    for page in 0..5 {
        serve_page(&server, 2, page * 2, ids(page * 2..page * 2 + 2), 1_000_000).await;
    }
    let results: Vec<_> = client(&server)
        .list_conversations()
        .limit(2)
        .max_pages(3)
        .items()
        .collect()
        .await;
    assert_eq!(results.len(), 7, "6 items then the error: {results:?}");
    assert!(matches!(
        results.last(),
        Some(Err(Error::Pagination { .. }))
    ));
}

#[tokio::test]
async fn a_stream_refuses_a_zero_or_out_of_range_page_size_without_a_request() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.path_prefix(scope_prefix("page-size"));
            then.status(200).json_body(conversation_page(&[], 0));
        })
        .await;
    for limit in [0, 101, -5] {
        let results: Vec<_> = client_at(&scoped_base_url(&server, "page-size"))
            .list_conversations()
            .limit(limit)
            .items()
            .collect()
            .await;
        assert!(
            matches!(results.as_slice(), [Err(Error::InvalidInput { .. })]),
            "limit {limit}: {results:?}"
        );
        let results: Vec<_> = client_at(&scoped_base_url(&server, "page-size"))
            .list_feedback()
            .limit(limit)
            .items()
            .collect()
            .await;
        assert!(matches!(
            results.as_slice(),
            [Err(Error::InvalidInput { .. })]
        ));
    }
    any.assert_calls_async(0).await;
}

async fn serve_feedback_page(
    server: &MockServer,
    offset: usize,
    positive: &[&str],
    negative: &[&str],
    counts: (usize, usize),
) {
    let positive: Vec<_> = positive
        .iter()
        .map(|id| feedback_item(id, "positive"))
        .collect();
    let negative: Vec<_> = negative
        .iter()
        .map(|id| feedback_item(id, "negative"))
        .collect();
    server
        .mock_async(move |when, then| {
            when.method(GET)
                .path("/feedback")
                .query_param("limit", "2")
                .query_param("offset", offset.to_string());
            then.status(200).json_body(json!({
                "positiveFeedbackCount": counts.0,
                "negativeFeedbackCount": counts.1,
                "positiveFeedback": positive,
                "negativeFeedback": negative,
            }));
        })
        .await;
}

#[tokio::test]
async fn feedback_items_come_from_both_lists_tagged() {
    let server = MockServer::start_async().await;
    serve_feedback_page(&server, 0, &["p1", "p2"], &["n1", "n2"], (3, 2)).await;
    serve_feedback_page(&server, 2, &["p3"], &[], (3, 2)).await;
    let items: Result<Vec<FeedbackItem>, _> = client(&server)
        .list_feedback()
        .limit(2)
        .items()
        .try_collect()
        .await;
    let Ok(items) = items else {
        panic!("{items:?}");
    };
    let seen: Vec<(Sentiment, &str)> = items
        .iter()
        .map(|item| (item.sentiment, item.feedback.id.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Sentiment::Positive, "p1"),
            (Sentiment::Positive, "p2"),
            (Sentiment::Negative, "n1"),
            (Sentiment::Negative, "n2"),
            (Sentiment::Positive, "p3"),
        ]
    );
}

#[tokio::test]
async fn feedback_pages_until_the_longer_list_is_exhausted() {
    let server = MockServer::start_async().await;
    serve_feedback_page(&server, 0, &["p1"], &["n1", "n2"], (1, 5)).await;
    serve_feedback_page(&server, 2, &[], &["n3", "n4"], (1, 5)).await;
    serve_feedback_page(&server, 4, &[], &["n5"], (1, 5)).await;
    let items: Result<Vec<FeedbackItem>, _> = client(&server)
        .list_feedback()
        .limit(2)
        .items()
        .try_collect()
        .await;
    let ids: Vec<String> = items
        .unwrap_or_default()
        .into_iter()
        .map(|item| item.feedback.id)
        .collect();
    assert_eq!(ids, ["p1", "n1", "n2", "n3", "n4", "n5"]);
}

#[tokio::test]
async fn raw_pages_keep_each_record_byte_for_byte() {
    let server = MockServer::start_async().await;
    // Formatting the typed model would change: a float with a trailing zero, an explicit null,
    // a key order, a unicode escape and an unknown kind.
    let first = r#"{"id":"c0","type":"openai","total":1.50,"name":null,"zeta":1,"alpha":"\u00e9"}"#;
    let second = r#"{"type":"voice_call","id":"c1","minutes":3}"#;
    let body =
        format!(r#"{{"conversations":[{first}, {second}],"total":2,"pageSize":100,"count":2}}"#);
    server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("offset", "0");
            then.status(200)
                .header("content-type", "application/json")
                .body(body);
        })
        .await;
    let pages: Result<Vec<_>, _> = client(&server)
        .list_conversations()
        .raw_pages()
        .try_collect()
        .await;
    let Ok(pages) = pages else {
        panic!("{pages:?}");
    };
    assert_eq!(pages.len(), 1);
    let records: Vec<&str> = pages[0].conversations.iter().map(|r| r.get()).collect();
    assert_eq!(records, [first, second]);
}

#[tokio::test]
async fn raw_pages_page_like_typed_ones_and_share_their_guards() {
    let server = MockServer::start_async().await;
    serve_page(&server, 3, 0, ids(0..3), 7).await;
    serve_page(&server, 3, 3, ids(3..6), 7).await;
    serve_page(&server, 3, 6, ids(6..7), 7).await;
    let pages: Result<Vec<_>, _> = client(&server)
        .list_conversations()
        .limit(3)
        .raw_pages()
        .try_collect()
        .await;
    let seen: Vec<String> = pages
        .unwrap_or_default()
        .iter()
        .flat_map(|page| page.conversations.iter())
        .filter_map(|record| serde_json::from_str::<serde_json::Value>(record.get()).ok())
        .filter_map(|record| record["id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(seen, ids(0..7));

    let looping = MockServer::start_async().await;
    looping
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.status(200)
                .json_body(conversation_page(&ids(0..2), 1_000));
        })
        .await;
    let results: Vec<_> = client(&looping)
        .list_conversations()
        .limit(2)
        .raw_pages()
        .collect()
        .await;
    assert!(matches!(
        results.last(),
        Some(Err(Error::Pagination { .. }))
    ));
}

#[tokio::test]
async fn raw_feedback_pages_keep_both_lists() {
    let server = MockServer::start_async().await;
    serve_feedback_page(&server, 0, &["p1", "p2"], &["n1"], (2, 1)).await;
    let pages: Result<Vec<_>, _> = client(&server)
        .list_feedback()
        .limit(2)
        .raw_pages()
        .try_collect()
        .await;
    let Ok(pages) = pages else {
        panic!("{pages:?}");
    };
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].positive_feedback.len(), 2);
    assert_eq!(pages[0].negative_feedback.len(), 1);
    assert!(pages[0].negative_feedback[0].get().contains(r#""id":"n1""#));
}

#[tokio::test]
async fn raw_pages_report_api_errors_with_the_request_id() {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(GET).path("/conversations");
            then.status(401)
                .header("content-type", "application/problem+json")
                .json_body(crate::support::problem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "req_raw",
                ));
        })
        .await;
    let results: Vec<_> = client(&server)
        .list_conversations()
        .raw_pages()
        .collect()
        .await;
    match results.as_slice() {
        [Err(error)] => {
            assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
            assert_eq!(error.request_id(), Some("req_raw"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn raw_pages_tell_numeric_ids_apart() {
    let server = MockServer::start_async().await;
    for (offset, first) in [(0, 1), (2, 3)] {
        let body = format!(
            r#"{{"conversations":[{{"id":{first},"type":"voice_call"}},{{"id":{},"type":"voice_call"}}],"total":4,"pageSize":2,"count":2}}"#,
            first + 1
        );
        server
            .mock_async(|when, then| {
                when.method(GET)
                    .path("/conversations")
                    .query_param("offset", offset.to_string());
                then.status(200)
                    .header("content-type", "application/json")
                    .body(body);
            })
            .await;
    }
    // Two pages of records whose ids are numbers are different pages, not the same one twice.
    let pages: Result<Vec<_>, _> = client(&server)
        .list_conversations()
        .limit(2)
        .raw_pages()
        .try_collect()
        .await;
    let ids: Vec<Option<String>> = pages
        .unwrap_or_else(|error| panic!("{error}"))
        .iter()
        .flat_map(|page| {
            page.conversations
                .iter()
                .map(|r| inkeep_analytics::listing::raw_record_id(r))
        })
        .collect();
    assert_eq!(ids, ["1", "2", "3", "4"].map(|id| Some(id.to_string())));
}
