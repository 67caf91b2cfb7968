//! `GET /feedback` paging, the feedback operations, and `POST /events`.

use futures::TryStreamExt;
use inkeep_analytics::listing::Sentiment;
use inkeep_analytics::types::{
    FeedbackInput, FeedbackReason, InsertConversationEvent, InsertEvent, SelectEvent,
};
use serde_json::Value;

use crate::support::*;

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .must("a list")
        .iter()
        .map(|f| f["id"].as_str().must("id").to_string())
        .collect()
}

#[tokio::test]
async fn feedback_pages_both_lists_with_one_limit_and_offset() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let first = raw.get("/feedback").await.json();
    let positive_total = first["positiveFeedbackCount"].as_u64().must("count");
    let negative_total = first["negativeFeedbackCount"].as_u64().must("count");
    assert!(
        positive_total > 10 && negative_total > 10,
        "{positive_total} {negative_total}"
    );
    // The default limit is 10, for each list.
    assert_eq!(ids(&first["positiveFeedback"]).len(), 10);
    assert_eq!(ids(&first["negativeFeedback"]).len(), 10);

    let everything = raw.get("/feedback?limit=100").await.json();
    let all_positive = ids(&everything["positiveFeedback"]);
    let all_negative = ids(&everything["negativeFeedback"]);
    assert_eq!(all_positive.len() as u64, positive_total);
    assert_eq!(all_negative.len() as u64, negative_total);

    let page = raw.get("/feedback?limit=3&offset=4").await.json();
    assert_eq!(ids(&page["positiveFeedback"]), all_positive[4..7]);
    assert_eq!(ids(&page["negativeFeedback"]), all_negative[4..7]);
    // The counts are totals, whatever the page.
    assert_eq!(page["positiveFeedbackCount"], positive_total);

    // Past the shorter list, only the longer one still has items.
    let shorter = positive_total.min(negative_total);
    let late = raw
        .get(&format!("/feedback?limit=100&offset={shorter}"))
        .await
        .json();
    let remaining = ids(&late["positiveFeedback"]).len() + ids(&late["negativeFeedback"]).len();
    assert_eq!(
        remaining as u64,
        positive_total.max(negative_total) - shorter
    );

    // Every item carries its message and the conversation of that message.
    for item in everything["positiveFeedback"].as_array().must("list") {
        assert_eq!(item["message"]["id"], item["messageId"]);
        assert_eq!(
            item["message"]["conversationId"],
            item["conversation"]["id"]
        );
        assert_eq!(item["type"], "positive");
    }
    for query in ["limit=101", "offset=-3", "limit=x"] {
        assert_problem(
            &raw.get(&format!("/feedback?{query}")).await,
            400,
            "bad_request",
        );
    }
}

#[tokio::test]
async fn the_sdk_feedback_stream_reads_both_lists() {
    let sandbox = start().await;
    let items: Vec<_> = client(&sandbox)
        .list_feedback()
        .limit(7)
        .items()
        .try_collect()
        .await
        .must("stream feedback");
    let counts = Raw::new(&sandbox).get("/feedback?limit=0").await.json();
    let positive = items
        .iter()
        .filter(|i| i.sentiment == Sentiment::Positive)
        .count();
    let negative = items
        .iter()
        .filter(|i| i.sentiment == Sentiment::Negative)
        .count();
    assert_eq!(
        Some(positive as u64),
        counts["positiveFeedbackCount"].as_u64()
    );
    assert_eq!(
        Some(negative as u64),
        counts["negativeFeedbackCount"].as_u64()
    );
}

#[tokio::test]
async fn feedback_is_logged_read_updated_and_deleted() {
    let sandbox = start().await;
    let client = client(&sandbox);
    let raw = Raw::new(&sandbox);
    let conversation = &all_conversations(&raw).await[0];
    let message_id = conversation["messages"][0]["id"].as_str().must("a message");

    let mut input = FeedbackInput::negative(message_id)
        .with_id("fb_mine")
        .must("an id");
    input.reasons = Some(vec![FeedbackReason {
        label: "inaccurate".into(),
        details: "Wrong limit".into(),
        extra: Default::default(),
    }]);
    let logged = client.log_feedback(input).await.must("log feedback");
    assert_eq!(logged.id, "fb_mine");
    let read = client.get_feedback("fb_mine").await.must("get feedback");
    assert_eq!(read.message_id, message_id);
    assert_eq!(read.conversation.id(), conversation["id"].as_str());

    // Recording again with the same id updates it: it moves to the positive list.
    let again = FeedbackInput::positive(message_id)
        .with_id("fb_mine")
        .must("an id");
    client.log_feedback(again).await.must("update feedback");
    let page = raw.get("/feedback?limit=100").await.json();
    assert!(ids(&page["positiveFeedback"]).contains(&"fb_mine".to_string()));
    assert!(!ids(&page["negativeFeedback"]).contains(&"fb_mine".to_string()));

    assert!(
        client
            .delete_feedback("fb_mine")
            .await
            .must("delete")
            .success
    );
    assert_problem(&raw.get("/feedback/fb_mine").await, 404, "not_found");
    assert_problem(&raw.delete("/feedback/fb_mine").await, 404, "not_found");

    let orphan = raw
        .post(
            "/feedback",
            r#"{"type":"positive","messageId":"msg_nowhere"}"#,
        )
        .await;
    let problem = assert_problem(&orphan, 422, "unprocessable_entity");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("msg_nowhere"))
    );
    let bad_type = raw
        .post(
            "/feedback",
            &format!(r#"{{"type":"meh","messageId":"{message_id}"}}"#),
        )
        .await;
    assert_problem(&bad_type, 422, "unprocessable_entity");
}

#[tokio::test]
async fn deleting_a_conversation_deletes_its_feedback() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let page = raw.get("/feedback?limit=1").await.json();
    let item = &page["positiveFeedback"][0];
    let feedback_id = item["id"].as_str().must("id");
    let conversation_id = item["conversation"]["id"].as_str().must("conversation");
    assert_eq!(
        raw.delete(&format!("/conversations/{conversation_id}"))
            .await
            .status,
        200
    );
    assert_problem(
        &raw.get(&format!("/feedback/{feedback_id}")).await,
        404,
        "not_found",
    );
    let after = raw.get("/feedback?limit=0").await.json();
    assert_eq!(
        after["positiveFeedbackCount"].as_u64(),
        page["positiveFeedbackCount"].as_u64().map(|n| n - 1)
    );
}

#[tokio::test]
async fn events_of_each_kind_are_logged_once_per_id() {
    let sandbox = start().await;
    let client = client(&sandbox);
    let shared = InsertConversationEvent::new("conv_x", "conversation_shared")
        .with_id("evt_mine")
        .must("an id");
    let first = client.log_event(shared.clone()).await.must("log event");
    let SelectEvent::Conversation(first) = first else {
        panic!("a conversation event: {first:?}");
    };
    assert_eq!(first.id, "evt_mine");
    assert_eq!(first.conversation_id, "conv_x");
    assert_eq!(first.type_, "conversation_shared");
    assert!(first.project_id.is_none());
    // Logging again with the same id returns the logged event unchanged.
    let again = client.log_event(shared).await.must("log again");
    let SelectEvent::Conversation(again) = again else {
        panic!("a conversation event: {again:?}");
    };
    assert_eq!(again.created_at, first.created_at);

    // Through the generated call: the SDK's own method would give the event a client id first.
    let message = client
        .generated()
        .log_event()
        .body(InsertEvent::message("msg_x", "message_copied"))
        .send()
        .await
        .map(|response| response.into_inner())
        .must("message event");
    assert!(
        matches!(message, SelectEvent::Message(ref m) if m.message_id == "msg_x" && m.id.starts_with("evt_"))
    );
    let search = client
        .log_event(InsertEvent::search("sandbox ✨", "search_performed"))
        .await
        .must("search event");
    assert!(matches!(search, SelectEvent::Search(ref s) if s.search_query == "sandbox ✨"));

    let raw = Raw::new(&sandbox);
    let rows = raw
        .post(
            "/query/events",
            r#"{"where":{"condition":{"field":"id","operator":"eq","value":"evt_mine"}}}"#,
        )
        .await
        .json();
    assert_eq!(rows["data"]["total"], 1);
    assert_eq!(rows["data"]["result"][0]["eventType"], "conversation");
    assert_eq!(rows["data"]["result"][0]["type"], "conversation_shared");

    for (body, mentioned) in [
        (r#"{"entityType":"message","type":"x"}"#, "messageId"),
        (r#"{"entityType":"planet","type":"x"}"#, "entityType"),
        (
            r#"{"entityType":"search","type":"","searchQuery":"q"}"#,
            "type",
        ),
    ] {
        let problem = assert_problem(
            &raw.post("/events", body).await,
            422,
            "unprocessable_entity",
        );
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains(mentioned)),
            "{problem}"
        );
    }
}
