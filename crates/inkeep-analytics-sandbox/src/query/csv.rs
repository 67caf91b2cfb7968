//! The CSV form of a result, as the export operations send it.

use std::fmt::Write as _;

use serde_json::Value;

use super::Table;

fn csv_field(text: &str, out: &mut String) {
    if text.contains([',', '"', '\n', '\r']) || text.starts_with(' ') || text.ends_with(' ') {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn csv_cell(value: Option<&Value>, out: &mut String) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => csv_field(text, out),
        Some(Value::Number(n)) => {
            let _ = write!(out, "{n}");
        }
        Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(json) => csv_field(&json.to_string(), out),
    }
}

/// The table as RFC 4180 CSV: a header row, CRLF line ends, fields quoted when they hold a comma,
/// a quote, a line break or edge spaces; null as an empty field, JSON as its text.
pub(crate) fn to_csv(table: &Table) -> String {
    let mut out = String::new();
    for (i, column) in table.columns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(column, &mut out);
    }
    out.push_str("\r\n");
    for row in &table.rows {
        for (i, column) in table.columns.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_cell(row.get(column), &mut out);
        }
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::Row;
    use serde_json::json;

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut row = Row::new();
        row.insert("a".into(), json!("plain"));
        row.insert("b".into(), json!("Smith, \"Jones\"\nand Co"));
        row.insert("c".into(), json!({"k": [1, null]}));
        let table = Table {
            columns: vec!["a".into(), "b".into(), "c".into(), "d".into()],
            rows: vec![row],
        };
        assert_eq!(
            to_csv(&table),
            "a,b,c,d\r\nplain,\"Smith, \"\"Jones\"\"\nand Co\",\"{\"\"k\"\":[1,null]}\",\r\n"
        );
    }
}
