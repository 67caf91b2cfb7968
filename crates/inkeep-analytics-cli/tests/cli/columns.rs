//! The column order of `query` output: in every format, the selected columns come first, in the order given, whatever order the server's rows or CSV have.

use serde_json::Value;

use crate::support::{Server, assert_golden, parse, run};

/// The two commands that printed their columns out of order, the stem of their goldens, and the
/// columns their selections add, in the order given.
const QUERIES: &[(&[&str], &str, &[&str])] = &[
    (
        &[
            "query",
            "conversations",
            "--select",
            "count:properties.plan",
            "--select",
            "type",
            "--group-by",
            "type",
        ],
        "query-plan-count-by-type",
        &["count_properties.plan", "type"],
    ),
    (
        &[
            "query",
            "conversations",
            "--select",
            "time:month",
            "--select",
            "count:id",
        ],
        "query-month-count",
        &["firstMessageTime_month", "count_id"],
    ),
];

/// The first `columns.len()` names of a header line.
fn first_columns(header: &str, count: usize) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(header.as_bytes());
    let record = match reader.records().next() {
        Some(Ok(record)) => record,
        other => panic!("no CSV header in {header:?}: {other:?}"),
    };
    record.iter().take(count).map(str::to_string).collect()
}

/// `{"a":1,"b":"x"` for the values of `columns` in `row`: how a row with those keys first starts.
fn row_prefix(row: &Value, columns: &[&str]) -> String {
    let entries: Vec<String> = columns
        .iter()
        .map(|column| format!("{}:{}", Value::from(*column), row[*column]))
        .collect();
    format!("{{{}", entries.join(","))
}

#[test]
fn query_output_keeps_the_selected_columns_first_in_every_format() {
    let server = Server::start();
    for (args, stem, columns) in QUERIES {
        let expected: Vec<String> = columns.iter().map(|c| c.to_string()).collect();

        // The rows, to know what each format must show.
        let document: Value = parse(
            &run(server.cli().args(["--format", "json"]).args(*args))
                .ok()
                .into_bytes(),
        );
        let Some(rows) = document["data"]["result"].as_array() else {
            panic!("{stem}: no rows in {document}");
        };
        assert!(
            rows.len() >= 3,
            "{stem}: too few rows to tell an order: {document}"
        );

        let json = run(server.cli().args(["--format", "json"]).args(*args)).ok();
        let compact: String = json.split_whitespace().collect();
        for row in rows {
            let prefix: String = row_prefix(row, columns).split_whitespace().collect();
            assert!(
                compact.contains(&prefix),
                "{stem}: json rows start with {prefix}:\n{json}"
            );
        }
        assert_golden(&format!("{stem}.json"), &json);

        let jsonl = run(server.cli().args(["--format", "jsonl"]).args(*args)).ok();
        let lines: Vec<&str> = jsonl.lines().collect();
        assert_eq!(lines.len(), rows.len(), "{stem}: one line per row");
        for (line, row) in lines.iter().zip(rows) {
            let prefix = row_prefix(row, columns);
            assert!(
                line.starts_with(&prefix),
                "{stem}: {line} starts with {prefix}"
            );
        }
        assert_golden(&format!("{stem}.jsonl"), &jsonl);

        for (format_args, golden) in [
            (&["--format", "csv"][..], format!("{stem}.csv")),
            (&["--csv"][..], format!("{stem}.export.csv")),
        ] {
            let mut command = server.cli();
            if format_args == ["--csv"] {
                command.args(*args).args(format_args);
            } else {
                command.args(format_args).args(*args);
            }
            let csv = run(&mut command).ok();
            let header = csv.lines().next().unwrap_or_default();
            assert_eq!(
                first_columns(header, columns.len()),
                expected,
                "{stem} {format_args:?}: {header}"
            );
            assert_eq!(
                csv.lines().count(),
                rows.len() + 1,
                "{stem} {format_args:?}"
            );
            assert_golden(&golden, &csv);
        }

        let table = run(server.cli().args(["--format", "table"]).args(*args)).ok();
        let header: Vec<&str> = table
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(&header[..columns.len()], *columns, "{stem} table: {table}");
        assert_golden(&format!("{stem}.table.txt"), &table);
    }
}
