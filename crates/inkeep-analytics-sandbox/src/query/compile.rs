//! The first step of a query: its body is checked against its view once (fields, operators,
//! value types, selections, grouping and ordering), so that every `4xx` is decided before a row is
//! read, and what is left to run cannot fail.

use std::collections::HashSet;

use inkeep_analytics::types;

use super::fields::{Target, target};
use super::filter::{self, Filter};
use super::select::{Output, Unit, compile_selection, is_aggregate_column, time_column};
use crate::problem::Problem;
use crate::views::View;

/// The parts of a query body that every view shares.
pub(crate) struct QuerySpec {
    pub select: Vec<types::Selection>,
    pub group_by: Vec<types::GroupBy>,
    pub filter: Option<types::Filter>,
    pub order_by: Vec<types::OrderBy>,
    /// The semantic search of the semantic threads view.
    pub search: Option<String>,
}

macro_rules! spec_from {
    ($($body:ty),*) => {$(
        impl From<$body> for QuerySpec {
            fn from(body: $body) -> Self {
                QuerySpec {
                    select: body.select,
                    group_by: body.group_by,
                    filter: body.where_,
                    order_by: body.order_by,
                    search: None,
                }
            }
        }
    )*};
}

spec_from!(
    types::QueryConversationsBody,
    types::QueryEventsBody,
    types::QueryFeedbackBody
);

impl From<types::QuerySemanticThreadsBody> for QuerySpec {
    fn from(body: types::QuerySemanticThreadsBody) -> Self {
        QuerySpec {
            select: body.select,
            group_by: body.group_by,
            filter: body.where_,
            order_by: body.order_by,
            search: body.query,
        }
    }
}

/// A column rows are grouped by.
pub(super) struct GroupColumn {
    pub(super) output: Output,
    /// Whether it is a column of the result (`includeInSelect`), or only groups.
    pub(super) include: bool,
}

/// What a result is ordered by.
pub(super) enum SortKey {
    /// A column of the result.
    Column(String),
    /// A value of the view row a result row comes from.
    Source(Target),
    /// The time bucket of a field of the view row a result row comes from.
    SourceTime(String, Unit),
}

/// A query checked against its view, ready to run over that view's rows.
pub(crate) struct CompiledQuery {
    pub(super) view: View,
    pub(super) filter: Option<Filter>,
    /// The lower-case words of the semantic search; empty when there is none.
    pub(super) search_terms: Vec<String>,
    pub(super) outputs: Vec<Output>,
    /// With the non-aggregate selections added when the query groups.
    pub(super) groups: Vec<GroupColumn>,
    /// Whether result rows are groups (an aggregate is selected, or `groupBy` is given).
    pub(super) grouped: bool,
    /// Each ordering key, and whether it is descending.
    pub(super) order: Vec<(SortKey, bool)>,
}

impl CompiledQuery {
    /// Checks a query body against its view; every problem of the body is found here.
    pub(crate) fn compile(view: View, spec: &QuerySpec) -> Result<CompiledQuery, Problem> {
        let filter = spec
            .filter
            .as_ref()
            .map(|f| filter::compile(view, f, "where"))
            .transpose()?;
        let outputs = spec
            .select
            .iter()
            .enumerate()
            .map(|(i, s)| compile_selection(view, s, &format!("select[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let mut groups: Vec<GroupColumn> = Vec::new();
        for (i, group) in spec.group_by.iter().enumerate() {
            let location = format!("groupBy[{i}].field");
            let output = match time_column(view, &group.field) {
                Some((field, unit)) if group.path.is_empty() => Output::Time {
                    key: group.field.clone(),
                    field,
                    unit,
                },
                _ => {
                    let target = target(view, &group.field, &group.path, &location)?;
                    Output::Field {
                        key: target.key(),
                        target,
                        unpack: false,
                    }
                }
            };
            groups.push(GroupColumn {
                output,
                include: group.include_in_select != Some(false),
            });
        }
        let directions = spec
            .order_by
            .iter()
            .enumerate()
            .map(|(i, order)| match &order.direction {
                types::SortDirection::Asc => Ok(false),
                types::SortDirection::Desc => Ok(true),
                types::SortDirection::Other(name) => Err(Problem::unprocessable(format!(
                    "orderBy[{i}].direction: `{name}` is not `asc` or `desc`"
                ))),
            })
            .collect::<Result<Vec<bool>, _>>()?;
        let search_terms: Vec<String> = spec
            .search
            .as_deref()
            .unwrap_or_default()
            .to_lowercase()
            .split_whitespace()
            .map(str::to_string)
            .collect();

        let aggregated = outputs
            .iter()
            .any(|o| matches!(o, Output::Aggregate { .. }));
        let grouped = aggregated || !groups.is_empty();
        if grouped {
            // A selected field of a grouped query groups too.
            for output in &outputs {
                if !matches!(output, Output::Aggregate { .. })
                    && !groups.iter().any(|g| g.output.key() == output.key())
                {
                    groups.push(GroupColumn {
                        output: output.clone(),
                        include: true,
                    });
                }
            }
        }
        // The columns a result row has whatever the data: in a grouped result, every group and
        // aggregate; otherwise the selected columns, except those that unpack into sub-columns
        // (a sub-column such as `properties.plan` is ordered by as the path it is).
        let columns: HashSet<&str> = if grouped {
            groups
                .iter()
                .map(|g| g.output.key())
                .chain(outputs.iter().map(Output::key))
                .collect()
        } else {
            outputs
                .iter()
                .filter(|o| !matches!(o, Output::Field { unpack: true, .. }))
                .map(Output::key)
                .collect()
        };
        let mut order = Vec::with_capacity(spec.order_by.len());
        for ((i, order_by), descending) in spec.order_by.iter().enumerate().zip(directions) {
            let name = order_by.field.as_str();
            let location = format!("orderBy[{i}].field");
            let key = if columns.contains(name) {
                SortKey::Column(name.to_string())
            } else if let Ok(target) = target(view, name, &[], &location) {
                if grouped {
                    return Err(Problem::unprocessable(format!(
                        "{location}: `{name}` is not in the grouped result; group by it or select it to order by it"
                    )));
                }
                SortKey::Source(target)
            } else if let Some((field, unit)) = time_column(view, name) {
                if grouped {
                    return Err(Problem::unprocessable(format!(
                        "{location}: the time bucket `{name}` is not in the grouped result; select it to order by it"
                    )));
                }
                SortKey::SourceTime(field, unit)
            } else if is_aggregate_column(view, name) {
                return Err(Problem::unprocessable(format!(
                    "{location}: the aggregate `{name}` is not selected; select it to order by it"
                )));
            } else {
                return Err(Problem::unprocessable(format!(
                    "{location}: `{name}` is not a field of {}, a time bucket `<field>_<hour|day|week|month>` or an aggregate `<sum|count|countDistinct|avg|min|max>_<field>` of the query",
                    view.wire_name()
                )));
            };
            order.push((key, descending));
        }
        Ok(CompiledQuery {
            view,
            filter,
            search_terms,
            outputs,
            groups,
            grouped,
            order,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn compile(view: View, body: serde_json::Value) -> Result<CompiledQuery, Problem> {
        let body: types::QueryConversationsBody =
            serde_json::from_value(body).unwrap_or_else(|e| panic!("a query body: {e}"));
        CompiledQuery::compile(view, &body.into())
    }

    fn detail(result: Result<CompiledQuery, Problem>) -> String {
        match result {
            Ok(_) => panic!("the query compiled"),
            Err(problem) => {
                assert_eq!(problem.status.as_u16(), 422, "{}", problem.detail);
                problem.detail
            }
        }
    }

    #[test]
    fn every_problem_of_a_body_is_found_without_data() {
        let condition = |field: &str, operator: &str, value: serde_json::Value| json!({"where": {"condition": {"field": field, "operator": operator, "value": value}}});
        let cases = [
            (condition("nope", "eq", json!(1)), "where.condition.field"),
            (
                condition("type", "resembles", json!("x")),
                "where.condition.operator",
            ),
            (
                condition("userMessageCount", "gt", json!("many")),
                "a number to compare with `userMessageCount`",
            ),
            (
                condition("firstMessageTime", "lt", json!("yesterday")),
                "a date-time",
            ),
            (condition("type", "in", json!("openai")), "an array"),
            (
                json!({"select": [{"type": "aggregation", "aggregation": "sum"}]}),
                "select[0].field",
            ),
            (
                json!({"select": [{"type": "time", "timeUnit": "day", "field": "type"}]}),
                "not a date-time field",
            ),
            (json!({"groupBy": [{"field": "nope"}]}), "groupBy[0].field"),
            (
                json!({"orderBy": [{"field": "type", "direction": "sideways"}]}),
                "orderBy[0].direction",
            ),
            (
                json!({"groupBy": [{"field": "type"}], "orderBy": [{"field": "id", "direction": "asc"}]}),
                "not in the grouped result",
            ),
            (
                json!({"orderBy": [{"field": "count_id", "direction": "asc"}]}),
                "the aggregate `count_id` is not selected",
            ),
        ];
        for (body, expected) in cases {
            let detail = detail(compile(View::Conversations, body.clone()));
            assert!(detail.contains(expected), "{body}: {detail}");
        }
    }

    #[test]
    fn a_compiled_query_runs_over_rows_in_the_order_given() {
        let compiled = compile(
            View::Conversations,
            json!({
                "select": [
                    {"type": "aggregation", "aggregation": "count", "field": "id"},
                    {"type": "field", "field": "type"}
                ],
                "where": {"condition": {"field": "userMessageCount", "operator": "gte", "value": "1"}},
                "orderBy": [{"field": "count_id", "direction": "desc"}]
            }),
        )
        .unwrap_or_else(|problem| panic!("{}", problem.detail));
        let row = |id: &str, kind: &str, count: u64| {
            let mut row = crate::views::Row::new();
            row.insert("id".into(), json!(id));
            row.insert("type".into(), json!(kind));
            row.insert("userMessageCount".into(), json!(count));
            row
        };
        let table = compiled.run(vec![
            row("a", "openai", 1),
            row("b", "support_ticket", 2),
            row("c", "support_ticket", 3),
            row("d", "openai", 0),
        ]);
        assert_eq!(table.columns, ["type", "count_id"]);
        let rows: Vec<serde_json::Value> = table
            .rows
            .into_iter()
            .map(serde_json::Value::Object)
            .collect();
        assert_eq!(
            rows,
            [
                json!({"type": "support_ticket", "count_id": 2}),
                json!({"type": "openai", "count_id": 1}),
            ]
        );
    }
}
