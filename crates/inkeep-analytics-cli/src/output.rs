//! Rendering results as aligned tables, JSON, JSON lines or CSV, and writing them to stdout or a file.

use std::io::Write;
use std::path::Path;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::cli::Format;
use crate::failure::Failure;

/// A table: a header and rows of cells, rendered for people or as CSV.
#[derive(Debug, Default)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Rows, each as long as the header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Columns aligned with two spaces between them; no trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count().max(1));
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if index > 0 {
                    line.push_str("  ");
                }
                // People read an empty cell as a gap in the layout, so a table shows it as `-`.
                let cell = if cell.is_empty() { "-" } else { cell.as_str() };
                line.push_str(cell);
                line.extend(std::iter::repeat_n(
                    ' ',
                    width.saturating_sub(cell.chars().count()),
                ));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// RFC 4180 CSV with a header row.
    pub fn csv(&self) -> Result<String, Failure> {
        let mut bytes = Vec::new();
        std::iter::once(&self.header)
            .chain(&self.rows)
            .try_for_each(|row| write_csv_record(&mut bytes, row))
            .map_err(|error| Failure::Usage(format!("cannot write CSV: {error}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Writes one RFC 4180 CSV record: the one CSV writer of the program, behind tables, query results,
/// the `--csv` query export and the exports of conversations and feedback.
pub fn write_csv_record<I, T>(out: &mut (impl Write + ?Sized), fields: I) -> std::io::Result<()>
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(fields)?;
    writer.flush()
}

/// A CSV cell for a JSON value as it is: text unchanged (CSV quotes line breaks), null or absent
/// as empty, anything else as compact JSON.
pub fn raw_cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A table cell for a JSON value: [`raw_cell`], on one line (line breaks and tabs become spaces);
/// empty is shown as `-` in tables.
pub fn cell(value: &Value) -> String {
    match value {
        Value::String(text) => text.replace(['\n', '\r', '\t'], " "),
        other => raw_cell(other),
    }
}

/// A JSON object written with the keys of `first` first (those it has, in that order), then its
/// other keys in their own order. Rows of a query come back as maps sorted by key, which would
/// put `count_id` before `type` whatever the order of the selections.
pub struct Ordered<'a> {
    /// The object.
    pub object: &'a Map<String, Value>,
    /// The keys that come first.
    pub first: &'a [String],
}

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.object.len()))?;
        for key in self.first {
            if let Some(value) = self.object.get(key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in self.object {
            if !self.first.contains(key) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

/// `value` as one line of JSON, with the keys of `first` first when it is an object.
pub fn ordered_line(value: &Value, first: &[String]) -> String {
    let line = match value {
        Value::Object(object) => serde_json::to_string(&Ordered { object, first }),
        other => serde_json::to_string(other),
    };
    line.unwrap_or_else(|_| value.to_string())
}

/// `value` as pretty JSON, where every object in an array under a `result` key (the rows of a
/// query's answer) has the keys of `first` first; the rest is written as it is.
pub fn ordered_document(value: &Value, first: &[String]) -> String {
    let mut text = serde_json::to_string_pretty(&RowsFirst {
        value,
        first,
        rows: false,
    })
    .unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// The walk behind [`ordered_document`]: `rows` is set for the array under a `result` key.
struct RowsFirst<'a> {
    value: &'a Value,
    first: &'a [String],
    rows: bool,
}

impl Serialize for RowsFirst<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Array(items) if self.rows => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    match item {
                        Value::Object(object) => seq.serialize_element(&Ordered {
                            object,
                            first: self.first,
                        })?,
                        other => seq.serialize_element(other)?,
                    }
                }
                seq.end()
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&RowsFirst {
                        value: item,
                        first: self.first,
                        rows: false,
                    })?;
                }
                seq.end()
            }
            Value::Object(object) => {
                let mut map = serializer.serialize_map(Some(object.len()))?;
                for (key, value) in object {
                    map.serialize_entry(
                        key,
                        &RowsFirst {
                            value,
                            first: self.first,
                            rows: key == "result",
                        },
                    )?;
                }
                map.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// Renders `records` (JSON objects) in `format`; `table` picks the columns for table and CSV output.
pub fn render_records(
    records: &[Value],
    format: Format,
    table: impl Fn(&[Value]) -> Table,
) -> Result<String, Failure> {
    Ok(match format {
        Format::Table => table(records).render(),
        Format::Csv => table(records).csv()?,
        Format::Json => pretty(&Value::Array(records.to_vec())),
        Format::Jsonl => records.iter().map(|r| format!("{r}\n")).collect(),
    })
}

/// Renders one JSON document: pretty JSON, or one line for `jsonl`; tables fall back to pretty JSON.
pub fn render_document(value: &Value, format: Format) -> String {
    match format {
        Format::Jsonl => format!("{value}\n"),
        _ => pretty(value),
    }
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// Writes the output to `path` (readable by its owner only, see [`crate::owner_only`]), or to stdout.
pub fn emit(text: &str, path: Option<&Path>) -> Result<(), Failure> {
    match path {
        Some(path) => crate::owner_only::write(path, text.as_bytes())
            .map_err(Failure::io(format!("writing {}", path.display()))),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(Failure::io("writing to standard output"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_do_not_trail() {
        let mut table = Table::new(&["ID", "TYPE"]);
        table.rows.push(vec!["conv_1".into(), "openai".into()]);
        table.rows.push(vec!["c2".into(), cell(&Value::Null)]);
        assert_eq!(table.render(), "ID      TYPE\nconv_1  openai\nc2      -\n");
        assert_eq!(
            table.csv().ok().as_deref(),
            Some("ID,TYPE\nconv_1,openai\nc2,\n")
        );
    }

    #[test]
    fn chosen_keys_come_first_in_rows_and_documents() {
        let first = ["type".to_string(), "count_id".to_string()];
        let row = serde_json::json!({"count_id": 3, "a": 1, "type": "openai", "z": null});
        assert_eq!(
            ordered_line(&row, &first),
            r#"{"type":"openai","count_id":3,"a":1,"z":null}"#
        );
        let document = serde_json::json!({
            "data": {"count": 1, "result": [row, "not a row"]},
            "status": "ok",
            "type": "not in a row"
        });
        let text = ordered_document(&document, &first);
        let compact: String = text.split_whitespace().collect();
        assert_eq!(
            compact,
            r#"{"data":{"count":1,"result":[{"type":"openai","count_id":3,"a":1,"z":null},"notarow"]},"status":"ok","type":"notinarow"}"#
        );
        assert_eq!(
            serde_json::from_str::<Value>(&text).ok(),
            Some(document),
            "the same JSON, reordered"
        );
    }

    #[test]
    fn csv_cells_keep_line_breaks_and_tables_do_not() {
        let text = Value::String("a\nb".into());
        assert_eq!(raw_cell(&text), "a\nb");
        assert_eq!(cell(&text), "a b");
        let mut out = Vec::new();
        assert!(write_csv_record(&mut out, ["x", &raw_cell(&text)]).is_ok());
        assert_eq!(String::from_utf8_lossy(&out), "x,\"a\nb\"\n");
    }
}
