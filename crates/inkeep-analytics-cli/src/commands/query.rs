//! `query`: a query over one view, built with the SDK's typed query language, whose rows are printed with the selected columns first, in the order given, in every format.

use std::io::{Read, Write};
use std::path::PathBuf;

use futures::TryStreamExt;
use inkeep_analytics::query::{
    Column, ConversationsView, EventsView, FeedbackView, Field, GroupBy, OrderBy, Query, Selection,
    SemanticThreadsView, ViewField, ViewKind,
};
use inkeep_analytics::{Client, Error, query::CsvExport, types};
use serde_json::Value;

use super::{format_for_reading, to_value};
use crate::cli::{Format, GlobalOptions, QueryArgs, QueryView};
use crate::failure::Failure;
use crate::filter;
use crate::output::{self, Table, cell};

/// Runs `query` over the view the command line names.
pub async fn run(global: &GlobalOptions, client: &Client, args: QueryArgs) -> Result<(), Failure> {
    match args.view {
        QueryView::Conversations => run_on::<ConversationsView>(global, client, &args).await,
        QueryView::Events => run_on::<EventsView>(global, client, &args).await,
        QueryView::Feedback => run_on::<FeedbackView>(global, client, &args).await,
        QueryView::SemanticThreads => run_on::<SemanticThreadsView>(global, client, &args).await,
    }
}

/// What `query` needs of a view beyond the SDK's [`ViewKind`]: the client's operations that read
/// it, and whether its queries carry a semantic search.
trait View: ViewKind {
    /// The view's name in messages, as the command line spells it.
    const NAME: &'static str;

    /// Adds `--search`, which only the semantic threads view has.
    fn search(_query: Query<Self>, _text: &str) -> Result<Query<Self>, Failure> {
        Err(Failure::Usage(
            "--search only applies to semantic-threads".into(),
        ))
    }

    /// Runs the query.
    async fn query(
        client: &Client,
        query: Query<Self>,
    ) -> inkeep_analytics::Result<types::QueryResponse>;

    /// Runs the query as a CSV export.
    async fn export(client: &Client, query: Query<Self>) -> inkeep_analytics::Result<CsvExport>;
}

/// Implements [`View`] for a view with the client's two operations for it.
macro_rules! view {
    ($view:ident, $name:literal, $query:ident, $export:ident) => {
        impl View for $view {
            const NAME: &'static str = $name;

            async fn query(
                client: &Client,
                query: Query<Self>,
            ) -> inkeep_analytics::Result<types::QueryResponse> {
                client.$query(query).await
            }

            async fn export(
                client: &Client,
                query: Query<Self>,
            ) -> inkeep_analytics::Result<CsvExport> {
                client.$export(query).await
            }
        }
    };
}

view!(
    ConversationsView,
    "conversations",
    query_conversations,
    export_conversations_query_results
);
view!(
    EventsView,
    "events",
    query_events,
    export_events_query_results
);
view!(
    FeedbackView,
    "feedback",
    query_feedback,
    export_feedback_query_results
);

impl View for SemanticThreadsView {
    const NAME: &'static str = "semantic threads";

    fn search(query: Query<Self>, text: &str) -> Result<Query<Self>, Failure> {
        Ok(query.search(text))
    }

    async fn query(
        client: &Client,
        query: Query<Self>,
    ) -> inkeep_analytics::Result<types::QueryResponse> {
        client.query_semantic_threads(query).await
    }

    async fn export(client: &Client, query: Query<Self>) -> inkeep_analytics::Result<CsvExport> {
        client.export_semantic_threads_query_results(query).await
    }
}

async fn run_on<V: View>(
    global: &GlobalOptions,
    client: &Client,
    args: &QueryArgs,
) -> Result<(), Failure> {
    let (query, columns) = build::<V>(args)?;
    let what = format!("querying {}", V::NAME);
    if args.csv {
        let export = V::export(client, query)
            .await
            .map_err(Failure::api(what.clone()))?;
        return export_csv(export, columns, global.output.clone(), &what).await;
    }
    let response = V::query(client, query).await.map_err(Failure::api(what))?;
    let text = render(&response, &columns, format_for_reading(global))?;
    output::emit(&text, global.output.as_deref())
}

/// The typed query the command line asks for, and the columns its selections add to each row, in
/// the order given. Every part is checked before any request.
fn build<V: View>(args: &QueryArgs) -> Result<(Query<V>, Vec<String>), Failure> {
    let mut query = Query::<V>::new();
    if let Some(expression) = &args.filter {
        query = query.filter(filter::parse::<V>(expression).map_err(Failure::Usage)?);
    }
    let mut columns = Vec::new();
    for text in &args.select {
        let selection = selection::<V>(text)?;
        columns.extend(selection.column().map(|column| column.to_string()));
        query = query.select(selection);
    }
    for field in &args.group_by {
        query = query.group_by(GroupBy::new(field_of::<V>(field)?));
    }
    for key in &args.order_by {
        let (column, direction) = key.rsplit_once(':').unwrap_or((key.as_str(), "asc"));
        if !types::SortDirection::KNOWN.contains(&direction) {
            return Err(Failure::Usage(format!(
                "{key:?}: the direction must be {}",
                types::SortDirection::KNOWN.join(" or ")
            )));
        }
        if column.is_empty() {
            return Err(Failure::Usage(format!("{key:?}: the field is empty")));
        }
        // A sort key names a column of the result: a field, `count_id`, `createdAt_day`...
        query = query.order_by(OrderBy::new(
            Column::raw(column),
            types::SortDirection::from(direction),
        ));
    }
    if let Some(text) = &args.search {
        query = V::search(query, text)?;
    }
    Ok((query, columns))
}

/// One `--select`: a field, `FUNCTION[:FIELD]` or `time:UNIT[:FIELD]`.
fn selection<V: ViewKind>(text: &str) -> Result<Selection<V>, Failure> {
    let parts: Vec<&str> = text.split(':').collect();
    match parts.as_slice() {
        ["time", unit, rest @ ..] => {
            if !types::TimeUnit::KNOWN.contains(unit) {
                return Err(Failure::Usage(format!(
                    "{text:?}: the time unit must be one of {}",
                    types::TimeUnit::KNOWN.join(", ")
                )));
            }
            let unit = types::TimeUnit::from(*unit);
            match rest {
                [] => Ok(Selection::time(unit)),
                [field] => Ok(Selection::time_of(
                    V::Fields::parse_known(field).map_err(usage)?,
                    unit,
                )),
                _ => Err(Failure::Usage(format!(
                    "{text:?}: expected time:UNIT[:FIELD]"
                ))),
            }
        }
        [function, rest @ ..] if types::AggregationFunction::KNOWN.contains(function) => {
            let function = types::AggregationFunction::from(*function);
            match rest {
                [] => Ok(Selection::aggregate_rows(function)),
                [field] => Ok(Selection::aggregate(function, field_of::<V>(field)?)),
                _ => Err(Failure::Usage(format!("{text:?}: expected FUNCTION:FIELD"))),
            }
        }
        [field] => Ok(Selection::field(field_of::<V>(field)?)),
        _ => Err(Failure::Usage(format!(
            "{text:?}: expected a field, FUNCTION:FIELD ({}) or time:UNIT[:FIELD]",
            types::AggregationFunction::KNOWN.join(", ")
        ))),
    }
}

/// A field of the view, with an optional JSON path (`properties.plan`).
fn field_of<V: ViewKind>(text: &str) -> Result<Field<V>, Failure> {
    Field::parse(text).map_err(usage)
}

/// A query part the SDK refused: a mistake on the command line.
fn usage(error: Error) -> Failure {
    match error {
        Error::InvalidInput { reason } => Failure::Usage(reason),
        error => Failure::Usage(error.to_string()),
    }
}

/// The answer in `format`, the selected columns first in every format: the whole answer as JSON,
/// or its rows.
fn render(
    response: &types::QueryResponse,
    columns: &[String],
    format: Format,
) -> Result<String, Failure> {
    let rows: Vec<Value> = response.rows().iter().map(to_value).collect();
    Ok(match format {
        Format::Json => output::ordered_document(&to_value(response), columns),
        Format::Jsonl => rows
            .iter()
            .map(|row| output::ordered_line(row, columns) + "\n")
            .collect(),
        Format::Table => table(&rows, columns).render(),
        Format::Csv => table(&rows, columns).csv()?,
    })
}

/// A table whose columns are the keys of the rows: first `columns` (the selections, in the order
/// given), then the others in the order they first appear.
fn table(rows: &[Value], columns: &[String]) -> Table {
    let mut header: Vec<String> = columns
        .iter()
        .filter(|key| rows.iter().any(|row| row.get(key.as_str()).is_some()))
        .cloned()
        .collect();
    for row in rows {
        if let Some(object) = row.as_object() {
            for key in object.keys() {
                if !header.contains(key) {
                    header.push(key.clone());
                }
            }
        }
    }
    let rows = rows
        .iter()
        .map(|row| {
            header
                .iter()
                .map(|column| cell(&row[column.as_str()]))
                .collect()
        })
        .collect();
    Table { header, rows }
}

/// Copies a CSV export to the output as it arrives, with the selected columns first: the server
/// decides the order of its columns, and the program promises the order of the selections.
async fn export_csv(
    mut export: CsvExport,
    columns: Vec<String>,
    path: Option<PathBuf>,
    what: &str,
) -> Result<(), Failure> {
    // The CSV is parsed and written on a blocking thread, fed chunk by chunk: it is never held whole.
    let (sender, receiver) = tokio::sync::mpsc::channel(16);
    let writer = tokio::task::spawn_blocking(move || {
        let mut sink: Box<dyn Write> = match &path {
            Some(path) => Box::new(std::io::BufWriter::new(
                crate::owner_only::create(path)
                    .map_err(Failure::io(format!("creating {}", path.display())))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
        };
        reorder_csv(Chunks::new(receiver), &columns, &mut sink)?;
        sink.flush().map_err(Failure::io("writing the CSV"))
    });
    let mut failure = None;
    loop {
        match export.try_next().await {
            Ok(Some(chunk)) => {
                // The writer stops early only on an error of its own, which it returns below.
                if sender.send(chunk.to_vec()).await.is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(error) => {
                failure = Some(Failure::api(what.to_string())(error));
                break;
            }
        }
    }
    drop(sender);
    let written = writer.await.map_err(|error| Failure::Io {
        what: "writing the CSV".into(),
        error: std::io::Error::other(error),
    })?;
    match failure {
        Some(failure) => Err(failure),
        None => written,
    }
}

/// Reads CSV from `reader` and writes it to `sink` with `columns` first, in that order, then the
/// other columns in their own order.
fn reorder_csv(reader: impl Read, columns: &[String], sink: &mut dyn Write) -> Result<(), Failure> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut record = csv::ByteRecord::new();
    let mut order: Option<Vec<usize>> = None;
    loop {
        let more = csv
            .read_byte_record(&mut record)
            .map_err(|error| Failure::Io {
                what: "reading the CSV export".into(),
                error: std::io::Error::other(error),
            })?;
        if !more {
            break;
        }
        let order = order.get_or_insert_with(|| columns_first(&record, columns));
        let fields = order.iter().map(|&at| record.get(at).unwrap_or_default());
        output::write_csv_record(sink, fields).map_err(Failure::io("writing the CSV"))?;
    }
    Ok(())
}

/// The positions of the header's columns in the order to write them: `columns` first (those the
/// header has, in the order of `columns`), then the others in their own order.
fn columns_first(header: &csv::ByteRecord, columns: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = columns
        .iter()
        .filter_map(|column| header.iter().position(|name| name == column.as_bytes()))
        .collect();
    for at in 0..header.len() {
        if !order.contains(&at) {
            order.push(at);
        }
    }
    order
}

/// The chunks of an export as a blocking reader.
struct Chunks {
    receiver: tokio::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Chunks {
    fn new(receiver: tokio::sync::mpsc::Receiver<Vec<u8>>) -> Self {
        Self {
            receiver,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.blocking_recv() {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let length = buffer.len().min(self.chunk.len() - self.at);
        buffer[..length].copy_from_slice(&self.chunk[self.at..self.at + length]);
        self.at += length;
        Ok(length)
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// The query and columns of `inkeep-analytics query <args>`.
    fn built<V: View>(args: &[&str]) -> Result<(Value, Vec<String>), Failure> {
        let cli = Cli::try_parse_from(["inkeep-analytics", "query"].iter().chain(args))
            .map_err(|error| Failure::Usage(error.to_string()))?;
        let Command::Query(args) = cli.command else {
            return Err(Failure::Usage("not a query".into()));
        };
        let (query, columns) = build::<V>(&args)?;
        Ok((
            serde_json::to_value(query.build()).unwrap_or_default(),
            columns,
        ))
    }

    #[test]
    fn the_columns_are_the_selections_in_the_order_given() -> Result<(), Failure> {
        let (body, columns) = built::<ConversationsView>(&[
            "conversations",
            "--select",
            "count:properties.plan",
            "--select",
            "type",
            "--group-by",
            "type",
        ])?;
        assert_eq!(columns, ["count_properties.plan", "type"]);
        assert_eq!(
            body,
            serde_json::json!({
                "select": [
                    {"type": "aggregation", "aggregation": "count", "field": "properties", "path": ["plan"]},
                    {"type": "field", "field": "type"}
                ],
                "groupBy": [{"field": "type"}]
            })
        );
        let (body, columns) = built::<ConversationsView>(&[
            "conversations",
            "--select",
            "time:month",
            "--select",
            "count:id",
        ])?;
        assert_eq!(columns, ["firstMessageTime_month", "count_id"]);
        assert_eq!(
            body["select"][0],
            serde_json::json!({"type": "time", "timeUnit": "month"})
        );
        let (_, columns) = built::<EventsView>(&[
            "events",
            "--select",
            "time:day",
            "--select",
            "count",
            "--select",
            "time:week:createdAt",
        ])?;
        assert_eq!(columns, ["createdAt_day", "count", "createdAt_week"]);
        Ok(())
    }

    #[test]
    fn search_belongs_to_semantic_threads() -> Result<(), Failure> {
        let (body, _) =
            built::<SemanticThreadsView>(&["semantic-threads", "--search", "api keys"])?;
        assert_eq!(body, serde_json::json!({"query": "api keys"}));
        let refused = built::<EventsView>(&["events", "--search", "x"]);
        assert!(matches!(refused, Err(Failure::Usage(ref m)) if m.contains("semantic-threads")));
        Ok(())
    }

    #[test]
    fn a_csv_export_is_rewritten_with_the_selected_columns_first() -> Result<(), Failure> {
        let header = csv::ByteRecord::from(vec!["type", "count_properties.plan", "extra"]);
        let columns = [
            "count_properties.plan".to_string(),
            "type".to_string(),
            "absent".to_string(),
        ];
        assert_eq!(columns_first(&header, &columns), [1, 0, 2]);
        let csv = "type,count_properties.plan,extra\nopenai,3,\"a,\"\"b\"\"\nc\"\nshort\n";
        let mut out = Vec::new();
        reorder_csv(csv.as_bytes(), &columns, &mut out)?;
        assert_eq!(
            String::from_utf8_lossy(&out),
            "count_properties.plan,type,extra\n3,openai,\"a,\"\"b\"\"\nc\"\n,short,\n",
            "quoted cells survive, and a short record is padded"
        );
        Ok(())
    }
}
