//! Reads the spec's YAML as JSON, the one YAML reader of the workspace (code generation, `cargo xtask`, the program's MCP tools).
//!
//! serde_yaml is deprecated and unmaintained, and it sat in every user's build because the build
//! script reads the spec. Of its successors, `yaml-rust2` is maintained, written in safe Rust (the
//! serde_yaml forks carry a machine translation of libyaml's C), YAML 1.2 like serde_yaml 0.9, and
//! cheap to build without its default `encoding` feature (two small crates besides hashbrown).
//! It has no serde support, so this file writes its tree as JSON text, in the mappings' order,
//! which openapiv3 reads with serde_json into its ordered maps (the order of the spec's schemas is
//! the order of the generated code), and the MCP tools read as a `serde_json::Value`.
//! Writing text rather than building a `Value` keeps the order without serde_json's
//! `preserve_order`, a feature that would change the key order of every `Value` in any build that
//! unifies features with this one (the program's and the tests').
//! The spec must parse to the same document as before: `cargo xtask check` compares the code
//! generated from it with the committed snapshots.

use std::fmt;

use serde_json::{Number, Value};
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
// For the program's MCP tools, which include this file; the code generation reads the text.
#[allow(dead_code)]
pub fn yaml_to_json(text: &str) -> Result<Value, YamlError> {
    serde_json::from_str(&yaml_to_json_text(text)?)
        .map_err(|error| YamlError(format!("the YAML does not make JSON: {error}")))
}

/// Parses `text`, which must hold exactly one YAML document, into JSON text with the mappings'
/// keys in the YAML's order.
pub fn yaml_to_json_text(text: &str) -> Result<String, YamlError> {
    let documents =
        YamlLoader::load_from_str(text).map_err(|error| YamlError(error.to_string()))?;
    match documents.as_slice() {
        [document] => {
            let mut json = String::with_capacity(text.len());
            write_json(document, &mut Vec::new(), &mut json)?;
            Ok(json)
        }
        documents => Err(YamlError(format!(
            "expected one YAML document, found {}",
            documents.len()
        ))),
    }
}

/// Writes one node as JSON; `path` names where it is, for errors.
fn write_json(node: &Yaml, path: &mut Vec<String>, out: &mut String) -> Result<(), YamlError> {
    match node {
        Yaml::Null => out.push_str("null"),
        Yaml::Boolean(value) => out.push_str(if *value { "true" } else { "false" }),
        Yaml::Integer(value) => out.push_str(&value.to_string()),
        Yaml::Real(text) => {
            let number = node
                .as_f64()
                .and_then(Number::from_f64)
                .ok_or_else(|| at(path, &format!("`{text}` is not a finite number")))?;
            out.push_str(&number.to_string());
        }
        Yaml::String(text) => push_string(text, out),
        Yaml::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                path.push(index.to_string());
                write_json(item, path, out)?;
                path.pop();
            }
            out.push(']');
        }
        Yaml::Hash(entries) => {
            out.push('{');
            for (index, (key, value)) in entries.iter().enumerate() {
                // JSON keys are strings; a plain scalar key such as a status code (`200:`) is read
                // as its text, as serde_yaml did.
                let key = match key {
                    Yaml::String(text) | Yaml::Real(text) => text.clone(),
                    Yaml::Integer(number) => number.to_string(),
                    Yaml::Boolean(value) => value.to_string(),
                    _ => return Err(at(path, "a mapping key must be a scalar")),
                };
                if index > 0 {
                    out.push(',');
                }
                push_string(&key, out);
                out.push(':');
                path.push(key);
                write_json(value, path, out)?;
                path.pop();
            }
            out.push('}');
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(at(path, "an alias or tagged value that does not resolve"));
        }
    }
    Ok(())
}

/// Writes `text` as a JSON string, escaped as serde_json escapes it.
fn push_string(text: &str, out: &mut String) {
    out.push_str(&Value::String(text.to_owned()).to_string());
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
    fn mappings_keep_their_order_in_the_json_text() {
        let text =
            yaml_to_json_text("z: 1\na: {y: \"q\\\"\", b: [2, 1.5]}\nm: ~\n").expect("valid YAML");
        assert_eq!(text, r#"{"z":1,"a":{"y":"q\"","b":[2,1.5]},"m":null}"#);
    }

    #[test]
    fn duplicate_keys_and_several_documents_are_errors() {
        assert!(yaml_to_json("a: 1\na: 2\n").is_err());
        assert!(yaml_to_json("a: 1\n---\nb: 2\n").is_err());
        let error = yaml_to_json("a:\n  b: [1, *missing]\n").expect_err("an unknown alias");
        assert!(!error.to_string().is_empty());
    }
}
