//! The `--where` filter expressions of `query`, parsed into the SDK's typed [`Filter`] of a view with errors that point at the problem.
//!
//! Grammar: `expr := and ("or" and)*`, `and := atom ("and" atom)*`, `atom := "(" expr ")" | condition`.
//! A condition is a field, an operator and (for most operators) a JSON value; see `query --help`.
//! A field with dots (`properties.plan`) is a JSON path into the field before the first dot.

use std::marker::PhantomData;

use inkeep_analytics::Error;
use inkeep_analytics::query::{Field, Filter, Operand, ViewField, ViewKind};
use inkeep_analytics::types::FilterOperator;
use serde_json::Value;

/// Parses `text` into a filter over view `V`, whose fields the spec lists.
pub fn parse<V: ViewKind>(text: &str) -> Result<Filter<V>, String> {
    let mut parser = Parser {
        text,
        at: 0,
        view: PhantomData::<V>,
    };
    let filter = parser.expression(0)?;
    parser.skip_space();
    if parser.at < text.len() {
        return Err(parser.error("expected `and`, `or` or the end"));
    }
    Ok(filter)
}

/// How deep parentheses may nest: deeper input is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a, V> {
    text: &'a str,
    at: usize,
    view: PhantomData<V>,
}

impl<V: ViewKind> Parser<'_, V> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn error(&self, what: &str) -> String {
        let near: String = self.rest().chars().take(20).collect();
        if near.is_empty() {
            format!("invalid filter: {what}, at the end")
        } else {
            format!(
                "invalid filter: {what}, at column {} near {near:?}",
                self.text[..self.at].chars().count() + 1
            )
        }
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    /// Consumes `word` when it is the next word (case-insensitive, not a prefix of a longer word).
    fn keyword(&mut self, word: &str) -> bool {
        self.skip_space();
        let rest = self.rest();
        let Some(candidate) = rest.get(..word.len()) else {
            return false;
        };
        let boundary = rest[word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        if candidate.eq_ignore_ascii_case(word) && boundary {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(symbol) {
            self.at += symbol.len();
            true
        } else {
            false
        }
    }

    fn expression(&mut self, depth: usize) -> Result<Filter<V>, String> {
        let mut any = vec![self.conjunction(depth)?];
        while self.keyword("or") {
            any.push(self.conjunction(depth)?);
        }
        // `Filter::any` of a list, not a chain of `or`s, so that the tree is the one written.
        Ok(if any.len() == 1 {
            any.remove(0)
        } else {
            Filter::any(any)
        })
    }

    fn conjunction(&mut self, depth: usize) -> Result<Filter<V>, String> {
        let mut all = vec![self.atom(depth)?];
        while self.keyword("and") {
            all.push(self.atom(depth)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Filter::all(all)
        })
    }

    fn atom(&mut self, depth: usize) -> Result<Filter<V>, String> {
        if self.symbol("(") {
            if depth >= MAX_DEPTH {
                return Err(self.error(&format!("parentheses nest deeper than {MAX_DEPTH}")));
            }
            let inner = self.expression(depth + 1)?;
            if !self.symbol(")") {
                return Err(self.error("expected `)`"));
            }
            return Ok(inner);
        }
        self.condition()
    }

    fn field(&mut self) -> Result<Field<V>, String> {
        self.skip_space();
        let length = self
            .rest()
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(self.rest().len());
        if length == 0 {
            return Err(self.error("expected a field"));
        }
        let name = &self.rest()[..length];
        let mut parts = name.split('.');
        let field = parts.next().unwrap_or_default();
        let path: Vec<String> = parts.map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(self.error("a JSON path has an empty part"));
        }
        // The view's fields are the spec's, as the SDK lists them.
        let field = match V::Fields::parse_known(field) {
            Ok(field) => field,
            Err(Error::InvalidInput { reason }) => return Err(format!("invalid filter: {reason}")),
            Err(error) => return Err(format!("invalid filter: {error}")),
        };
        self.at += length;
        Ok(Field::json(field, path))
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_space();
        // serde_json's stream reader refuses a number, `true`, `false` or `null` followed by anything
        // but JSON whitespace or punctuation, so `(count = 1)` and `count = 1<U+00A0>and ...` were
        // refused (found by fuzzing): such a bare value ends at the first character that cannot be
        // part of it, and is read on its own.
        if !self.rest().starts_with(['"', '[', '{']) {
            let length = self
                .rest()
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
                .unwrap_or(self.rest().len());
            return match serde_json::from_str(&self.rest()[..length]) {
                Ok(value) => {
                    self.at += length;
                    Ok(value)
                }
                Err(_) => {
                    Err(self
                        .error("expected a JSON value such as \"text\", 42, true, null or [..]"))
                }
            };
        }
        let mut values = serde_json::Deserializer::from_str(self.rest()).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) => {
                self.at += values.byte_offset();
                Ok(value)
            }
            _ => Err(self.error("expected a JSON value such as \"text\", 42, true, null or [..]")),
        }
    }

    fn list(&mut self) -> Result<Value, String> {
        let value = self.value()?;
        if value.is_array() {
            Ok(value)
        } else {
            Err(self.error("expected a list such as [\"a\", \"b\"]"))
        }
    }

    fn condition(&mut self) -> Result<Filter<V>, String> {
        let field = self.field()?;
        let (operator, value) = if self.symbol("!=") {
            ("neq", Some(self.value()?))
        } else if self.symbol(">=") {
            ("gte", Some(self.value()?))
        } else if self.symbol("<=") {
            ("lte", Some(self.value()?))
        } else if self.symbol("=") {
            ("eq", Some(self.value()?))
        } else if self.symbol(">") {
            ("gt", Some(self.value()?))
        } else if self.symbol("<") {
            ("lt", Some(self.value()?))
        } else if self.keyword("in") {
            ("in", Some(self.list()?))
        } else if self.keyword("not") {
            if !self.keyword("in") {
                return Err(self.error("expected `in` after `not`"));
            }
            ("notIn", Some(self.list()?))
        } else if self.keyword("contains") {
            ("arrayContains", Some(self.value()?))
        } else if self.keyword("has") {
            // `any` and `all` must each be followed by `keys`: trying `all` after a consumed `any`
            // read `has any all keys` as `has all keys` (found by fuzzing).
            if self.keyword("key") {
                ("jsonHasKey", Some(self.value()?))
            } else if self.keyword("any") {
                if !self.keyword("keys") {
                    return Err(self.error("expected `keys` after `has any`"));
                }
                ("jsonHasAnyKey", Some(self.list()?))
            } else if self.keyword("all") {
                if !self.keyword("keys") {
                    return Err(self.error("expected `keys` after `has all`"));
                }
                ("jsonHasAllKeys", Some(self.list()?))
            } else {
                return Err(self.error("expected `key`, `any keys` or `all keys` after `has`"));
            }
        } else if self.keyword("json") {
            if self.keyword("contains") {
                ("jsonContains", Some(self.value()?))
            } else if self.keyword("contained") && self.keyword("by") {
                ("jsonContainedBy", Some(self.value()?))
            } else {
                return Err(self.error("expected `contains` or `contained by` after `json`"));
            }
        } else if self.keyword("array") {
            if !(self.keyword("contains") && self.keyword("object")) {
                return Err(self.error("expected `contains object` after `array`"));
            }
            ("jsonArrayContainsObject", Some(self.value()?))
        } else if self.keyword("is") {
            if self.keyword("null") {
                ("isNull", None)
            } else if self.keyword("not") && self.keyword("null") {
                ("isNotNull", None)
            } else {
                return Err(self.error("expected `null` or `not null` after `is`"));
            }
        } else {
            return Err(self.error("expected an operator (=, !=, >, >=, <, <=, in, not in, contains, has, json, array, is)"));
        };
        // An operator without a value on a JSON path is sent as `{path, value: null}`, as this
        // program always has; the SDK would send `{path}` for `None`.
        let value = match value {
            None if !field.path().is_empty() => Some(Operand::NULL),
            value => value.map(Operand::Json),
        };
        Ok(Filter::condition(
            field,
            FilterOperator::from(operator),
            value,
        ))
    }
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use inkeep_analytics::query::{ConversationsView, SemanticThreadsView};
    use serde_json::json;

    use super::*;

    /// The filter parsed over view `V`, as the JSON it is sent as.
    pub(super) fn parse_json<V: ViewKind>(text: &str) -> Result<Value, String> {
        parse::<V>(text)
            .map(|filter| serde_json::to_value(filter.as_generated()).unwrap_or_default())
    }

    fn condition(field: &str, operator: &str, value: Value) -> Value {
        json!({"condition": {"field": field, "operator": operator, "value": value}})
    }

    #[test]
    fn every_operator_parses() {
        let cases = [
            (
                "type = \"openai\"",
                condition("type", "eq", json!("openai")),
            ),
            (
                "type != \"openai\"",
                condition("type", "neq", json!("openai")),
            ),
            (
                "userMessageCount > 3",
                condition("userMessageCount", "gt", json!(3)),
            ),
            (
                "userMessageCount >= 3",
                condition("userMessageCount", "gte", json!(3)),
            ),
            (
                "userMessageCount < 3.5",
                condition("userMessageCount", "lt", json!(3.5)),
            ),
            (
                "userMessageCount <= 3",
                condition("userMessageCount", "lte", json!(3)),
            ),
            (
                "type in [\"openai\", null]",
                condition("type", "in", json!(["openai", null])),
            ),
            (
                "type not in [\"a\"]",
                condition("type", "notIn", json!(["a"])),
            ),
            (
                "properties has key \"plan\"",
                condition("properties", "jsonHasKey", json!("plan")),
            ),
            (
                "properties has any keys [\"a\"]",
                condition("properties", "jsonHasAnyKey", json!(["a"])),
            ),
            (
                "properties has all keys [\"a\",\"b\"]",
                condition("properties", "jsonHasAllKeys", json!(["a", "b"])),
            ),
            (
                "properties json contains {\"a\":1}",
                condition("properties", "jsonContains", json!({"a": 1})),
            ),
            (
                "properties json contained by {\"a\":1}",
                condition("properties", "jsonContainedBy", json!({"a": 1})),
            ),
            (
                "properties array contains object {\"a\":1}",
                condition("properties", "jsonArrayContainsObject", json!({"a": 1})),
            ),
            (
                "properties.plan = \"pro\"",
                condition(
                    "properties",
                    "eq",
                    json!({"path": ["plan"], "value": "pro"}),
                ),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_json::<ConversationsView>(text),
                Ok(expected),
                "{text}"
            );
        }
        // `contains` reads an array field; the semantic threads view has one.
        assert_eq!(
            parse_json::<SemanticThreadsView>("languages contains \"rust\""),
            Ok(condition("languages", "arrayContains", json!("rust")))
        );
        assert_eq!(
            parse_json::<ConversationsView>("properties.plan is null"),
            Ok(condition(
                "properties",
                "isNull",
                json!({"path": ["plan"], "value": null})
            )),
            "an operator without a value on a JSON path"
        );
        assert_eq!(
            parse_json::<ConversationsView>("id is null"),
            Ok(json!({"condition": {"field": "id", "operator": "isNull"}}))
        );
        assert_eq!(
            parse_json::<ConversationsView>("id IS NOT NULL"),
            Ok(json!({"condition": {"field": "id", "operator": "isNotNull"}}))
        );
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let a = condition("type", "eq", json!("a"));
        let b = condition("type", "eq", json!("b"));
        let c = condition("type", "eq", json!("c"));
        assert_eq!(
            parse_json::<ConversationsView>("type = \"a\" or type = \"b\" and type = \"c\""),
            Ok(json!({"or": [a.clone(), {"and": [b.clone(), c.clone()]}]}))
        );
        assert_eq!(
            parse_json::<ConversationsView>("(type = \"a\" or type = \"b\") and type = \"c\""),
            Ok(json!({"and": [{"or": [a, b]}, c]}))
        );
    }

    #[test]
    fn mistakes_are_explained() {
        for (text, expected) in [
            ("nope = 1", "is not a field of this view"),
            ("type", "expected an operator"),
            ("type = ", "expected a JSON value"),
            ("type in \"a\"", "expected a list"),
            ("(type = 1", "expected `)`"),
            ("type = 1 type = 2", "expected `and`, `or` or the end"),
            ("properties. = 1", "empty part"),
            ("", "expected a field"),
        ] {
            let error = parse_json::<ConversationsView>(text)
                .err()
                .unwrap_or_default();
            assert!(error.contains(expected), "{text:?} gave {error:?}");
        }
        let deep = format!("{}type = 1{}", "(".repeat(500), ")".repeat(500));
        assert!(parse_json::<ConversationsView>(&deep).is_err_and(|e| e.contains("nest deeper")));
    }
}
