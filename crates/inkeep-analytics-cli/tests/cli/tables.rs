//! `--format table` (and CSV) output of the list and query commands on the seeded sandbox, against goldens.

use crate::support::{Server, assert_golden, parse, run};

/// Each command, and the golden file of its table.
const TABLES: &[(&[&str], &str)] = &[
    (
        &["conversations", "list", "--limit", "12"],
        "table-conversations-list.txt",
    ),
    (
        &["conversations", "list", "--limit", "5", "--offset", "30"],
        "table-conversations-list-offset.txt",
    ),
    (
        &["feedback", "list", "--limit", "4"],
        "table-feedback-list.txt",
    ),
    (
        &[
            "query",
            "conversations",
            "--select",
            "type",
            "--select",
            "count:id",
            "--group-by",
            "type",
            "--order-by",
            "count_id:desc",
        ],
        "table-query-conversations-by-type.txt",
    ),
    (
        &[
            "query",
            "events",
            "--where",
            "eventType in [\"search\", \"conversation\"]",
            "--select",
            "eventType",
            "--select",
            "count",
            "--group-by",
            "eventType",
            "--order-by",
            "eventType",
        ],
        "table-query-events-by-type.txt",
    ),
    (
        &[
            "query",
            "feedback",
            "--select",
            "type",
            "--select",
            "count",
            "--group-by",
            "type",
            "--order-by",
            "type",
        ],
        "table-query-feedback-by-type.txt",
    ),
    (&["search", "top-queries"], "table-search-top-queries.txt"),
    (&["search", "weekly-users"], "table-search-weekly-users.txt"),
    (&["properties", "keys"], "table-properties-keys.txt"),
    (
        &["properties", "values", "plan"],
        "table-properties-values-plan.txt",
    ),
];

#[test]
fn tables_match_the_goldens() {
    let server = Server::start();
    for (args, golden) in TABLES {
        let text = run(server.cli().args(["--format", "table"]).args(*args)).ok();
        assert!(
            text.lines().count() >= 2,
            "{golden}: a header and at least one row:\n{text}"
        );
        assert!(
            text.lines().all(|line| line == line.trim_end()),
            "{golden}: no trailing spaces"
        );
        assert_golden(golden, &text);
    }
}

#[test]
fn the_table_rows_are_the_listed_records() {
    let server = Server::start();
    let page: serde_json::Value = parse(
        &run(server
            .cli()
            .args(["conversations", "list", "--limit", "12"]))
        .ok()
        .into_bytes(),
    );
    let table = run(server.cli().args([
        "--format",
        "table",
        "conversations",
        "list",
        "--limit",
        "12",
    ]))
    .ok();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    let Some(conversations) = page["conversations"].as_array() else {
        panic!("a page without conversations: {page}");
    };
    assert_eq!(rows.len(), conversations.len());
    for (row, conversation) in rows.iter().zip(conversations) {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(Some(cells[0]), conversation["id"].as_str());
        assert_eq!(Some(cells[1]), conversation["type"].as_str());
        assert_eq!(
            cells[2],
            conversation["messages"]
                .as_array()
                .map_or(0, Vec::len)
                .to_string()
        );
    }
}

#[test]
fn list_csv_matches_the_golden_and_parses() {
    let server = Server::start();
    let text = run(server
        .cli()
        .args(["--format", "csv", "feedback", "list", "--limit", "6"]))
    .ok();
    assert_golden("csv-feedback-list.csv", &text);
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = match reader.headers() {
        Ok(header) => header.clone(),
        Err(error) => panic!("invalid CSV header: {error}"),
    };
    assert_eq!(
        header.iter().collect::<Vec<_>>(),
        ["ID", "LIST", "TYPE", "MESSAGE", "CREATED", "DETAILS"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().filter_map(Result::ok).collect();
    assert!(!rows.is_empty() && rows.len() <= 12);
    assert!(
        rows.iter()
            .all(|row| row.len() == 6 && row[0].starts_with("fb_"))
    );
}

#[test]
fn lists_default_to_json_when_not_on_a_terminal() {
    let server = Server::start();
    let page: serde_json::Value = parse(
        &run(server.cli().args(["conversations", "list", "--limit", "3"]))
            .ok()
            .into_bytes(),
    );
    assert_eq!(page["conversations"].as_array().map(Vec::len), Some(3));
    assert_eq!(page["total"], 40);
}
