//! `GET /conversations`: defaults, bounds, order, and every seeded kind decoding with the SDK.

use std::collections::HashSet;

use futures::TryStreamExt;
use inkeep_analytics::types::{Conversation, LinkType, Message, OpenAiMessageContent};

use crate::support::*;

#[tokio::test]
async fn the_default_page_is_20_conversations_newest_first() {
    let sandbox = start().await;
    let page = client(&sandbox)
        .list_conversations()
        .send()
        .await
        .must("list conversations");
    assert_eq!(page.conversations.len(), 20);
    assert_eq!(page.total.as_u64(), Some(250));
    assert_eq!(page.page_size.as_u64(), Some(20));
    assert_eq!(page.count.as_u64(), Some(20));

    let raw = Raw::new(&sandbox).get("/conversations").await.json();
    let created: Vec<&str> = raw["conversations"]
        .as_array()
        .must("conversations")
        .iter()
        .map(|c| c["createdAt"].as_str().must("createdAt"))
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
}

#[tokio::test]
async fn limit_and_offset_are_checked_against_the_documented_bounds() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);

    let empty = raw.get("/conversations?limit=0").await.json();
    assert_eq!(empty["conversations"].as_array().map(Vec::len), Some(0));
    assert_eq!(empty["pageSize"], 0);
    assert_eq!(empty["total"], 250);

    let full = raw.get("/conversations?limit=100&offset=0").await.json();
    assert_eq!(full["count"], 100);
    let tail = raw.get("/conversations?limit=100&offset=200").await.json();
    assert_eq!(tail["count"], 50);
    let past = raw.get("/conversations?offset=1000").await.json();
    assert_eq!(past["count"], 0);
    assert_eq!(past["total"], 250);

    // `null` and empty values mean the default, as the parameters are nullable.
    let defaulted = raw.get("/conversations?limit=null&offset=").await.json();
    assert_eq!(defaulted["pageSize"], 20);

    for query in [
        "limit=101",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "offset=-1",
        "offset=x",
    ] {
        let answer = raw.get(&format!("/conversations?{query}")).await;
        let problem = assert_problem(&answer, 400, "bad_request");
        let name = query.split('=').next().must("a name");
        assert!(
            problem["detail"].as_str().is_some_and(|d| d.contains(name)),
            "{query}: {problem}"
        );
    }
}

#[tokio::test]
async fn the_sdk_stream_reads_every_conversation_once() {
    let sandbox = start().await;
    let client = client(&sandbox);
    let ids: Vec<String> = client
        .list_conversations()
        .limit(37)
        .items()
        .map_ok(|c| c.id().map(str::to_string).unwrap_or_default())
        .try_collect()
        .await
        .must("stream every conversation");
    assert_eq!(ids.len(), 250);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 250);

    let raw_ids: Vec<String> = all_conversations(&Raw::new(&sandbox))
        .await
        .iter()
        .map(|c| c["id"].as_str().must("id").to_string())
        .collect();
    assert_eq!(ids, raw_ids);
}

#[tokio::test]
async fn seeded_data_has_variety_and_decodes_with_the_sdk() {
    let sandbox = start().await;
    let conversations: Vec<Conversation> = client(&sandbox)
        .list_conversations()
        .items()
        .try_collect()
        .await
        .must("decode every conversation");
    let (mut openai, mut tickets, mut copilot) = (0, 0, 0);
    let (mut tool_calls, mut images, mut unlisted_links, mut null_content) = (0, 0, 0, 0);
    for conversation in &conversations {
        match conversation {
            Conversation::OpenAi(c) => {
                openai += 1;
                assert_eq!(c.messages.len(), c.messages_open_ai_format.len());
            }
            Conversation::SupportTicket(_) => tickets += 1,
            Conversation::SupportCopilot(_) => copilot += 1,
            Conversation::Unknown(value) => panic!("an unknown kind: {value}"),
        }
        for message in conversation.messages() {
            match message {
                Message::OpenAi(m) => {
                    if m.tool_calls.as_ref().is_some_and(|calls| !calls.is_empty()) {
                        tool_calls += 1;
                    }
                    if matches!(m.content, Some(OpenAiMessageContent::Array(_))) {
                        images += 1;
                    }
                    let links = m.links.iter().flatten();
                    unlisted_links += links
                        .filter(|l| matches!(l.type_, Some(LinkType::Other(_))))
                        .count();
                }
                Message::SupportTicket(m) => null_content += usize::from(m.content.is_none()),
                Message::SupportCopilot(_) => {}
                Message::Unknown(value) => panic!("an unknown message kind: {value}"),
            }
        }
    }
    assert_eq!(conversations.len(), 250);
    assert!(
        openai > 100 && tickets > 30 && copilot > 15,
        "{openai} {tickets} {copilot}"
    );
    assert!(tool_calls > 0 && images > 0 && unlisted_links > 0 && null_content > 0);

    // Unicode and nulls survive the round trip.
    let raw = all_conversations(&Raw::new(&sandbox)).await;
    let text = serde_json::to_string(&raw).must("serialize");
    for needle in [
        "Zoë Müller",
        "Webhookの署名",
        "😩",
        "Иван",
        "\"externalId\":null",
    ] {
        assert!(text.contains(needle), "{needle}");
    }
    assert!(raw.iter().any(|c| c["userProperties"].is_null()));
    assert!(raw.iter().any(|c| c["properties"].is_null()));
    assert!(raw.iter().any(|c| c["tags"].is_null()));
    assert!(raw.iter().any(|c| c["userProperties"]["id"].is_number()));
    assert!(
        raw.iter()
            .any(|c| c["supportTicketConversationId"].is_string())
    );
}
