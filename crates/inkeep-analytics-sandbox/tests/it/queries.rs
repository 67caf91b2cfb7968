//! The query operations: every operator, selection kind, grouping and ordering, checked against
//! the seeded data, and the CSV export, property look-ups and search statistics.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::TryStreamExt;
use inkeep_analytics::types::{QueryConversationsBody, QueryEventsBody};
use serde_json::{Value, json};

use crate::support::*;

/// Runs a query and returns `data`.
async fn query(raw: &Raw, view: &str, body: Value) -> Value {
    let answer = raw.post(&format!("/query/{view}"), &body.to_string()).await;
    assert_eq!(answer.status, 200, "{body}: {}", answer.text());
    let json = answer.json();
    assert_eq!(json["status"], "ok");
    let data = json["data"].clone();
    assert_eq!(data["pageSize"], 1000);
    assert_eq!(
        data["count"].as_u64(),
        data["result"].as_array().map(|r| r.len() as u64)
    );
    data
}

fn rows(data: &Value) -> Vec<Value> {
    data["result"].as_array().cloned().unwrap_or_default()
}

/// Every row of a view, unfiltered.
async fn all_rows(raw: &Raw, view: &str) -> Vec<Value> {
    let data = query(raw, view, json!({})).await;
    let rows = rows(&data);
    assert_eq!(data["total"].as_u64(), Some(rows.len() as u64));
    rows
}

fn ids(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r["id"].as_str().must("id").to_string())
        .collect()
}

/// The ids a filter selects, as the sandbox answers them.
async fn filtered(raw: &Raw, view: &str, filter: Value) -> BTreeSet<String> {
    let data = query(raw, view, json!({"where": filter})).await;
    ids(&rows(&data))
}

fn condition(field: &str, operator: &str, value: Value) -> Value {
    json!({"condition": {"field": field, "operator": operator, "value": value}})
}

fn expect(rows: &[Value], keep: impl Fn(&Value) -> bool) -> BTreeSet<String> {
    let kept: Vec<Value> = rows.iter().filter(|r| keep(r)).cloned().collect();
    ids(&kept)
}

/// Asserts the sandbox's answer to a filter is the expected, non-trivial, subset.
async fn check(raw: &Raw, view: &str, all: &[Value], filter: Value, keep: impl Fn(&Value) -> bool) {
    let expected = expect(all, keep);
    let got = filtered(raw, view, filter.clone()).await;
    assert!(
        !expected.is_empty() && expected.len() < all.len(),
        "{filter} should select some rows, not all: {}",
        expected.len()
    );
    assert_eq!(got, expected, "{filter}");
}

#[tokio::test]
async fn comparison_and_list_operators_filter_the_conversations_view() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let all = all_rows(&raw, "conversations").await;
    assert_eq!(all.len(), 250);

    // The view agrees with the conversations themselves.
    let conversations = all_conversations(&raw).await;
    for conversation in &conversations {
        let row = all
            .iter()
            .find(|r| r["id"] == conversation["id"])
            .must("a row");
        assert_eq!(row["type"], conversation["type"]);
        assert_eq!(
            row["firstMessageTime"],
            conversation["messages"][0]["createdAt"]
        );
        assert_eq!(row["userProperties"], conversation["userProperties"]);
        let users = conversation["messages"]
            .as_array()
            .must("messages")
            .iter()
            .filter(|m| m["role"] == "user" || m["role"] == "customer")
            .count();
        assert_eq!(row["userMessageCount"], users);
    }

    let plan = |r: &Value| r["properties"]["plan"].as_str().map(str::to_string);
    check(
        &raw,
        "conversations",
        &all,
        condition("type", "eq", json!("openai")),
        |r| r["type"] == "openai",
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition("type", "neq", json!("openai")),
        |r| r["type"] != "openai",
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition("userMessageCount", "gt", json!(1)),
        |r| r["userMessageCount"].as_u64() > Some(1),
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition("userMessageCount", "gte", json!(2)),
        |r| r["userMessageCount"].as_u64() >= Some(2),
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition("userMessageCount", "lt", json!(2)),
        |r| r["userMessageCount"].as_u64() < Some(2),
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition("userMessageCount", "lte", json!(1)),
        |r| r["userMessageCount"].as_u64() <= Some(1),
    )
    .await;
    // Date-times compare as instants, whatever their form.
    check(
        &raw,
        "conversations",
        &all,
        condition("firstMessageTime", "lt", json!("2025-03-01")),
        |r| r["firstMessageTime"].as_str() < Some("2025-03-01T00:00:00.000Z"),
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition(
            "firstMessageTime",
            "gte",
            json!("2025-05-01T00:00:00+00:00"),
        ),
        |r| r["firstMessageTime"].as_str() >= Some("2025-05-01T00:00:00.000Z"),
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition("type", "in", json!(["support_ticket", "support_copilot"])),
        |r| r["type"] != "openai",
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition("type", "notIn", json!(["openai", "support_copilot"])),
        |r| r["type"] == "support_ticket",
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        json!({"condition": {"field": "userProperties", "operator": "isNull"}}),
        |r| r["userProperties"].is_null(),
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        json!({"condition": {"field": "userProperties", "operator": "isNotNull"}}),
        |r| !r["userProperties"].is_null(),
    )
    .await;
    // A JSON path goes in the value, as `{path, value}`.
    check(
        &raw,
        "conversations",
        &all,
        condition(
            "properties",
            "eq",
            json!({"path": ["plan"], "value": "pro"}),
        ),
        |r| plan(r).as_deref() == Some("pro"),
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition(
            "properties",
            "in",
            json!({"path": ["plan"], "value": ["free", "enterprise"]}),
        ),
        |r| matches!(plan(r).as_deref(), Some("free" | "enterprise")),
    )
    .await;
    check(
        &raw,
        "conversations",
        &all,
        condition(
            "properties",
            "gt",
            json!({"path": ["pageViews"], "value": 20}),
        ),
        |r| r["properties"]["pageViews"].as_u64() > Some(20),
    )
    .await;
    check(&raw, "conversations", &all, json!({"condition": {"field": "properties", "operator": "isNull", "value": {"path": ["referrer"]}}}), |r| {
        r["properties"]["referrer"].is_null()
    })
    .await;
    // A numeric user id matches its string form.
    let numeric = all
        .iter()
        .find_map(|r| r["userProperties"]["userId"].as_u64())
        .must("a numeric user id");
    check(
        &raw,
        "conversations",
        &all,
        condition(
            "userProperties",
            "eq",
            json!({"path": ["userId"], "value": numeric.to_string()}),
        ),
        |r| r["userProperties"]["userId"].as_u64() == Some(numeric),
    )
    .await;
    // Nested and/or.
    check(
        &raw,
        "conversations",
        &all,
        json!({"and": [
            condition("type", "eq", json!("openai")),
            {"or": [
                condition("properties", "eq", json!({"path": ["plan"], "value": "pro"})),
                condition("properties", "eq", json!({"path": ["abTest", "variant"], "value": "B"})),
            ]},
        ]}),
        |r| {
            r["type"] == "openai"
                && (plan(r).as_deref() == Some("pro")
                    || r["properties"]["abTest"]["variant"] == "B")
        },
    )
    .await;
}

#[tokio::test]
async fn json_operators_filter_the_views() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let conversations = all_rows(&raw, "conversations").await;
    let has = |r: &Value, key: &str| r["properties"].get(key).is_some();
    check(
        &raw,
        "conversations",
        &conversations,
        condition(
            "userProperties",
            "jsonContains",
            json!({"userType": "internal"}),
        ),
        |r| r["userProperties"]["userType"] == "internal",
    )
    .await;
    check(
        &raw,
        "conversations",
        &conversations,
        condition(
            "properties",
            "jsonContains",
            json!({"abTest": {"variant": "A"}}),
        ),
        |r| r["properties"]["abTest"]["variant"] == "A",
    )
    .await;
    check(
        &raw,
        "conversations",
        &conversations,
        condition("properties", "jsonHasKey", json!("abTest")),
        |r| has(r, "abTest"),
    )
    .await;
    check(
        &raw,
        "conversations",
        &conversations,
        condition("properties", "jsonHasAnyKey", json!(["abTest", "referrer"])),
        |r| has(r, "abTest") || has(r, "referrer"),
    )
    .await;
    check(
        &raw,
        "conversations",
        &conversations,
        condition(
            "properties",
            "jsonHasAllKeys",
            json!(["abTest", "pageViews"]),
        ),
        |r| has(r, "abTest") && has(r, "pageViews"),
    )
    .await;
    check(
        &raw,
        "conversations",
        &conversations,
        condition(
            "properties",
            "jsonContainedBy",
            json!({"source": "zendesk", "locale": "en-US", "plan": "pro", "pageViews": 3}),
        ),
        |r| {
            r["properties"].as_object().is_some_and(|p| {
                p.iter().all(|(k, v)| match k.as_str() {
                    "source" => v == "zendesk",
                    "locale" => v == "en-US",
                    "plan" => v == "pro",
                    "pageViews" => v == 3,
                    _ => false,
                })
            })
        },
    )
    .await;

    let feedback = all_rows(&raw, "feedback").await;
    check(
        &raw,
        "feedback",
        &feedback,
        condition("sources", "jsonArrayContainsObject", json!({"type": "new"})),
        |r| {
            r["sources"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x["type"] == "new"))
        },
    )
    .await;
    check(
        &raw,
        "feedback",
        &feedback,
        condition(
            "reasons",
            "jsonArrayContainsObject",
            json!({"label": "outdated"}),
        ),
        |r| {
            r["reasons"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x["label"] == "outdated"))
        },
    )
    .await;

    let threads = all_rows(&raw, "semantic-threads").await;
    check(
        &raw,
        "semantic-threads",
        &threads,
        condition("firstPartyEntities", "arrayContains", json!("Webhooks")),
        |r| {
            r["firstPartyEntities"]
                .as_array()
                .is_some_and(|e| e.contains(&json!("Webhooks")))
        },
    )
    .await;
    check(
        &raw,
        "semantic-threads",
        &threads,
        condition("languages", "arrayContains", json!(["ja"])),
        |r| r["languages"] == json!(["ja"]),
    )
    .await;
    check(
        &raw,
        "semantic-threads",
        &threads,
        condition("isDocumented", "eq", json!(false)),
        |r| r["isDocumented"] == false,
    )
    .await;

    let events = all_rows(&raw, "events").await;
    check(
        &raw,
        "events",
        &events,
        condition("eventType", "eq", json!("search")),
        |r| r["eventType"] == "search",
    )
    .await;
    check(
        &raw,
        "events",
        &events,
        condition("searchQuery", "eq", json!("Webhook 署名")),
        |r| r["searchQuery"] == "Webhook 署名",
    )
    .await;
    check(
        &raw,
        "events",
        &events,
        condition(
            "properties",
            "gte",
            json!({"path": ["resultCount"], "value": 6}),
        ),
        |r| r["properties"]["resultCount"].as_u64() >= Some(6),
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_and_operators_are_422_with_a_clear_detail() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let cases = [
        (
            "conversations",
            condition("type", "like", json!("open%")),
            "`like` is not a supported operator",
        ),
        (
            "conversations",
            condition("colour", "eq", json!("red")),
            "`colour` is not a field of conversations_view",
        ),
        (
            "events",
            condition("userMessageCount", "eq", json!(1)),
            "where.condition.field",
        ),
        (
            "conversations",
            condition("id", "eq", json!({"path": ["a"], "value": 1})),
            "not a JSON field",
        ),
        (
            "conversations",
            condition("type", "in", json!("openai")),
            "an array",
        ),
        (
            "conversations",
            condition("properties", "jsonHasKey", json!(1)),
            "a key",
        ),
        (
            "feedback",
            condition("sources", "jsonArrayContainsObject", json!("new")),
            "an object",
        ),
        (
            "conversations",
            json!({"and": [{"or": [condition("type", "between", json!(1))]}]}),
            "where.and[0].or[0].condition.operator",
        ),
    ];
    for (view, filter, mentioned) in cases {
        let body = json!({"where": filter}).to_string();
        let answer = raw.post(&format!("/query/{view}"), &body).await;
        let problem = assert_problem(&answer, 422, "unprocessable_entity");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains(mentioned)),
            "{body}: {problem}"
        );
    }
    let selections = [
        (
            json!({"select": [{"type": "aggregation", "aggregation": "median", "field": "id"}]}),
            "median",
        ),
        (
            json!({"select": [{"type": "aggregation", "aggregation": "sum"}]}),
            "needs a field",
        ),
        (
            json!({"select": [{"type": "time", "timeUnit": "fortnight"}]}),
            "fortnight",
        ),
        (
            json!({"select": [{"type": "time", "timeUnit": "day", "field": "type"}]}),
            "not a date-time field",
        ),
        (
            json!({"select": [{"type": "field", "field": "nope"}]}),
            "select[0].field",
        ),
        (json!({"select": [{"type": "pivot"}]}), "select[0].type"),
        (json!({"groupBy": [{"field": "nope"}]}), "groupBy[0].field"),
        (
            json!({"orderBy": [{"field": "nope", "direction": "asc"}]}),
            "orderBy[0].field",
        ),
        (
            json!({"orderBy": [{"field": "id", "direction": "sideways"}]}),
            "sideways",
        ),
        (
            json!({"select": [{"type": "field", "field": "type"}], "groupBy": [{"field": "type"}], "orderBy": [{"field": "count", "direction": "asc"}]}),
            "not selected",
        ),
    ];
    for (body, mentioned) in selections {
        let answer = raw.post("/query/conversations", &body.to_string()).await;
        let problem = assert_problem(&answer, 422, "unprocessable_entity");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains(mentioned)),
            "{body}: {problem}"
        );
    }
    // Shapes the spec forbids fail in the generated types: still a 422 naming the place.
    let answer = raw
        .post(
            "/query/conversations",
            r#"{"notes":"x","select":[{"type":"field"}]}"#,
        )
        .await;
    let problem = assert_problem(&answer, 422, "unprocessable_entity");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("select")),
        "{problem}"
    );
    let long_notes = json!({"notes": "n".repeat(81)}).to_string();
    assert_problem(
        &raw.post("/query/events", &long_notes).await,
        422,
        "unprocessable_entity",
    );
    assert_problem(&raw.post("/query/events", "{").await, 400, "bad_request");
}

#[tokio::test]
async fn aggregations_group_and_order_the_seeded_data() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let conversations = all_conversations(&raw).await;
    let client = client(&sandbox);

    // `count` without a field counts rows, and an aggregate without grouping is one row.
    let body: QueryConversationsBody = serde_json::from_value(json!({
        "select": [{"type": "aggregation", "aggregation": "count"}],
    }))
    .must("a body");
    let response = client.query_conversations(body).await.must("count");
    assert_eq!(response.data.result.len(), 1);
    assert_eq!(response.data.result[0].get_u64("count"), Some(250));

    // Grouped by type, ordered by the count.
    let data = query(&raw, "conversations", json!({
        "select": [{"type": "field", "field": "type"}, {"type": "aggregation", "aggregation": "count"}],
        "groupBy": [{"field": "type"}],
        "orderBy": [{"field": "count", "direction": "desc"}],
    }))
    .await;
    let mut expected: HashMap<String, u64> = HashMap::new();
    for c in &conversations {
        *expected
            .entry(c["type"].as_str().must("type").to_string())
            .or_default() += 1;
    }
    let result = rows(&data);
    assert_eq!(result.len(), 3);
    for row in &result {
        assert_eq!(
            row["count"].as_u64(),
            expected.get(row["type"].as_str().must("type")).copied()
        );
    }
    let counts: Vec<u64> = result.iter().filter_map(|r| r["count"].as_u64()).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");

    // sum, avg, min, max and countDistinct over JSON paths.
    let data = query(&raw, "conversations", json!({
        "select": [
            {"type": "aggregation", "aggregation": "sum", "field": "properties", "path": ["pageViews"]},
            {"type": "aggregation", "aggregation": "avg", "field": "properties", "path": ["pageViews"]},
            {"type": "aggregation", "aggregation": "min", "field": "properties", "path": ["pageViews"]},
            {"type": "aggregation", "aggregation": "max", "field": "properties", "path": ["pageViews"]},
            {"type": "aggregation", "aggregation": "count", "field": "properties", "path": ["pageViews"]},
            {"type": "aggregation", "aggregation": "countDistinct", "field": "userProperties", "path": ["userId"]},
            {"type": "aggregation", "aggregation": "max", "field": "firstMessageTime"},
        ],
    }))
    .await;
    let row = &rows(&data)[0];
    let views: Vec<u64> = conversations
        .iter()
        .filter_map(|c| c["properties"]["pageViews"].as_u64())
        .collect();
    let sum: u64 = views.iter().sum();
    assert_eq!(row["sum_properties.pageViews"].as_u64(), Some(sum));
    let avg = row["avg_properties.pageViews"].as_f64().must("avg");
    assert!((avg - sum as f64 / views.len() as f64).abs() < 1e-9);
    assert_eq!(
        row["min_properties.pageViews"].as_u64(),
        views.iter().min().copied()
    );
    assert_eq!(
        row["max_properties.pageViews"].as_u64(),
        views.iter().max().copied()
    );
    assert_eq!(
        row["count_properties.pageViews"].as_u64(),
        Some(views.len() as u64)
    );
    let users: BTreeSet<String> = conversations
        .iter()
        .filter(|c| !c["userProperties"]["userId"].is_null())
        .map(|c| c["userProperties"]["userId"].to_string())
        .collect();
    assert_eq!(
        row["countDistinct_userProperties.userId"].as_u64(),
        Some(users.len() as u64)
    );
    let newest = conversations
        .iter()
        .filter_map(|c| c["messages"][0]["createdAt"].as_str())
        .max()
        .must("a newest");
    assert_eq!(row["max_firstMessageTime"].as_str(), Some(newest));

    // A filter and a group by a JSON path, with `includeInSelect: false`.
    let data = query(
        &raw,
        "conversations",
        json!({
            "select": [{"type": "aggregation", "aggregation": "count"}],
            "groupBy": [{"field": "properties", "path": ["plan"], "includeInSelect": false}],
            "where": condition("type", "eq", json!("openai")),
            "orderBy": [{"field": "properties.plan", "direction": "asc"}],
        }),
    )
    .await;
    let result = rows(&data);
    assert!(
        result
            .iter()
            .all(|r| r.get("properties.plan").is_none() && r["count"].is_u64())
    );
    let mut plans: BTreeMap<Option<String>, u64> = BTreeMap::new();
    for c in conversations.iter().filter(|c| c["type"] == "openai") {
        *plans
            .entry(c["properties"]["plan"].as_str().map(str::to_string))
            .or_default() += 1;
    }
    // Ascending by plan, with the conversations without a plan (null) last.
    let mut expected: Vec<u64> = plans
        .iter()
        .filter(|(k, _)| k.is_some())
        .map(|(_, v)| *v)
        .collect();
    expected.extend(plans.get(&None).copied());
    let got: Vec<u64> = result.iter().filter_map(|r| r["count"].as_u64()).collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn time_buckets_fields_and_ordering() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let conversations = all_conversations(&raw).await;

    // A time selection without a field buckets the view's time field.
    let data = query(&raw, "conversations", json!({
        "select": [{"type": "time", "timeUnit": "month"}, {"type": "aggregation", "aggregation": "count"}],
        "orderBy": [{"field": "firstMessageTime_month", "direction": "asc"}],
    }))
    .await;
    let months = rows(&data);
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for c in &conversations {
        let first = c["messages"][0]["createdAt"].as_str().must("createdAt");
        *expected
            .entry(format!("{}-01T00:00:00.000Z", &first[..7]))
            .or_default() += 1;
    }
    let got: BTreeMap<String, u64> = months
        .iter()
        .map(|r| {
            (
                r["firstMessageTime_month"]
                    .as_str()
                    .must("bucket")
                    .to_string(),
                r["count"].as_u64().must("count"),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let order: Vec<&str> = months
        .iter()
        .filter_map(|r| r["firstMessageTime_month"].as_str())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]));

    // Weeks start on Monday; days and hours truncate.
    for (unit, check) in [
        (
            "week",
            (|b: &str| b.ends_with("T00:00:00.000Z")) as fn(&str) -> bool,
        ),
        ("day", |b: &str| b.ends_with("T00:00:00.000Z")),
        ("hour", |b: &str| b.ends_with(":00:00.000Z")),
    ] {
        let data = query(&raw, "events", json!({
            "select": [{"type": "time", "timeUnit": unit, "field": "createdAt"}, {"type": "aggregation", "aggregation": "count", "field": "id"}],
        }))
        .await;
        let buckets = rows(&data);
        let key = format!("createdAt_{unit}");
        let total: u64 = buckets.iter().filter_map(|r| r["count_id"].as_u64()).sum();
        let events = query(&raw, "events", json!({})).await["total"].as_u64();
        assert_eq!(Some(total), events, "{unit}");
        for bucket in &buckets {
            let start = bucket[&key].as_str().must("a bucket");
            assert!(check(start), "{unit}: {start}");
            if unit == "week" {
                let date =
                    chrono::NaiveDate::parse_from_str(&start[..10], "%Y-%m-%d").must("a date");
                assert_eq!(chrono::Datelike::weekday(&date), chrono::Weekday::Mon);
            }
        }
    }

    // Field selections: a path gives a dotted key; `unpack` spreads an object into columns.
    let data = query(&raw, "conversations", json!({
        "select": [
            {"type": "field", "field": "id"},
            {"type": "field", "field": "properties", "path": ["plan"]},
            {"type": "field", "field": "userProperties", "mode": "unpack"},
        ],
        "orderBy": [{"field": "userMessageCount", "direction": "desc"}, {"field": "id", "direction": "asc"}],
    }))
    .await;
    let result = rows(&data);
    assert_eq!(result.len(), 250);
    let first = &result[0];
    assert!(first.get("properties.plan").is_some());
    assert!(
        result
            .iter()
            .any(|r| r.get("userProperties.email").is_some())
    );
    assert!(
        result
            .iter()
            .all(|r| r.get("userProperties").is_none() && r.get("type").is_none())
    );
    // Ordered by a field that is not selected, then by id.
    let count_of = |id: &Value| {
        conversations
            .iter()
            .find(|c| c["id"] == *id)
            .map(|c| {
                c["messages"].as_array().map_or(0, |m| {
                    m.iter()
                        .filter(|m| m["role"] == "user" || m["role"] == "customer")
                        .count()
                })
            })
            .must("a conversation")
    };
    let keys: Vec<(usize, String)> = result
        .iter()
        .map(|r| (count_of(&r["id"]), r["id"].as_str().must("id").to_string()))
        .collect();
    assert!(
        keys.windows(2)
            .all(|w| w[0].0 > w[1].0 || (w[0].0 == w[1].0 && w[0].1 < w[1].1))
    );

    // Without an order, rows come newest first.
    let events = rows(&query(&raw, "events", json!({})).await);
    let times: Vec<&str> = events
        .iter()
        .filter_map(|e| e["createdAt"].as_str())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));
}

#[tokio::test]
async fn semantic_threads_derive_from_conversations_and_search() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let threads = all_rows(&raw, "semantic-threads").await;
    assert!(threads.len() >= 240, "{}", threads.len());
    for thread in &threads {
        assert_eq!(
            thread["questionLength"].as_u64(),
            thread["question"]
                .as_str()
                .map(|q| q.chars().count() as u64)
        );
        assert_eq!(thread["organizationId"], "org_sandbox");
    }
    let data = query(&raw, "semantic-threads", json!({"query": "webhook"})).await;
    let found = rows(&data);
    assert!(!found.is_empty() && found.len() < threads.len());
    for thread in &found {
        let text = ["question", "answer", "subject", "category"]
            .iter()
            .filter_map(|f| thread[*f].as_str())
            .collect::<String>()
            .to_lowercase();
        assert!(text.contains("webhook"), "{thread}");
    }
    // A thread knows about the feedback on its conversation.
    let negative = raw.get("/feedback?limit=1").await.json();
    let conversation = negative["negativeFeedback"][0]["conversation"]["id"].clone();
    let thread = threads
        .iter()
        .find(|t| t["conversationIds"][0] == conversation)
        .must("the thread of a conversation with negative feedback");
    assert_eq!(thread["hasNegativeFeedback"], true);
    assert_eq!(thread["sentiment"], "negative");
}

/// A small RFC 4180 reader for the tests.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    records
}

#[tokio::test]
async fn exports_are_the_query_rows_as_csv() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let body = json!({
        "select": [
            {"type": "field", "field": "id"},
            {"type": "field", "field": "userProperties", "path": ["company"]},
            {"type": "field", "field": "userProperties"},
            {"type": "field", "field": "userMessageCount"},
        ],
        "where": condition("type", "neq", json!("support_copilot")),
    });
    let json_rows = rows(&query(&raw, "conversations", body.clone()).await);
    let answer = raw
        .post("/query/conversations/export", &body.to_string())
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let text = answer.text();
    assert!(text.ends_with("\r\n"));
    let records = parse_csv(&text);
    assert_eq!(
        records[0],
        [
            "id",
            "userProperties.company",
            "userProperties",
            "userMessageCount"
        ]
    );
    assert_eq!(records.len(), json_rows.len() + 1);
    for (record, row) in records[1..].iter().zip(&json_rows) {
        assert_eq!(record[0], row["id"].as_str().must("id"));
        assert_eq!(
            record[1],
            row["userProperties.company"].as_str().unwrap_or("")
        );
        let user: Value = if record[2].is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&record[2]).must("JSON in a cell")
        };
        assert_eq!(user, row["userProperties"]);
        assert_eq!(record[3], row["userMessageCount"].to_string());
    }
    // Commas and quotes are quoted.
    assert!(
        text.contains("\"Smith, Jones & Co\"") || text.contains("\"O'Brien \"\"Quoted\"\" Ltd\"")
    );

    // The SDK streams the same bytes.
    let events: QueryEventsBody = serde_json::from_value(json!({
        "select": [{"type": "field", "field": "searchQuery"}, {"type": "aggregation", "aggregation": "count"}],
        "groupBy": [{"field": "searchQuery"}],
        "where": condition("eventType", "eq", json!("search")),
        "orderBy": [{"field": "count", "direction": "desc"}, {"field": "searchQuery", "direction": "asc"}],
    }))
    .must("a body");
    let chunks: Vec<bytes::Bytes> = client(&sandbox)
        .export_events_query_results(events.clone())
        .await
        .must("export")
        .try_collect()
        .await
        .must("read the export");
    let streamed: Vec<u8> = chunks.concat();
    let direct = raw
        .post(
            "/query/events/export",
            &serde_json::to_string(&events).must("body"),
        )
        .await;
    assert_eq!(streamed, direct.body);
    let records = parse_csv(&String::from_utf8(streamed).must("UTF-8"));
    assert_eq!(records[0], ["searchQuery", "count"]);
    assert!(records[1..].iter().any(|r| r[0] == "Webhook 署名"));
}

#[tokio::test]
async fn property_keys_and_values() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let keys = raw
        .post(
            "/query/property-keys",
            r#"{"field":"properties","views":["conversations_view"]}"#,
        )
        .await
        .json();
    let keys: Vec<&str> = keys["results"]
        .as_array()
        .must("results")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for key in ["abTest", "locale", "pageViews", "plan", "source"] {
        assert!(keys.contains(&key), "{key} in {keys:?}");
    }
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    let all_views = raw
        .post("/query/property-keys", r#"{"field":"properties"}"#)
        .await
        .json();
    let all_keys = all_views["results"].as_array().must("results");
    assert!(all_keys.contains(&json!("resultCount")) && all_keys.contains(&json!("widget")));

    let filtered = raw
        .post(
            "/query/property-keys",
            r#"{"field":"userProperties","views":["conversations_view"],"where":{"condition":{"field":"type","operator":"eq","value":"support_copilot"}}}"#,
        )
        .await
        .json();
    assert!(
        filtered["results"]
            .as_array()
            .must("results")
            .contains(&json!("supportAgentName"))
    );
    assert!(
        !filtered["results"]
            .as_array()
            .must("results")
            .contains(&json!("email"))
    );

    let values = raw
        .post(
            "/query/property-values",
            r#"{"field":"properties","key":"plan","views":["conversations_view"]}"#,
        )
        .await
        .json();
    let values: BTreeSet<&str> = values["results"]
        .as_array()
        .must("results")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(values, BTreeSet::from(["enterprise", "free", "pro"]));
    let top = raw
        .post(
            "/query/property-values",
            r#"{"field":"properties","key":"plan","views":["conversations_view"],"limit":1}"#,
        )
        .await
        .json();
    // "pro" is drawn twice as often as the others.
    assert_eq!(top["results"], json!(["pro"]));
    let numbers = raw
        .post("/query/property-values", r#"{"field":"properties","key":"pageViews","views":["conversations_view"],"limit":500}"#)
        .await
        .json();
    assert!(
        numbers["results"]
            .as_array()
            .must("results")
            .iter()
            .all(|v| v.as_str().is_some_and(|s| s.parse::<u64>().is_ok()))
    );

    // Over every view, a filter applies to the views that have its fields.
    let typed = raw
        .post(
            "/query/property-keys",
            r#"{"field":"userProperties","where":{"condition":{"field":"type","operator":"eq","value":"support_copilot"}}}"#,
        )
        .await
        .json();
    assert_eq!(typed["results"], filtered["results"]);
    let unknown = raw
        .post(
            "/query/property-keys",
            r#"{"field":"properties","where":{"condition":{"field":"colour","operator":"eq","value":"red"}}}"#,
        )
        .await;
    assert_problem(&unknown, 422, "unprocessable_entity");

    for body in [
        r#"{"field":"tags"}"#,
        r#"{"field":"properties","views":["nope_view"]}"#,
        r#"{"field":"properties","key":"k","limit":0}"#,
    ] {
        let path = if body.contains("key") {
            "/query/property-values"
        } else {
            "/query/property-keys"
        };
        assert_problem(&raw.post(path, body).await, 422, "unprocessable_entity");
    }
}

#[tokio::test]
async fn search_statistics_count_search_events() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let client = client(&sandbox);
    let events = all_rows(&raw, "events").await;
    let searches: Vec<&Value> = events
        .iter()
        .filter(|e| e["eventType"] == "search")
        .collect();

    let top = client
        .top_search_queries(None, None)
        .await
        .must("top search queries");
    let mut expected: HashMap<&str, u64> = HashMap::new();
    for e in &searches {
        *expected
            .entry(e["searchQuery"].as_str().must("query"))
            .or_default() += 1;
    }
    assert_eq!(top.data.total.as_u64(), Some(expected.len() as u64));
    let counts: Vec<u64> = top
        .data
        .result
        .iter()
        .map(|r| r.count.parse::<u64>().must("a string of digits"))
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]));
    for row in &top.data.result {
        assert_eq!(
            Some(row.count.parse::<u64>().must("digits")),
            expected.get(row.search_query.as_str()).copied()
        );
    }

    let after = client
        .top_search_queries(Some("2025-05-01"), Some("proj_sandbox"))
        .await
        .must("after a date");
    let later: u64 = after
        .data
        .result
        .iter()
        .map(|r| r.count.parse::<u64>().unwrap_or(0))
        .sum();
    let expected_later = searches
        .iter()
        .filter(|e| {
            e["createdAt"].as_str() > Some("2025-05-01T00:00:00.000Z")
                && e["projectId"] == "proj_sandbox"
        })
        .count() as u64;
    assert_eq!(later, expected_later);
    assert!(later > 0 && later < counts.iter().sum::<u64>());
    let other = client
        .top_search_queries(None, Some("proj_other"))
        .await
        .must("another project");
    assert!(other.data.result.is_empty());
    assert_problem(
        &raw.get("/query/top-search-queries?after=last%20tuesday")
            .await,
        400,
        "bad_request",
    );

    let weekly = client
        .weekly_search_users(None, None)
        .await
        .must("weekly search users");
    assert!(weekly.data.result.len() > 20);
    assert_eq!(
        weekly.data.total.as_u64(),
        Some(weekly.data.result.len() as u64)
    );
    for week in &weekly.data.result {
        let date = chrono::NaiveDate::parse_from_str(&week.week, "%Y-%m-%d").must("a date");
        assert_eq!(chrono::Datelike::weekday(&date), chrono::Weekday::Mon);
        assert!(week.unique_users.parse::<u64>().must("digits") >= 1);
    }
}

/// `limit` of `POST /query/property-values` is 1 to 1000 (the API's reference page).
#[tokio::test]
async fn property_values_limit_is_one_to_a_thousand() {
    let sandbox = start().await;
    let raw = Raw::new(&sandbox);
    let body = |limit: u64| {
        json!({"field": "properties", "key": "plan", "views": ["conversations_view"], "limit": limit})
            .to_string()
    };
    let most = raw.post("/query/property-values", &body(1000)).await;
    assert_eq!(most.status, 200, "{}", most.text());
    let over = raw.post("/query/property-values", &body(1001)).await;
    let problem = assert_problem(&over, 422, "unprocessable_entity");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("1000")),
        "{problem}"
    );
    let zero = raw.post("/query/property-values", &body(0)).await;
    assert_problem(&zero, 422, "unprocessable_entity");
}
