//! The values of a row a query names: a field of the view, and a path into it for JSON fields.

use serde_json::Value;

use crate::ingest::list;
use crate::problem::Problem;
use crate::views::{Row, View};

/// A value of a row: a field of the view, and a path inside it for JSON fields.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    field: String,
    path: Vec<String>,
}

impl Target {
    pub(super) fn get<'a>(&self, row: &'a Row) -> Option<&'a Value> {
        let mut value = row.get(&self.field)?;
        for segment in &self.path {
            value = match value {
                Value::Object(map) => map.get(segment)?,
                Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        (!value.is_null()).then_some(value)
    }

    /// The field of the view, when the target is the whole field (no path into it).
    pub(super) fn whole_field(&self) -> Option<&str> {
        self.path.is_empty().then_some(self.field.as_str())
    }

    /// The column name: the field, then the path joined with dots (`properties.plan`).
    pub(super) fn key(&self) -> String {
        let mut key = self.field.clone();
        for segment in &self.path {
            key.push('.');
            key.push_str(segment);
        }
        key
    }
}

pub(super) fn unknown_field(view: View, field: &str, location: &str) -> Problem {
    Problem::unprocessable(format!(
        "{location}: `{field}` is not a field of {}; its fields are {}",
        view.wire_name(),
        list(view.fields())
    ))
}

/// Resolves a field and a path; a dotted name such as `properties.plan` is a path too.
pub(super) fn target(
    view: View,
    field: &str,
    path: &[String],
    location: &str,
) -> Result<Target, Problem> {
    let (field, mut full_path) = if view.has_field(field) {
        (field.to_string(), Vec::new())
    } else if let Some((head, rest)) = field.split_once('.')
        && view.json_fields().contains(&head)
        && !rest.is_empty()
    {
        (
            head.to_string(),
            rest.split('.').map(str::to_string).collect(),
        )
    } else {
        return Err(unknown_field(view, field, location));
    };
    if !path.is_empty() && !view.json_fields().contains(&field.as_str()) {
        return Err(Problem::unprocessable(format!(
            "{location}: `{field}` is not a JSON field of {}, so a path cannot reach into it; the JSON fields are {}",
            view.wire_name(),
            list(&view.json_fields())
        )));
    }
    full_path.extend(path.iter().cloned());
    Ok(Target {
        field,
        path: full_path,
    })
}
