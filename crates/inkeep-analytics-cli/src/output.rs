//! Rendering results as aligned tables, JSON, JSON lines or CSV, and writing them to stdout or a file.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

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
        let mut writer = csv::Writer::from_writer(Vec::new());
        let written = writer.write_record(&self.header).and_then(|()| {
            self.rows
                .iter()
                .try_for_each(|row| writer.write_record(row))
        });
        written.map_err(|error| Failure::Usage(format!("cannot write CSV: {error}")))?;
        let bytes = writer
            .into_inner()
            .map_err(|error| Failure::Usage(format!("cannot write CSV: {error}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// A cell for a JSON value: text as is, null or absent as empty (shown as `-` in tables, as in
/// the export's CSV), anything else as compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.replace(['\n', '\r', '\t'], " "),
        other => other.to_string(),
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

/// Writes the output to `path`, or to stdout.
pub fn emit(text: &str, path: Option<&Path>) -> Result<(), Failure> {
    match path {
        Some(path) => {
            std::fs::write(path, text).map_err(Failure::io(format!("writing {}", path.display())))
        }
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
}
