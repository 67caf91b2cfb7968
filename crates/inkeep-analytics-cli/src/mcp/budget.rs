//! Keeps each tool result within what an assistant can hold: compacted first, then cut, with a note naming the arguments that fetch the rest.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The default budget of one result, in characters (about 25,000 tokens).
pub const DEFAULT_BUDGET: usize = 100_000;

/// A message list longer than this is summarised in listings: its first and last messages stay.
const LONG_MESSAGE_LIST: usize = 6;
/// How many messages stay at each end of a summarised list.
const MESSAGES_KEPT_AT_EACH_END: usize = 2;
/// Room kept for the continuation note besides the arguments it repeats, so that the result
/// and its note fit together.
const NOTE_ROOM: usize = 600;

/// How a tool's result continues past a cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging {
    /// The API pages with `offset` (and `limit`): the rest is the next offset.
    Offset,
    /// The server skips `resultOffset` items of the answer's lists itself.
    Skip,
}

/// The name of the argument the server uses for [`Paging::Skip`].
pub const RESULT_OFFSET: &str = "resultOffset";

/// A result ready for the client: the text, the structured content when it is JSON, and whether it was cut.
#[derive(Debug)]
pub struct Shaped {
    /// The result as text (JSON or CSV), within the budget.
    pub text: String,
    /// The same JSON as structured content, with `_continuation` when cut.
    pub structured: Option<Value>,
    /// The note on how to fetch the rest, when cut.
    pub note: Option<String>,
}

/// Drops nulls everywhere, and shortens the long message lists of records inside a result (the
/// conversations of a listing, the conversation of a feedback item) to their ends with counts,
/// leaving out their OpenAI-format copy. A conversation asked for by itself keeps all its messages.
pub fn compact(value: &mut Value) {
    compact_at(value, true);
}

fn compact_at(value: &mut Value, root: bool) {
    match value {
        Value::Object(object) => {
            object.retain(|_, member| !member.is_null());
            if !root {
                summarise_messages(object);
            }
            for member in object.values_mut() {
                compact_at(member, false);
            }
        }
        Value::Array(items) => {
            for item in items {
                compact_at(item, false);
            }
        }
        _ => {}
    }
}

fn summarise_messages(object: &mut Map<String, Value>) {
    let Some(Value::Array(messages)) = object.get_mut("messages") else {
        return;
    };
    let count = messages.len();
    let mut roles: BTreeMap<String, u64> = BTreeMap::new();
    for message in messages.iter() {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        *roles.entry(role.to_string()).or_default() += 1;
    }
    if count > LONG_MESSAGE_LIST {
        let tail = messages.split_off(count - MESSAGES_KEPT_AT_EACH_END);
        messages.truncate(MESSAGES_KEPT_AT_EACH_END);
        messages.extend(tail);
        object.insert(
            "messagesSummary".into(),
            json!({
                "count": count,
                "byRole": roles,
                "shown": "the first and last two; get_conversation returns them all",
            }),
        );
    }
    // The same messages again in OpenAI's shape: the first thing to leave out of a listing.
    object.remove("messagesOpenAIFormat");
}

/// The lists a result can be cut in: arrays at its top and under its `data`.
fn list_paths(value: &Value) -> Vec<Vec<&'static str>> {
    let mut paths = Vec::new();
    let mut visit = |object: &Map<String, Value>, prefix: Option<&'static str>| {
        for (key, member) in object {
            if member.is_array() {
                let key: &'static str = match key.as_str() {
                    "conversations" => "conversations",
                    "positiveFeedback" => "positiveFeedback",
                    "negativeFeedback" => "negativeFeedback",
                    "result" => "result",
                    "results" => "results",
                    "messages" => "messages",
                    "messagesOpenAIFormat" => "messagesOpenAIFormat",
                    _ => continue,
                };
                paths.push(prefix.into_iter().chain([key]).collect());
            }
        }
    };
    if let Some(object) = value.as_object() {
        visit(object, None);
        if let Some(data) = object.get("data").and_then(Value::as_object) {
            visit(data, Some("data"));
        }
    }
    paths
}

fn list_mut<'a>(value: &'a mut Value, path: &[&str]) -> Option<&'a mut Vec<Value>> {
    let mut current = value;
    for key in path {
        current = current.get_mut(*key)?;
    }
    current.as_array_mut()
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// Shapes a JSON result: skips `skip` items of its lists, then keeps as many items as fit in `budget`.
/// `arguments` are the call's own; the note gives them back with the offset of the rest.
pub fn shape_json(
    tool: &str,
    mut value: Value,
    budget: usize,
    paging: Paging,
    skip: usize,
    arguments: &Map<String, Value>,
) -> Shaped {
    let paths = list_paths(&value);
    let mut longest = 0;
    for path in &paths {
        if let Some(list) = list_mut(&mut value, path) {
            if paging == Paging::Skip {
                list.drain(..skip.min(list.len()));
            }
            longest = longest.max(list.len());
        }
    }
    let whole = value.to_string();
    if chars(&whole) <= budget {
        return Shaped {
            text: whole,
            structured: Some(value),
            note: None,
        };
    }
    // The arguments appear twice in a cut result: in the note and in `_continuation`.
    let room = NOTE_ROOM + 2 * chars(&Value::Object(arguments.clone()).to_string());
    let fits = |kept: usize| {
        let mut candidate = value.clone();
        for path in &paths {
            if let Some(list) = list_mut(&mut candidate, path) {
                list.truncate(kept);
            }
        }
        let text = candidate.to_string();
        (chars(&text) + room <= budget).then_some(candidate)
    };
    // The largest number of items per list that fits, by bisection (sizes grow with it).
    let (mut low, mut high) = (0usize, longest);
    let mut best = None;
    while low <= high && !paths.is_empty() {
        let middle = low + (high - low) / 2;
        match fits(middle) {
            Some(found) => {
                best = Some((middle, found));
                low = middle + 1;
            }
            None if middle == 0 => break,
            None => high = middle - 1,
        }
    }
    match best {
        Some((kept, mut candidate)) if kept > 0 => {
            let start = if paging == Paging::Skip { skip } else { 0 };
            let mut next = arguments.clone();
            let (key, from) = match paging {
                Paging::Offset => {
                    let offset = arguments.get("offset").and_then(Value::as_u64).unwrap_or(0);
                    ("offset", offset as usize + kept)
                }
                Paging::Skip => (RESULT_OFFSET, skip + kept),
            };
            next.insert(key.into(), json!(from));
            let note = format!(
                "This result was cut to stay within {budget} characters: each list shows {kept} of its {shown} items (from item {start}). \
                 Call {tool} with {} for the rest.",
                Value::Object(next.clone()),
                shown = longest,
            );
            if let Some(object) = candidate.as_object_mut() {
                object.insert(
                    "_continuation".into(),
                    json!({"cut": true, "shown": kept, "available": longest, "nextArguments": next}),
                );
            }
            // The text is the structured content, as MCP asks of a tool that returns both.
            Shaped {
                text: candidate.to_string(),
                structured: Some(candidate),
                note: Some(note),
            }
        }
        _ => {
            // One record larger than the budget: its text, cut, is all that can be shown.
            let text: String = whole
                .chars()
                .take(budget.saturating_sub(NOTE_ROOM))
                .collect();
            Shaped {
                text,
                structured: None,
                note: Some(format!(
                    "This result is larger than {budget} characters even with one item per list; its JSON text was cut and is incomplete."
                )),
            }
        }
    }
}

/// Shapes a CSV export: skips `skip` records, then keeps the header and as many records as fit.
pub fn shape_csv(
    tool: &str,
    bytes: &[u8],
    budget: usize,
    skip: usize,
    arguments: &Map<String, Value>,
) -> Result<Shaped, csv::Error> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let header = records.next().transpose()?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    if let Some(header) = &header {
        writer.write_record(header)?;
    }
    let mut kept = 0usize;
    let mut total = 0usize;
    let mut cut = false;
    let mut text_len = 0usize;
    for record in records {
        let record = record?;
        total += 1;
        if total <= skip || cut {
            continue;
        }
        let mut line = csv::Writer::from_writer(Vec::new());
        line.write_record(&record)?;
        let line = line.into_inner().map_err(|error| error.into_error())?;
        let line_len = String::from_utf8_lossy(&line).chars().count();
        if text_len + line_len + NOTE_ROOM > budget && kept > 0 {
            cut = true;
            continue;
        }
        writer.write_record(&record)?;
        text_len += line_len;
        kept += 1;
    }
    let bytes = writer.into_inner().map_err(|error| error.into_error())?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let note = cut.then(|| {
        let mut next = arguments.clone();
        next.insert(RESULT_OFFSET.into(), json!(skip + kept));
        format!(
            "This CSV was cut to stay within {budget} characters: it shows records {} to {} of {total}. Call {tool} with {} for the rest.",
            skip + 1,
            skip + kept,
            Value::Object(next),
        )
    });
    Ok(Shaped {
        text,
        structured: None,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacting_drops_nulls_and_summarises_long_message_lists() {
        let messages: Vec<Value> = (0..9)
            .map(|i| json!({"id": format!("m{i}"), "role": if i % 2 == 0 { "user" } else { "assistant" }, "name": null}))
            .collect();
        let mut value = json!({"conversations": [{"id": "c", "externalId": null, "messages": messages, "messagesOpenAIFormat": []}]});
        compact(&mut value);
        let conversation = &value["conversations"][0];
        assert!(conversation.get("externalId").is_none());
        assert!(conversation.get("messagesOpenAIFormat").is_none());
        let ids: Vec<&str> = conversation["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str())
            .collect();
        assert_eq!(ids, ["m0", "m1", "m7", "m8"]);
        assert_eq!(conversation["messagesSummary"]["count"], 9);
        assert_eq!(conversation["messagesSummary"]["byRole"]["user"], 5);
        assert!(conversation["messages"][0].get("name").is_none());
    }

    #[test]
    fn a_cut_keeps_what_fits_and_names_the_next_offset() {
        let rows: Vec<Value> = (0..100)
            .map(|i| json!({"id": i, "text": "x".repeat(50)}))
            .collect();
        let value = json!({"status": "ok", "data": {"result": rows, "total": 100}});
        let mut arguments = Map::new();
        arguments.insert("select".into(), json!([]));
        let shaped = shape_json("query_events", value, 3_000, Paging::Skip, 10, &arguments);
        let note = shaped.note.clone().unwrap_or_default();
        assert!(shaped.text.chars().count() + note.chars().count() <= 3_000);
        assert_eq!(
            serde_json::from_str::<Value>(&shaped.text).ok(),
            shaped.structured,
            "the text is the structured content"
        );
        let structured = shaped.structured.expect("JSON stays structured");
        let rows = structured["data"]["result"].as_array().expect("rows");
        assert_eq!(rows[0]["id"], 10, "the skipped rows are gone");
        let next = &structured["_continuation"]["nextArguments"];
        assert_eq!(next["resultOffset"], json!(10 + rows.len()));
        assert_eq!(next["select"], json!([]));
        assert!(
            shaped
                .note
                .is_some_and(|note| note.contains("resultOffset"))
        );
    }

    #[test]
    fn a_csv_cut_keeps_its_header_and_whole_records() {
        let mut csv = String::from("id,text\n");
        for i in 0..50 {
            csv.push_str(&format!("{i},\"two\nlines\"\n"));
        }
        let shaped = shape_csv("export", csv.as_bytes(), 800, 5, &Map::new()).expect("valid CSV");
        assert!(
            shaped.text.starts_with("id,text\n5,\"two\nlines\"\n"),
            "{}",
            shaped.text
        );
        assert!(
            shaped
                .note
                .is_some_and(|note| note.contains("\"resultOffset\":"))
        );
    }
}
