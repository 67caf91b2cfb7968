//! What the two list operations send (path, query, headers) and what a successful answer decodes into.

use httpmock::Method::GET;
use httpmock::MockServer;
use inkeep_analytics::Error;
use inkeep_analytics::types::Conversation;
use serde_json::json;

use crate::support::{
    TEST_KEY, client, client_at, conversation_page, feedback_item, scope_prefix, scoped_base_url,
};

#[tokio::test]
async fn get_all_conversation_sends_no_query_parameters_when_unset() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param_count(".*", ".*", 0)
                .header("authorization", format!("Bearer {TEST_KEY}"))
                .header("accept", "application/json")
                .header_missing("api-version");
            then.status(200)
                .json_body(conversation_page(&["c1".to_string(), "c2".to_string()], 2));
        })
        .await;
    let page = match client(&server).list_conversations().send().await {
        Ok(page) => page,
        Err(error) => panic!("{error}"),
    };
    mock.assert_async().await;
    assert_eq!(page.conversations.len(), 2);
    assert_eq!(page.total.as_u64(), Some(2));
    assert_eq!(page.count.as_u64(), Some(2));
    assert_eq!(page.conversations[0].id(), Some("c1"));
    let Conversation::OpenAi(first) = &page.conversations[0] else {
        panic!(
            "expected an openai conversation, got {:?}",
            page.conversations[0]
        );
    };
    assert_eq!(first.project_id.as_deref(), Some("proj_1"));
    assert_eq!(first.messages_open_ai_format.len(), 1);
}

#[tokio::test]
async fn get_all_conversation_sends_limit_and_offset() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/conversations")
                .query_param("limit", "7")
                .query_param("offset", "21")
                .query_param_count(".*", ".*", 2);
            then.status(200).json_body(conversation_page(&[], 21));
        })
        .await;
    let result = client(&server)
        .list_conversations()
        .limit(7)
        .offset(21)
        .send()
        .await;
    mock.assert_async().await;
    assert!(result.is_ok_and(|page| page.conversations.is_empty()));
}

#[tokio::test]
async fn get_all_feedback_sends_no_query_parameters_when_unset() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/feedback")
                .query_param_count(".*", ".*", 0)
                .header("authorization", format!("Bearer {TEST_KEY}"));
            then.status(200).json_body(json!({
                "positiveFeedbackCount": 1,
                "negativeFeedbackCount": 1,
                "positiveFeedback": [feedback_item("f1", "positive")],
                "negativeFeedback": [feedback_item("f2", "negative")],
            }));
        })
        .await;
    let page = match client(&server).list_feedback().send().await {
        Ok(page) => page,
        Err(error) => panic!("{error}"),
    };
    mock.assert_async().await;
    assert_eq!(page.positive_feedback_count.as_u64(), Some(1));
    assert_eq!(page.positive_feedback[0].id, "f1");
    assert_eq!(page.negative_feedback[0].id, "f2");
    assert_eq!(page.negative_feedback[0].type_.as_str(), "negative");
    assert_eq!(
        page.positive_feedback[0].conversation.id(),
        Some("conv-of-f1")
    );
    assert_eq!(
        page.positive_feedback[0].message.id(),
        Some("conv-of-f1-m1")
    );
}

#[tokio::test]
async fn get_all_feedback_sends_limit_and_offset() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET)
                .path("/feedback")
                .query_param("limit", "0")
                .query_param("offset", "5");
            then.status(200).json_body(json!({
                "positiveFeedbackCount": 0,
                "negativeFeedbackCount": 0,
                "positiveFeedback": [],
                "negativeFeedback": [],
            }));
        })
        .await;
    let result = client(&server)
        .list_feedback()
        .limit(0)
        .offset(5)
        .send()
        .await;
    mock.assert_async().await;
    assert!(result.is_ok());
}

#[tokio::test]
async fn a_base_url_path_prefix_is_kept() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.method(GET).path("/analytics/v1/conversations");
            then.status(200).json_body(conversation_page(&[], 0));
        })
        .await;
    let client = inkeep_analytics::Client::builder()
        .api_key(TEST_KEY)
        .base_url(format!("{}/analytics/v1/", server.base_url()))
        .build();
    let Ok(client) = client else {
        panic!("the client was refused");
    };
    assert!(client.list_conversations().send().await.is_ok());
    mock.assert_async().await;
}

#[tokio::test]
async fn limit_and_offset_take_the_integer_types_callers_have() {
    let server = MockServer::start_async().await;
    let conversations = server
        .mock_async(|when, then| {
            when.method(GET)
                .path(format!("{}/conversations", scope_prefix("integer-types")))
                .query_param("limit", "7")
                .query_param("offset", "21")
                .query_param_count(".*", ".*", 2);
            then.status(200).json_body(conversation_page(&[], 21));
        })
        .await;
    let client = client_at(&scoped_base_url(&server, "integer-types"));
    let (limit_u8, offset_usize): (u8, usize) = (7, 21);
    let (limit_u64, offset_i32): (u64, i32) = (7, 21);
    let (limit_isize, offset_u128): (isize, u128) = (7, 21);
    let results = [
        client
            .list_conversations()
            .limit(limit_u8)
            .offset(offset_usize)
            .send()
            .await,
        client
            .list_conversations()
            .limit(limit_u64)
            .offset(offset_i32)
            .send()
            .await,
        client
            .list_conversations()
            .limit(limit_isize)
            .offset(offset_u128)
            .send()
            .await,
    ];
    for result in results {
        assert!(result.is_ok_and(|page| page.conversations.is_empty()));
    }
    conversations.assert_calls_async(3).await;
}

#[tokio::test]
async fn out_of_range_integers_are_refused_with_their_value_before_any_request() {
    let server = MockServer::start_async().await;
    let any = server
        .mock_async(|when, then| {
            when.path_prefix(scope_prefix("integer-range"));
            then.status(200).json_body(conversation_page(&[], 0));
        })
        .await;
    let client = client_at(&scoped_base_url(&server, "integer-range"));
    let refusals = [
        (
            client
                .list_conversations()
                .limit(u64::MAX)
                .send()
                .await
                .map(|_| ()),
            "18446744073709551615",
        ),
        (
            client.list_feedback().limit(-3i8).send().await.map(|_| ()),
            "-3",
        ),
        (
            client
                .list_conversations()
                .offset(-1i64)
                .send()
                .await
                .map(|_| ()),
            "-1",
        ),
        (
            client
                .list_feedback()
                .offset(u128::MAX)
                .send()
                .await
                .map(|_| ()),
            "above",
        ),
        (
            client
                .list_conversations()
                .offset(i128::from(u64::MAX) + 1)
                .send()
                .await
                .map(|_| ()),
            "18446744073709551616",
        ),
    ];
    for (result, value) in refusals {
        match result {
            Err(Error::InvalidInput { reason }) => {
                assert!(reason.contains(value), "{reason} does not quote {value}");
            }
            other => panic!("expected a local refusal quoting {value}, got {other:?}"),
        }
    }
    any.assert_calls_async(0).await;
}

#[tokio::test]
async fn invalid_limits_and_offsets_are_refused_before_any_request() {
    let server = MockServer::start_async().await;
    let mock = server
        .mock_async(|when, then| {
            when.path_prefix(scope_prefix("invalid-paging"));
            then.status(200).json_body(conversation_page(&[], 0));
        })
        .await;
    let client = client_at(&scoped_base_url(&server, "invalid-paging"));
    for (limit, offset) in [(101, 0), (-1, 0), (20, -1), (i64::MAX, 0)] {
        let conversations = client
            .list_conversations()
            .limit(limit)
            .offset(offset)
            .send()
            .await;
        let feedback = client
            .list_feedback()
            .limit(limit)
            .offset(offset)
            .send()
            .await;
        for result in [conversations.map(|_| ()), feedback.map(|_| ())] {
            match result {
                Err(Error::InvalidInput { reason }) => {
                    assert!(
                        reason.contains("limit") || reason.contains("offset"),
                        "{reason}"
                    );
                }
                other => panic!("limit {limit} offset {offset} gave {other:?}"),
            }
        }
    }
    mock.assert_calls_async(0).await;
}
