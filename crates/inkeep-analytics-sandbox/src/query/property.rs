//! The property look-ups: the keys used in `properties` or `userProperties`, and the values one
//! key takes, over the rows of several views that match a filter.

use std::collections::{BTreeSet, HashMap};

use inkeep_analytics::types;
use serde_json::Value;

use super::filter::{self, Filter};
use crate::problem::Problem;
use crate::store::Snapshot;
use crate::views::{Row, View};

/// A property request compiled against its views: every `4xx` comes from [`PropertyQuery::compile`].
pub(crate) struct PropertyQuery {
    /// The views the filter fits, with the filter compiled against each.
    views: Vec<(View, Option<Filter>)>,
}

impl PropertyQuery {
    /// Compiles the filter against each view. A filter applies to the views that have its
    /// fields; a view that lacks one has no rows that match. Only a filter that fits none of the
    /// views is refused, with the problem it has in the first.
    pub(crate) fn compile(
        views: &[View],
        filter: Option<&types::Filter>,
    ) -> Result<PropertyQuery, Problem> {
        let mut fitted = Vec::new();
        let mut first_error = None;
        for view in views {
            match filter
                .map(|f| filter::compile(*view, f, "where"))
                .transpose()
            {
                Ok(compiled) => fitted.push((*view, compiled)),
                Err(problem) => {
                    first_error.get_or_insert(problem);
                }
            }
        }
        match first_error {
            Some(problem) if fitted.is_empty() => Err(problem),
            _ => Ok(PropertyQuery { views: fitted }),
        }
    }

    fn rows(&self, snapshot: &Snapshot) -> Vec<Row> {
        let mut all = Vec::new();
        for (view, filter) in &self.views {
            all.extend(
                view.rows(snapshot)
                    .into_iter()
                    .filter(|row| filter.as_ref().is_none_or(|f| f.matches(row))),
            );
        }
        all
    }

    /// `POST /query/property-keys`: the keys used in `field` (`properties` or `userProperties`),
    /// sorted.
    pub(crate) fn keys(&self, snapshot: &Snapshot, field: &str) -> Vec<String> {
        let mut keys = BTreeSet::new();
        for row in self.rows(snapshot) {
            if let Some(Value::Object(map)) = row.get(field) {
                keys.extend(map.keys().cloned());
            }
        }
        keys.into_iter().collect()
    }

    /// `POST /query/property-values`: the values `field.key` takes, most frequent first, as
    /// strings.
    pub(crate) fn values(
        &self,
        snapshot: &Snapshot,
        field: &str,
        key: &str,
        limit: usize,
    ) -> Vec<String> {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for row in self.rows(snapshot) {
            let value = row.get(field).and_then(|object| object.get(key));
            let text = match value {
                None | Some(Value::Null) => continue,
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
            };
            *counts.entry(text).or_default() += 1;
        }
        let mut values: Vec<(String, usize)> = counts.into_iter().collect();
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        values.into_iter().take(limit).map(|(v, _)| v).collect()
    }
}
