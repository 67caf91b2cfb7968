//! Turns the spec's OpenAPI 3.0 schemas into the JSON Schemas MCP tools declare, so that a spec edit changes the tools.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

pub use self::yaml::YamlError;

// The workspace's one YAML reader, shared with code generation; the program is not published, so
// it can compile the SDK's file in place rather than depend on the codegen crate (and progenitor).
#[path = "../../../inkeep-analytics/codegen/yaml.rs"]
mod yaml;

/// The spec the SDK generates its client from (the codegen copy of `openapi/inkeep-analytics.yaml`).
pub const SPEC_YAML: &str = include_str!("../../../inkeep-analytics/codegen/inkeep-analytics.yaml");

const COMPONENT_PREFIX: &str = "#/components/schemas/";

/// The parsed spec.
pub struct Spec {
    document: Value,
}

/// One operation as the spec describes it.
pub struct OperationSpec<'a> {
    /// Its object under `paths.<path>.<method>`.
    pub object: &'a Map<String, Value>,
}

impl Spec {
    /// Parses the embedded spec.
    pub fn load() -> Result<Self, YamlError> {
        Ok(Self {
            document: yaml::yaml_to_json(SPEC_YAML)?,
        })
    }

    /// The operation at `path` and (upper-case) `method`.
    pub fn operation(&self, path: &str, method: &str) -> Option<OperationSpec<'_>> {
        self.document
            .get("paths")?
            .get(path)?
            .get(method.to_ascii_lowercase())?
            .as_object()
            .map(|object| OperationSpec { object })
    }

    fn component(&self, name: &str) -> Option<&Value> {
        self.document.get("components")?.get("schemas")?.get(name)
    }

    /// Converts `schema` and gathers every component it reaches, transitively, under `$defs`.
    pub fn json_schema(&self, schema: &Value) -> Value {
        let mut wanted = BTreeSet::new();
        // A root that is only a reference becomes the referenced schema itself.
        let root = match reference(schema).and_then(|name| self.component(name)) {
            Some(component) => component,
            None => schema,
        };
        let mut converted = convert(root, &mut wanted);
        let mut defs = BTreeMap::new();
        let mut pending: Vec<String> = wanted.iter().cloned().collect();
        while let Some(name) = pending.pop() {
            if defs.contains_key(&name) {
                continue;
            }
            let mut more = BTreeSet::new();
            let definition = match self.component(&name) {
                Some(component) => convert(component, &mut more),
                // A dangling reference accepts anything rather than failing the whole tool list.
                None => json!({}),
            };
            defs.insert(name, definition);
            pending.extend(more.into_iter().filter(|name| !defs.contains_key(name)));
        }
        if let Some(object) = converted.as_object_mut()
            && !defs.is_empty()
        {
            object.insert("$defs".into(), Value::Object(defs.into_iter().collect()));
        }
        converted
    }
}

impl OperationSpec<'_> {
    /// The spec's summary and description, as one text.
    pub fn description(&self) -> String {
        let text = |key: &str| {
            self.object
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|text| !text.is_empty())
        };
        match (text("summary"), text("description")) {
            (Some(summary), Some(description)) => format!("{summary}. {description}"),
            (Some(only), None) | (None, Some(only)) => only.to_string(),
            (None, None) => String::new(),
        }
    }

    /// The summary alone, as the tool's title.
    pub fn summary(&self) -> Option<String> {
        self.object
            .get("summary")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Whether the spec files it under `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.object
            .get("tags")
            .and_then(Value::as_array)
            .is_some_and(|tags| tags.iter().any(|t| t.as_str() == Some(tag)))
    }

    /// The path and query parameters: name, whether required, description and schema.
    pub fn parameters(&self) -> Vec<(String, bool, Option<String>, Value)> {
        let Some(parameters) = self.object.get("parameters").and_then(Value::as_array) else {
            return Vec::new();
        };
        parameters
            .iter()
            .filter_map(|parameter| {
                let name = parameter.get("name")?.as_str()?.to_string();
                let required = parameter
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let description = parameter
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let schema = parameter.get("schema").cloned().unwrap_or(json!({}));
                Some((name, required, description, schema))
            })
            .collect()
    }

    /// The JSON request body's schema.
    pub fn body_schema(&self) -> Option<&Value> {
        self.object
            .get("requestBody")?
            .get("content")?
            .get("application/json")?
            .get("schema")
    }
}

fn reference(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix(COMPONENT_PREFIX)
}

/// One schema from OpenAPI 3.0 to JSON Schema: references point at `$defs`, `nullable` becomes
/// a `null` type, and OpenAPI's own keywords (`discriminator`, `example`, `x-*`) are left out.
pub fn convert(schema: &Value, wanted: &mut BTreeSet<String>) -> Value {
    let Some(object) = schema.as_object() else {
        return schema.clone();
    };
    if let Some(name) = reference(schema) {
        wanted.insert(name.to_string());
        return json!({ "$ref": format!("#/$defs/{name}") });
    }
    let mut out = Map::new();
    for (key, value) in object {
        let converted = match key.as_str() {
            "nullable" | "discriminator" | "example" => continue,
            key if key.starts_with("x-") => continue,
            "properties" => Value::Object(
                value
                    .as_object()
                    .map(|properties| {
                        properties
                            .iter()
                            .map(|(name, schema)| (name.clone(), convert(schema, wanted)))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            "items" | "not" => convert(value, wanted),
            "additionalProperties" if value.is_object() => convert(value, wanted),
            "allOf" | "oneOf" | "anyOf" => Value::Array(
                value
                    .as_array()
                    .map(|schemas| schemas.iter().map(|s| convert(s, wanted)).collect())
                    .unwrap_or_default(),
            ),
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if object.get("nullable").and_then(Value::as_bool) == Some(true) {
        return nullable(out);
    }
    Value::Object(out)
}

fn nullable(mut schema: Map<String, Value>) -> Value {
    match schema
        .get("type")
        .and_then(Value::as_str)
        .map(str::to_string)
    {
        Some(kind) => {
            schema.insert("type".into(), json!([kind, "null"]));
            if let Some(Value::Array(values)) = schema.get_mut("enum")
                && !values.contains(&Value::Null)
            {
                values.push(Value::Null);
            }
            Value::Object(schema)
        }
        None => {
            let description = schema.remove("description");
            let mut wrapped = Map::new();
            if let Some(description) = description {
                wrapped.insert("description".into(), description);
            }
            wrapped.insert(
                "anyOf".into(),
                json!([Value::Object(schema), {"type": "null"}]),
            );
            Value::Object(wrapped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_nullables_and_openapi_keywords_become_json_schema() {
        let mut wanted = BTreeSet::new();
        let schema = json!({
            "type": "object",
            "discriminator": {"propertyName": "type"},
            "properties": {
                "type": {"type": "string", "enum": ["a"], "nullable": true},
                "user": {"allOf": [{"$ref": "#/components/schemas/UserProperties"}], "nullable": true, "description": "who"},
                "x-internal": {"type": "string"},
            },
        });
        let converted = convert(&schema, &mut wanted);
        assert_eq!(
            converted,
            json!({
                "type": "object",
                "properties": {
                    "type": {"type": ["string", "null"], "enum": ["a", null]},
                    "user": {"description": "who", "anyOf": [{"allOf": [{"$ref": "#/$defs/UserProperties"}]}, {"type": "null"}]},
                    "x-internal": {"type": "string"},
                },
            })
        );
        assert_eq!(wanted.into_iter().collect::<Vec<_>>(), ["UserProperties"]);
    }

    #[test]
    fn a_recursive_schema_is_defined_once_and_every_reference_resolves() {
        let spec = Spec::load().expect("the embedded spec parses");
        let schema =
            spec.json_schema(&json!({"$ref": "#/components/schemas/QueryConversationsBody"}));
        let defs = schema["$defs"].as_object().expect("definitions");
        assert!(defs.contains_key("Filter"), "{schema}");
        let text = schema.to_string();
        for reference in text.split("\"#/$defs/").skip(1) {
            let name = reference.split('"').next().unwrap_or_default();
            assert!(
                defs.contains_key(name),
                "{name} is referenced but not defined"
            );
        }
        assert!(!text.contains("#/components/"), "{text}");
        assert!(!text.contains("nullable"), "{text}");
    }
}
