//! Reads the spec's YAML as JSON, the one YAML reader of the workspace (code generation, `cargo xtask`, the program's MCP tools).
//!
//! serde_yaml is deprecated and unmaintained, and it sat in every user's build because the build
//! script reads the spec. Of its successors, `yaml-rust2` is maintained, written in safe Rust (the
//! serde_yaml forks carry a machine translation of libyaml's C), YAML 1.2 like serde_yaml 0.9, and
//! cheap to build without its default `encoding` feature (two small crates besides hashbrown).
//! It has no serde support, so this file maps its tree onto a `serde_json::Value`, which openapiv3
//! and the MCP tools read with serde_json. The spec must parse to the same document as before:
//! `cargo xtask check` compares the code generated from it with the committed snapshots.
//! A JSON object keeps the YAML mapping's order only with serde_json's `preserve_order`, which the
//! code generation asks for (the order of the spec's schemas is the order of the generated code);
//! the MCP tools look keys up by name, so their order does not matter there.

use std::fmt;

use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// Why a YAML text could not be read as one JSON document.
#[derive(Debug)]
pub struct YamlError(String);

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for YamlError {}

/// Parses `text`, which must hold exactly one YAML document, into the JSON value it describes.
pub fn yaml_to_json(text: &str) -> Result<Value, YamlError> {
    let documents =
        YamlLoader::load_from_str(text).map_err(|error| YamlError(error.to_string()))?;
    match documents.as_slice() {
        [document] => to_json(document, &mut Vec::new()),
        documents => Err(YamlError(format!(
            "expected one YAML document, found {}",
            documents.len()
        ))),
    }
}

/// Converts one node; `path` names where it is, for errors.
fn to_json(node: &Yaml, path: &mut Vec<String>) -> Result<Value, YamlError> {
    Ok(match node {
        Yaml::Null => Value::Null,
        Yaml::Boolean(value) => Value::Bool(*value),
        Yaml::Integer(value) => Value::Number(Number::from(*value)),
        Yaml::Real(text) => node
            .as_f64()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| at(path, &format!("`{text}` is not a finite number")))?,
        Yaml::String(text) => Value::String(text.clone()),
        Yaml::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                path.push(index.to_string());
                values.push(to_json(item, path)?);
                path.pop();
            }
            Value::Array(values)
        }
        Yaml::Hash(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                // JSON keys are strings; a plain scalar key such as a status code (`200:`) is read
                // as its text, as serde_yaml did.
                let key = match key {
                    Yaml::String(text) | Yaml::Real(text) => text.clone(),
                    Yaml::Integer(number) => number.to_string(),
                    Yaml::Boolean(value) => value.to_string(),
                    _ => return Err(at(path, "a mapping key must be a scalar")),
                };
                path.push(key.clone());
                let value = to_json(value, path)?;
                path.pop();
                object.insert(key, value);
            }
            Value::Object(object)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(at(path, "an alias or tagged value that does not resolve"));
        }
    })
}

fn at(path: &[String], message: &str) -> YamlError {
    YamlError(format!("at `/{}`: {message}", path.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_keep_their_yaml_1_2_types() {
        let value = yaml_to_json(
            "a: 1\nb: 1.5\nc: true\nd: ~\ne: '200'\nf: no\n200: ok\nlist: [x, 2]\nnested: {k: v}\n",
        )
        .expect("valid YAML");
        assert_eq!(
            value,
            serde_json::json!({
                "a": 1, "b": 1.5, "c": true, "d": null, "e": "200", "f": "no", "200": "ok",
                "list": ["x", 2], "nested": {"k": "v"}
            })
        );
    }

    #[test]
    fn duplicate_keys_and_several_documents_are_errors() {
        assert!(yaml_to_json("a: 1\na: 2\n").is_err());
        assert!(yaml_to_json("a: 1\n---\nb: 2\n").is_err());
        let error = yaml_to_json("a:\n  b: [1, *missing]\n").expect_err("an unknown alias");
        assert!(!error.to_string().is_empty());
    }
}
