//! Rules the spec must follow for the generated client to be correct and forward compatible.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heck::ToSnakeCase;
use inkeep_analytics_codegen::{SPEC_PATH, client_method_name, parse_spec};
use openapiv3::{
    AdditionalProperties, OpenAPI, Operation, ReferenceOr, Response, Schema, SchemaKind,
    StatusCode, Type,
};

use crate::read;

/// The schema every error status must use.
const PROBLEM_REF: &str = "#/components/schemas/Problem";
const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

/// Lints the workspace's spec against the tests under `tests/`.
pub fn lint_workspace(root: &Path) -> Result<(), String> {
    let spec_text = read(&root.join(SPEC_PATH))?;
    let tests = test_sources(&root.join("tests"))?;
    let problems = lint(&spec_text, &tests);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "lint: {SPEC_PATH} breaks {} rule(s):\n{}",
            problems.len(),
            problems
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        ))
    }
}

/// Every `.rs` file below `dir`, with its text.
fn test_sources(dir: &Path) -> Result<Vec<(PathBuf, String)>, String> {
    let mut sources = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry
                .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
                .path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = read(&path)?;
                sources.push((path, text));
            }
        }
    }
    sources.sort();
    Ok(sources)
}

/// Returns every problem found; empty when the spec is clean.
pub fn lint(spec_text: &str, tests: &[(PathBuf, String)]) -> Vec<String> {
    let spec = match parse_spec(spec_text) {
        Ok(spec) => spec,
        Err(error) => return vec![error.to_string()],
    };
    let mut problems = Vec::new();
    if !spec.openapi.starts_with("3.0.") {
        problems.push(format!(
            "`openapi` is {:?}; progenitor reads 3.0.x only",
            spec.openapi
        ));
    }
    lint_operations(&spec, tests, &mut problems);
    lint_schemas(&spec, &mut problems);
    problems
}

fn operations(spec: &OpenAPI) -> Vec<(String, &Operation)> {
    spec.paths
        .iter()
        .filter_map(|(path, item)| item.as_item().map(|item| (path, item)))
        .flat_map(|(path, item)| {
            item.iter().map(move |(method, operation)| {
                (format!("{} {path}", method.to_uppercase()), operation)
            })
        })
        .collect()
}

fn lint_operations(spec: &OpenAPI, tests: &[(PathBuf, String)], problems: &mut Vec<String>) {
    let mut seen: BTreeMap<&str, String> = BTreeMap::new();
    for (name, operation) in operations(spec) {
        let Some(operation_id) = operation.operation_id.as_deref() else {
            problems.push(format!("{name} has no operationId"));
            continue;
        };
        if let Some(other) = seen.insert(operation_id, name.clone()) {
            problems.push(format!(
                "operationId {operation_id} is used by both {other} and {name}"
            ));
        }
        let mut successes = Vec::new();
        for (status, response) in &operation.responses.responses {
            let code = match status {
                StatusCode::Code(code) => *code,
                StatusCode::Range(range) => range * 100,
            };
            let Some(response) = resolve_response(spec, response) else {
                problems.push(format!("{name}: response {status} is a dangling reference"));
                continue;
            };
            if (200..300).contains(&code) {
                successes.push(status.to_string());
            } else if code >= 400 && !uses_problem(response) {
                problems.push(format!(
                    "{name}: response {status} must be {PROBLEM_MEDIA_TYPE} with $ref {PROBLEM_REF}, the schema every error status shares"
                ));
            }
        }
        if operation.responses.default.is_some() {
            problems.push(format!(
                "{name}: a `default` response hides undocumented statuses; list each status"
            ));
        }
        // The hand-written error conversion relies on a single success status of 200.
        if successes != ["200"] {
            problems.push(format!(
                "{name}: must have exactly one success response, 200 (has {successes:?})"
            ));
        }
        let method = operation_id.to_snake_case();
        // The SDK's method and the mock helper for the operation share this name.
        let client_method = client_method_name(operation_id);
        let exercised = tests.iter().any(|(_, text)| {
            contains_word(text, operation_id)
                || contains_word(text, &method)
                || contains_word(text, &client_method)
        });
        if !exercised {
            problems.push(format!(
                "{name} ({operation_id}) is not exercised by any test under tests/ (name `{operation_id}`, `{method}` or `{client_method}` in one)"
            ));
        }
    }
}

fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !is_ident(before) && !is_ident(after)
    })
}

fn resolve_response<'a>(
    spec: &'a OpenAPI,
    response: &'a ReferenceOr<Response>,
) -> Option<&'a Response> {
    match response {
        ReferenceOr::Item(response) => Some(response),
        ReferenceOr::Reference { reference } => {
            let name = reference.strip_prefix("#/components/responses/")?;
            match spec.components.as_ref()?.responses.get(name)? {
                ReferenceOr::Item(response) => Some(response),
                ReferenceOr::Reference { .. } => None,
            }
        }
    }
}

fn uses_problem(response: &Response) -> bool {
    response.content.len() == 1
        && response.content.get(PROBLEM_MEDIA_TYPE).is_some_and(|media| {
            matches!(&media.schema, Some(ReferenceOr::Reference { reference }) if reference == PROBLEM_REF)
        })
}

fn lint_schemas(spec: &OpenAPI, problems: &mut Vec<String>) {
    let Some(components) = spec.components.as_ref() else {
        return;
    };
    for (name, schema) in &components.schemas {
        if let ReferenceOr::Item(schema) = schema {
            lint_schema(name, schema, true, problems);
        }
    }
}

fn lint_schema(at: &str, schema: &Schema, named: bool, problems: &mut Vec<String>) {
    match &schema.schema_kind {
        SchemaKind::Type(Type::Object(object)) => {
            if matches!(
                object.additional_properties,
                Some(AdditionalProperties::Any(false))
            ) {
                problems.push(format!(
                    "{at}: `additionalProperties: false` would reject keys a newer API adds"
                ));
            }
            for (property, schema) in &object.properties {
                if let ReferenceOr::Item(schema) = schema {
                    lint_schema(&format!("{at}.{property}"), schema, false, problems);
                }
            }
        }
        SchemaKind::Type(Type::Array(array)) => {
            if let Some(ReferenceOr::Item(items)) = &array.items {
                lint_schema(&format!("{at}[]"), items, false, problems);
            }
        }
        // Inline enums stay closed in the generated code; only single-value discriminator
        // constants may be inline.
        SchemaKind::Type(Type::String(string)) if !named && string.enumeration.len() > 1 => {
            problems.push(format!(
                "{at}: an inline enum is generated closed; make it a named schema so it is generated open"
            ));
        }
        SchemaKind::OneOf { one_of: schemas }
        | SchemaKind::AnyOf { any_of: schemas }
        | SchemaKind::AllOf { all_of: schemas } => {
            for (index, schema) in schemas.iter().enumerate() {
                if let ReferenceOr::Item(schema) = schema {
                    lint_schema(&format!("{at}/{index}"), schema, false, problems);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace_root;

    #[test]
    fn the_workspace_spec_is_clean() {
        if let Err(report) = lint_workspace(&workspace_root()) {
            panic!("{report}");
        }
    }

    const MINIMAL: &str = r##"
openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /things:
    get:
      operationId: listThings
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema: {type: object, properties: {kind: {type: string, enum: [a, b]}}, additionalProperties: false}
        "400":
          description: bad
          content:
            application/json:
              schema: {type: object}
  /other:
    get:
      operationId: listThings
      responses:
        "201": {description: created}
components:
  schemas:
    Closed:
      type: object
      additionalProperties: false
      properties:
        kind: {type: string, enum: [a, b]}
    Problem: {type: object}
"##;

    #[test]
    fn each_rule_reports() {
        let tests = vec![(
            PathBuf::from("tests/it/x.rs"),
            "fn list_things_is_fine() {}".to_string(),
        )];
        let problems = lint(&MINIMAL.replace("3.0.3", "3.1.0"), &tests).join("\n");
        for expected in [
            "progenitor reads 3.0.x only",
            "operationId listThings is used by both",
            "response 400 must be application/problem+json",
            "must have exactly one success response, 200",
            "Closed: `additionalProperties: false`",
            "Closed.kind: an inline enum is generated closed",
            "is not exercised by any test",
        ] {
            assert!(
                problems.contains(expected),
                "missing {expected:?} in:\n{problems}"
            );
        }
    }

    #[test]
    fn a_test_naming_the_operation_exercises_it() {
        assert!(contains_word(
            "client.generated().list_things().send()",
            "list_things"
        ));
        assert!(!contains_word("fn list_things_is_fine() {}", "list_things"));
        assert!(contains_word("\"listThings\"", "listThings"));
    }
}
