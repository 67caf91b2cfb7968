//! Resources that help an assistant use the API well: the fields of each view, from the SDK's generated lists, and the query language with examples.

use inkeep_analytics::types::{
    AggregationFunction, ConversationsViewField, EventsViewField, FeedbackViewField,
    FilterOperator, SemanticThreadsViewField, TimeUnit, View,
};
use serde_json::{Value, json};

/// The URI of the query-language guide.
pub const QUERY_LANGUAGE_URI: &str = "inkeep-analytics://guide/query-language";

/// One view: its name in the API, the tool that queries it, and its fields.
struct ViewResource {
    view: &'static str,
    slug: &'static str,
    tool: &'static str,
    fields: &'static [&'static str],
}

fn views() -> [ViewResource; 4] {
    // Each `KNOWN` list is generated from the spec.
    [
        ViewResource {
            view: view_named("conversations_view"),
            slug: "conversations",
            tool: "query_conversations",
            fields: ConversationsViewField::KNOWN,
        },
        ViewResource {
            view: view_named("events_view"),
            slug: "events",
            tool: "query_events",
            fields: EventsViewField::KNOWN,
        },
        ViewResource {
            view: view_named("feedback_view"),
            slug: "feedback",
            tool: "query_feedback",
            fields: FeedbackViewField::KNOWN,
        },
        ViewResource {
            view: view_named("semantic_threads_view"),
            slug: "semantic-threads",
            tool: "query_semantic_threads",
            fields: SemanticThreadsViewField::KNOWN,
        },
    ]
}

/// The spec's `View` value of that name (a test checks that each one is there).
fn view_named(wanted: &'static str) -> &'static str {
    View::KNOWN
        .iter()
        .copied()
        .find(|known| *known == wanted)
        .unwrap_or(wanted)
}

/// Every resource: `(uri, name, description, mime type)`.
pub fn list() -> Vec<(String, String, String, &'static str)> {
    let mut resources: Vec<_> = views()
        .iter()
        .map(|view| {
            (
                format!("inkeep-analytics://views/{}", view.slug),
                format!("{} fields", view.view),
                format!(
                    "The fields of {} that {} can select, group, filter and order by.",
                    view.view, view.tool
                ),
                "application/json",
            )
        })
        .collect();
    resources.push((
        QUERY_LANGUAGE_URI.to_string(),
        "query language".to_string(),
        "How to write the body of a query tool: selections, grouping, filters, ordering, with examples.".to_string(),
        "text/markdown",
    ));
    resources
}

/// The text of the resource at `uri`.
pub fn read(uri: &str) -> Option<(String, &'static str)> {
    if uri == QUERY_LANGUAGE_URI {
        return Some((query_language(), "text/markdown"));
    }
    let slug = uri.strip_prefix("inkeep-analytics://views/")?;
    let view = views().into_iter().find(|view| view.slug == slug)?;
    let json_fields: Vec<&str> = ["properties", "userProperties"]
        .into_iter()
        .filter(|field| view.fields.contains(field))
        .collect();
    let document: Value = json!({
        "view": view.view,
        "tool": view.tool,
        "fields": view.fields,
        "jsonFields": json_fields,
        "orderBy": "a field, `<field>_<hour|day|week|month>` for a time bucket, or `<aggregation>_<field>` for an aggregate",
    });
    Some((document.to_string(), "application/json"))
}

fn query_language() -> String {
    let list = |items: &[&str]| {
        items
            .iter()
            .map(|item| format!("`{item}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = String::from(
        "# The query language of Inkeep Analytics\n\n\
         The arguments of `query_conversations`, `query_events`, `query_feedback` and `query_semantic_threads` are the query body itself.\n\
         Every part is optional: `{}` returns the view's rows.\n\n\
         - `select`: a list of selections, each one of\n  \
           `{\"type\": \"field\", \"field\": F}`, `{\"type\": \"aggregation\", \"aggregation\": A, \"field\": F}` or `{\"type\": \"time\", \"timeUnit\": U, \"field\": F}`.\n\
         - `groupBy`: a list of `{\"field\": F}` (add `\"path\": [\"key\"]` for a key inside `properties` or `userProperties`).\n\
         - `where`: a filter, `{\"condition\": {\"field\": F, \"operator\": O, \"value\": V}}`, or `{\"and\": [filters]}`, or `{\"or\": [filters]}`; a value inside a JSON field is `{\"path\": [\"key\"], \"value\": V}`.\n\
         - `orderBy`: a list of `{\"field\": F, \"direction\": \"asc\" | \"desc\"}`; an aggregate orders as `<aggregation>_<field>` (such as `count_id`), a time bucket as `<field>_<unit>`.\n\
         - `query` (semantic threads only): a semantic search.\n\n",
    );
    text.push_str(&format!(
        "Aggregations: {}.\n\n",
        list(AggregationFunction::KNOWN)
    ));
    text.push_str(&format!("Time units: {}.\n\n", list(TimeUnit::KNOWN)));
    text.push_str(&format!("Operators: {}.\n\n", list(FilterOperator::KNOWN)));
    text.push_str(
        "The fields of each view are the resources `inkeep-analytics://views/<view>`:\n\n",
    );
    for view in views() {
        text.push_str(&format!(
            "- {} (`{}`): {}\n",
            view.view,
            view.tool,
            list(view.fields)
        ));
    }
    text.push_str(
        "\n## Examples\n\n\
         Conversations per type, most first (`query_conversations`):\n\n\
         ```json\n{\"select\": [{\"type\": \"field\", \"field\": \"type\"}, {\"type\": \"aggregation\", \"aggregation\": \"count\", \"field\": \"id\"}], \"groupBy\": [{\"field\": \"type\"}], \"orderBy\": [{\"field\": \"count_id\", \"direction\": \"desc\"}]}\n```\n\n\
         Conversations per month (`query_conversations`):\n\n\
         ```json\n{\"select\": [{\"type\": \"time\", \"timeUnit\": \"month\", \"field\": \"firstMessageTime\"}, {\"type\": \"aggregation\", \"aggregation\": \"count\", \"field\": \"id\"}], \"groupBy\": [{\"field\": \"firstMessageTime_month\"}]}\n```\n\n\
         Negative feedback with its details (`query_feedback`):\n\n\
         ```json\n{\"select\": [{\"type\": \"field\", \"field\": \"details\"}, {\"type\": \"field\", \"field\": \"reasons\"}], \"where\": {\"condition\": {\"field\": \"type\", \"operator\": \"eq\", \"value\": \"negative\"}}}\n```\n\n\
         Conversations of users on one plan (`query_conversations`, a key inside `userProperties`):\n\n\
         ```json\n{\"where\": {\"condition\": {\"field\": \"userProperties\", \"operator\": \"jsonContains\", \"value\": {\"plan\": \"enterprise\"}}}}\n```\n\n\
         Questions the documentation does not answer (`query_semantic_threads`):\n\n\
         ```json\n{\"select\": [{\"type\": \"field\", \"field\": \"question\"}, {\"type\": \"field\", \"field\": \"gapSummary\"}], \"where\": {\"condition\": {\"field\": \"isDocumented\", \"operator\": \"eq\", \"value\": false}}}\n```\n\n\
         Which values a property takes: `query_property_keys` with `{\"field\": \"properties\"}`, then `query_property_values` with `{\"field\": \"properties\", \"key\": \"<key>\"}`.\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_view_resource_lists_the_generated_fields() {
        let (text, _) = read("inkeep-analytics://views/semantic-threads").expect("a view resource");
        let document: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(document["fields"], json!(SemanticThreadsViewField::KNOWN));
        assert_eq!(document["view"], "semantic_threads_view");
        for (uri, ..) in list() {
            assert!(read(&uri).is_some(), "{uri} is listed but cannot be read");
        }
        assert!(read("inkeep-analytics://views/nothing").is_none());
        for view in views() {
            assert!(
                View::KNOWN.contains(&view.view),
                "{} is not a view of the spec",
                view.view
            );
        }
    }
}
