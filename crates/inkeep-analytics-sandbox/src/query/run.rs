//! The second step of a query: a compiled query runs over the rows of its view, filtering,
//! grouping, aggregating and ordering them. Nothing here can fail: every problem of the body was
//! found when it was compiled.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use inkeep_analytics::types::SemanticThreadsViewField;
use serde_json::Value;

use super::Table;
use super::compile::{CompiledQuery, SortKey};
use super::select::Output;
use super::values::SortValue;
use crate::views::{Row, ViewField};

impl CompiledQuery {
    /// Runs the query over the rows of its view (newest first), giving the result rows in order.
    pub(crate) fn run(&self, rows: Vec<Row>) -> Table {
        let rows: Vec<Row> = rows
            .into_iter()
            .filter(|row| self.filter.as_ref().is_none_or(|f| f.matches(row)))
            .filter(|row| self.search_terms.is_empty() || matches_search(row, &self.search_terms))
            .collect();

        // Result rows, with the rows of the view each came from (for ordering by their fields).
        let (mut columns, mut result, sources): (Vec<String>, Vec<Row>, Vec<Vec<usize>>) = if self
            .grouped
        {
            let mut order: Vec<(Vec<Value>, Vec<usize>)> = Vec::new();
            let mut index: HashMap<String, usize> = HashMap::new();
            for (i, row) in rows.iter().enumerate() {
                let values: Vec<Value> = self.groups.iter().map(|g| g.output.value(row)).collect();
                let key = Value::Array(values.clone()).to_string();
                let slot = *index.entry(key).or_insert_with(|| {
                    order.push((values, Vec::new()));
                    order.len() - 1
                });
                if let Some((_, members)) = order.get_mut(slot) {
                    members.push(i);
                }
            }
            if order.is_empty() && self.groups.is_empty() {
                // An aggregate without grouping has one row, even over no rows (`count` is 0).
                order.push((Vec::new(), Vec::new()));
            }
            let mut columns: Vec<String> = Vec::new();
            for group in &self.groups {
                if group.include && !columns.contains(&group.output.key().to_string()) {
                    columns.push(group.output.key().to_string());
                }
            }
            for output in &self.outputs {
                if !columns.contains(&output.key().to_string()) {
                    columns.push(output.key().to_string());
                }
            }
            let mut result = Vec::with_capacity(order.len());
            let mut sources = Vec::with_capacity(order.len());
            for (values, members) in order {
                let mut out = Row::new();
                for (group, value) in self.groups.iter().zip(values) {
                    out.insert(group.output.key().to_string(), value);
                }
                for output in &self.outputs {
                    if let Output::Aggregate {
                        key,
                        function,
                        target,
                    } = output
                    {
                        let value =
                            function.apply(members.iter().filter_map(|i| rows.get(*i)).map(
                                |row| match target {
                                    Some(target) => target.get(row),
                                    None => Some(&Value::Bool(true)),
                                },
                            ));
                        out.insert(key.clone(), value);
                    }
                }
                result.push(out);
                sources.push(members);
            }
            (columns, result, sources)
        } else if self.outputs.is_empty() {
            let columns = self
                .view
                .fields()
                .iter()
                .map(|f| (*f).to_string())
                .collect();
            let sources = (0..rows.len()).map(|i| vec![i]).collect();
            (columns, rows.clone(), sources)
        } else {
            let mut columns: Vec<String> = Vec::new();
            let mut seen: HashSet<String> = HashSet::new();
            let mut result = Vec::with_capacity(rows.len());
            for row in &rows {
                let mut out = Row::new();
                for output in &self.outputs {
                    let value = output.value(row);
                    match (output, value) {
                        (
                            Output::Field {
                                key, unpack: true, ..
                            },
                            Value::Object(map),
                        ) => {
                            for (sub, value) in map {
                                let column = format!("{key}.{sub}");
                                if seen.insert(column.clone()) {
                                    columns.push(column.clone());
                                }
                                out.insert(column, value);
                            }
                        }
                        // Unpacking null gives no columns: there is nothing to unpack.
                        (Output::Field { unpack: true, .. }, Value::Null) => {}
                        (output, value) => {
                            if seen.insert(output.key().to_string()) {
                                columns.push(output.key().to_string());
                            }
                            out.insert(output.key().to_string(), value);
                        }
                    }
                }
                result.push(out);
            }
            let sources = (0..rows.len()).map(|i| vec![i]).collect();
            (columns, result, sources)
        };

        if !self.order.is_empty() {
            let sort_values: Vec<Vec<Option<SortValue>>> = result
                .iter()
                .zip(&sources)
                .map(|(out, members)| {
                    let source = members.first().and_then(|i| rows.get(*i));
                    self.order
                        .iter()
                        .map(|(key, _)| match key {
                            SortKey::Column(name) => out.get(name).and_then(SortValue::of),
                            SortKey::Source(target) => source
                                .and_then(|row| target.get(row))
                                .and_then(SortValue::of),
                            SortKey::SourceTime(field, unit) => source
                                .and_then(|row| SortValue::of(&unit.bucket_value(row.get(field)))),
                        })
                        .collect()
                })
                .collect();
            let mut order: Vec<usize> = (0..result.len()).collect();
            order.sort_by(|a, b| {
                for (k, (_, descending)) in self.order.iter().enumerate() {
                    let x = sort_values
                        .get(*a)
                        .and_then(|v| v.get(k))
                        .and_then(Option::as_ref);
                    let y = sort_values
                        .get(*b)
                        .and_then(|v| v.get(k))
                        .and_then(Option::as_ref);
                    // Nulls last, whichever the direction.
                    let ordering = match (x, y) {
                        (None, None) => Ordering::Equal,
                        (None, Some(_)) => Ordering::Greater,
                        (Some(_), None) => Ordering::Less,
                        (Some(x), Some(y)) if *descending => y.total_cmp(x),
                        (Some(x), Some(y)) => x.total_cmp(y),
                    };
                    if ordering != Ordering::Equal {
                        return ordering;
                    }
                }
                Ordering::Equal
            });
            let mut slots: Vec<Option<Row>> = result.into_iter().map(Some).collect();
            result = order
                .into_iter()
                .filter_map(|i| slots.get_mut(i).and_then(Option::take))
                .collect();
        }
        // Group columns that are not to be selected were kept only for ordering.
        for group in self.groups.iter().filter(|g| !g.include) {
            let key = group.output.key();
            if !self.outputs.iter().any(|o| o.key() == key) {
                for row in &mut result {
                    row.remove(key);
                }
                columns.retain(|c| c != key);
            }
        }
        Table {
            columns,
            rows: result,
        }
    }
}

/// The semantic search of the semantic threads view: a thread matches when its question,
/// answer, subject or category contains any of the search's words.
fn matches_search(row: &Row, terms: &[String]) -> bool {
    let text: String = [
        SemanticThreadsViewField::Question,
        SemanticThreadsViewField::Answer,
        SemanticThreadsViewField::Subject,
        SemanticThreadsViewField::Category,
    ]
    .iter()
    .filter_map(|field| row.get(field.name()).and_then(Value::as_str))
    .collect::<Vec<_>>()
    .join(" ")
    .to_lowercase();
    terms.iter().any(|term| text.contains(term.as_str()))
}
