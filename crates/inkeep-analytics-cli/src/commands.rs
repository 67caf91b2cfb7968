//! One function per command: it checks its input locally, calls the SDK, and renders the answer.

use std::io::{IsTerminal, Read};
use std::path::Path;

use futures::TryStreamExt;
use inkeep_analytics::{Client, types};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::cli::{
    Cli, Command, ConversationsCommand, EventsCommand, FeedbackCommand, Format, GlobalOptions,
    PageArgs, PropertiesCommand, PropertyArgs, QueryArgs, QueryView, SandboxCommand, SearchArgs,
    SearchCommand,
};
use crate::export::{self, Kind, Plan};
use crate::failure::Failure;
use crate::filter;
use crate::output::{self, Table, cell};

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let Cli { global, command } = cli;
    match command {
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "inkeep-analytics", &mut script);
            output::emit(&String::from_utf8_lossy(&script), global.output.as_deref())
        }
        Command::Sandbox(SandboxCommand::Serve {
            port,
            seed,
            conversations,
        }) => serve_sandbox(&global, port, seed, conversations).await,
        Command::Spool(command) => crate::record::spool(&global, command),
        Command::Record(args) => {
            let (client, _sandbox) = connect(&global).await?;
            crate::record::run(&global, client, args).await
        }
        command => {
            let (client, _sandbox) = connect(&global).await?;
            run_with_client(&global, &client, command).await
        }
    }
}

/// The sandbox started for `--sandbox`, kept alive until the command ends.
type SandboxGuard = Option<inkeep_analytics_sandbox::Sandbox>;

async fn connect(global: &GlobalOptions) -> Result<(Client, SandboxGuard), Failure> {
    let mut builder = Client::builder();
    let mut sandbox = None;
    if global.sandbox {
        let started = inkeep_analytics_sandbox::Sandbox::start()
            .await
            .map_err(|error| Failure::Usage(format!("cannot start the sandbox: {error}")))?;
        tracing::info!(
            base_url = started.base_url(),
            "started the sandbox with demo data"
        );
        builder = builder
            .api_key(started.api_key())
            .base_url(started.base_url());
        sandbox = Some(started);
    } else {
        let Some(key) = global.api_key.as_deref() else {
            return Err(Failure::Usage(
                "no API key: pass --api-key, set INKEEP_ANALYTICS_API_KEY, or try --sandbox".into(),
            ));
        };
        builder = builder.api_key(key);
        if let Some(base_url) = global
            .base_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
        {
            builder = builder.base_url(base_url);
        }
    }
    if let Some(timeout) = global.timeout {
        builder = builder.timeout(timeout);
    }
    builder = builder.max_retries(global.retries);
    let client = builder
        .build()
        .map_err(Failure::api("configuring the client"))?;
    Ok((client, sandbox))
}

async fn serve_sandbox(
    global: &GlobalOptions,
    port: u16,
    seed: u64,
    conversations: usize,
) -> Result<(), Failure> {
    let config = inkeep_analytics_sandbox::SandboxConfig {
        seed,
        conversations,
        ..Default::default()
    };
    let api_key = config.api_keys.first().cloned().unwrap_or_default();
    let web_key = config.web_keys.first().cloned().unwrap_or_default();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Bind first and announce the address actually bound: with `--port 0` only the bound socket
    // knows which port was picked, and nothing is announced for a port that could not be had.
    let sandbox = inkeep_analytics_sandbox::Sandbox::start_on(config, address)
        .await
        .map_err(|error| {
            Failure::Usage(format!("cannot serve the sandbox on {address}: {error}"))
        })?;
    if !global.quiet {
        eprintln!(
            "sandbox listening on {} (API key {api_key:?}, web integration key {web_key:?}); Ctrl-C stops it",
            sandbox.base_url(),
        );
    }
    let _ = tokio::signal::ctrl_c().await;
    sandbox
        .shutdown()
        .await
        .map_err(|error| Failure::Usage(format!("cannot stop the sandbox: {error}")))
}

/// Lists and documents read by people default to a table on a terminal, and to JSON elsewhere.
fn format_for_reading(global: &GlobalOptions) -> Format {
    global.format.unwrap_or(
        if global.output.is_none() && std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Json
        },
    )
}

async fn run_with_client(
    global: &GlobalOptions,
    client: &Client,
    command: Command,
) -> Result<(), Failure> {
    let out = global.output.as_deref();
    match command {
        Command::Conversations(command) => conversations(global, client, command).await,
        Command::Feedback(command) => feedback(global, client, command).await,
        Command::Events(EventsCommand::Log(input)) => {
            let event: types::InsertEvent = read_json(&input.input, "an event")?;
            if event.is_unknown() {
                return Err(Failure::Usage(
                    "the event's entityType must be message, conversation or search".into(),
                ));
            }
            let logged = client
                .log_event(event)
                .await
                .map_err(Failure::api("logging the event"))?;
            output::emit(
                &output::render_document(&to_value(&logged), format_for_document(global)),
                out,
            )
        }
        Command::Query(args) => query(global, client, args).await,
        Command::Properties(command) => properties(global, client, command).await,
        Command::Search(command) => search(global, client, command).await,
        Command::Sandbox(_)
        | Command::Completions { .. }
        | Command::Record(_)
        | Command::Spool(_) => Ok(()),
    }
}

fn format_for_document(global: &GlobalOptions) -> Format {
    match global.format {
        Some(Format::Jsonl) => Format::Jsonl,
        _ => Format::Json,
    }
}

async fn conversations(
    global: &GlobalOptions,
    client: &Client,
    command: ConversationsCommand,
) -> Result<(), Failure> {
    let out = global.output.as_deref();
    match command {
        ConversationsCommand::List(PageArgs { limit, offset }) => {
            let mut request = client.list_conversations();
            if let Some(limit) = limit {
                request = request.limit(limit);
            }
            if let Some(offset) = offset {
                request = request.offset(offset);
            }
            let page = request
                .send()
                .await
                .map_err(Failure::api("listing conversations"))?;
            let text = render_page(global, &page, conversation_table, || {
                page.conversations.iter().map(to_value).collect()
            })?;
            output::emit(&text, out)
        }
        ConversationsCommand::Get { id } => {
            let conversation = client
                .get_conversation(&id)
                .await
                .map_err(Failure::api(format!("getting conversation {id}")))?;
            output::emit(
                &output::render_document(&to_value(&conversation), format_for_document(global)),
                out,
            )
        }
        ConversationsCommand::GetByExternalId { external_id } => {
            let conversation = client
                .get_conversation_by_external_id(&external_id)
                .await
                .map_err(Failure::api(format!(
                    "getting the conversation with external id {external_id}"
                )))?;
            output::emit(
                &output::render_document(&to_value(&conversation), format_for_document(global)),
                out,
            )
        }
        ConversationsCommand::Delete { id } => {
            let result = client
                .delete_conversation(&id)
                .await
                .map_err(Failure::api(format!("deleting conversation {id}")))?;
            output::emit(
                &output::render_document(&to_value(&result), format_for_document(global)),
                out,
            )
        }
        ConversationsCommand::Log(input) => {
            let conversation: types::CreateConversation =
                read_json(&input.input, "a conversation")?;
            if conversation.is_unknown() {
                return Err(Failure::Usage(
                    "the conversation's type must be openai, support_ticket or support_copilot"
                        .into(),
                ));
            }
            let logged = client
                .log_conversation(conversation)
                .await
                .map_err(Failure::api("logging the conversation"))?;
            output::emit(
                &output::render_document(&to_value(&logged), format_for_document(global)),
                out,
            )
        }
        ConversationsCommand::Export(args) => {
            let plan = Plan {
                kind: Kind::Conversations,
                page_size: args.page_size,
                format: global.format.unwrap_or(Format::Jsonl),
                output: global.output.clone(),
                resume: args.resume,
                progress: !global.quiet,
            };
            let written = export::run(client, plan).await?;
            if !global.quiet {
                tracing::info!(records = written, "export complete");
            }
            Ok(())
        }
    }
}

async fn feedback(
    global: &GlobalOptions,
    client: &Client,
    command: FeedbackCommand,
) -> Result<(), Failure> {
    let out = global.output.as_deref();
    match command {
        FeedbackCommand::List(PageArgs { limit, offset }) => {
            let mut request = client.list_feedback();
            if let Some(limit) = limit {
                request = request.limit(limit);
            }
            if let Some(offset) = offset {
                request = request.offset(offset);
            }
            let page = request
                .send()
                .await
                .map_err(Failure::api("listing feedback"))?;
            let text = render_page(global, &page, feedback_table, || {
                page.positive_feedback
                    .iter()
                    .map(|f| (f, "positive"))
                    .chain(page.negative_feedback.iter().map(|f| (f, "negative")))
                    .map(|(f, list)| {
                        let mut value = to_value(f);
                        value["list"] = json!(list);
                        value
                    })
                    .collect()
            })?;
            output::emit(&text, out)
        }
        FeedbackCommand::Get { id } => {
            let feedback = client
                .get_feedback(&id)
                .await
                .map_err(Failure::api(format!("getting feedback {id}")))?;
            output::emit(
                &output::render_document(&to_value(&feedback), format_for_document(global)),
                out,
            )
        }
        FeedbackCommand::Delete { id } => {
            let result = client
                .delete_feedback(&id)
                .await
                .map_err(Failure::api(format!("deleting feedback {id}")))?;
            output::emit(
                &output::render_document(&to_value(&result), format_for_document(global)),
                out,
            )
        }
        FeedbackCommand::Submit(input) => {
            let feedback: types::FeedbackInput = read_json(&input.input, "feedback")?;
            if feedback.type_.is_other() {
                return Err(Failure::Usage(
                    "the feedback's type must be positive or negative".into(),
                ));
            }
            let logged = client
                .log_feedback(feedback)
                .await
                .map_err(Failure::api("submitting the feedback"))?;
            output::emit(
                &output::render_document(&to_value(&logged), format_for_document(global)),
                out,
            )
        }
        FeedbackCommand::Export(args) => {
            let plan = Plan {
                kind: Kind::Feedback,
                page_size: args.page_size,
                format: global.format.unwrap_or(Format::Jsonl),
                output: global.output.clone(),
                resume: args.resume,
                progress: !global.quiet,
            };
            export::run(client, plan).await.map(|_| ())
        }
    }
}

/// A page of a listing: the whole page as JSON, or its records in the other formats.
fn render_page(
    global: &GlobalOptions,
    page: &impl serde::Serialize,
    table: fn(&[Value]) -> Table,
    records: impl FnOnce() -> Vec<Value>,
) -> Result<String, Failure> {
    let format = format_for_reading(global);
    if format == Format::Json {
        Ok(output::render_document(&to_value(page), format))
    } else {
        output::render_records(&records(), format, table)
    }
}

fn conversation_table(records: &[Value]) -> Table {
    let mut table = Table::new(&[
        "ID",
        "TYPE",
        "MESSAGES",
        "CREATED",
        "VISIBILITY",
        "EXTERNAL ID",
    ]);
    for record in records {
        table.rows.push(vec![
            cell(&record["id"]),
            cell(&record["type"]),
            record["messages"]
                .as_array()
                .map_or(String::new(), |m| m.len().to_string()),
            cell(&record["createdAt"]),
            cell(&record["visibility"]),
            cell(&record["externalId"]),
        ]);
    }
    table
}

fn feedback_table(records: &[Value]) -> Table {
    let mut table = Table::new(&["ID", "LIST", "TYPE", "MESSAGE", "CREATED", "DETAILS"]);
    for record in records {
        table.rows.push(vec![
            cell(&record["id"]),
            cell(&record["list"]),
            cell(&record["type"]),
            cell(&record["messageId"]),
            cell(&record["createdAt"]),
            cell(&record["details"]),
        ]);
    }
    table
}

/// A table whose columns are the keys of the rows: first those named in `preferred` (the
/// selections, in the order given), then the others in the order they first appear. Rows are
/// JSON objects whose keys come back sorted, which would put `count_id` before `type`.
fn dynamic_table(rows: &[Value], preferred: &[String]) -> Table {
    let mut columns: Vec<String> = preferred
        .iter()
        .filter(|key| rows.iter().any(|row| row.get(key.as_str()).is_some()))
        .cloned()
        .collect();
    for row in rows {
        if let Some(object) = row.as_object() {
            for key in object.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
    }
    let mut table = Table {
        header: columns.clone(),
        rows: Vec::new(),
    };
    for row in rows {
        table.rows.push(
            columns
                .iter()
                .map(|column| cell(&row[column.as_str()]))
                .collect(),
        );
    }
    table
}

/// The row key each `--select` produces: the field, `<function>_<field>`, or `<field>_<unit>`.
fn selection_keys(body: &Value) -> Vec<String> {
    let Some(selections) = body["select"].as_array() else {
        return Vec::new();
    };
    selections
        .iter()
        .filter_map(|selection| {
            let field = selection["field"].as_str();
            match selection["type"].as_str()? {
                "field" => field.map(str::to_string),
                "aggregation" => {
                    let function = selection["aggregation"].as_str()?;
                    Some(match field {
                        Some(field) => format!("{function}_{field}"),
                        None => function.to_string(),
                    })
                }
                "time" => Some(format!("{}_{}", field?, selection["timeUnit"].as_str()?)),
                _ => None,
            }
        })
        .collect()
}

fn view_fields(view: QueryView) -> &'static [&'static str] {
    match view {
        QueryView::Conversations => types::ConversationsViewField::KNOWN,
        QueryView::Events => types::EventsViewField::KNOWN,
        QueryView::Feedback => types::FeedbackViewField::KNOWN,
        QueryView::SemanticThreads => types::SemanticThreadsViewField::KNOWN,
    }
}

/// Splits `properties.plan` into a known field and a JSON path.
fn field_and_path(text: &str, fields: &[&str]) -> Result<(String, Vec<String>), Failure> {
    let mut parts = text.split('.');
    let field = parts.next().unwrap_or_default();
    let path: Vec<String> = parts.map(str::to_string).collect();
    if !fields.contains(&field) || path.iter().any(String::is_empty) {
        return Err(Failure::Usage(format!(
            "{text:?} is not a field of this view; its fields are {}",
            fields.join(", ")
        )));
    }
    Ok((field.to_string(), path))
}

fn with_path(mut value: Value, path: Vec<String>) -> Value {
    if !path.is_empty() {
        value["path"] = json!(path);
    }
    value
}

/// Builds the query body from the command line, checking every part before any request.
fn query_body(args: &QueryArgs) -> Result<Value, Failure> {
    let fields = view_fields(args.view);
    let mut body = json!({});
    if let Some(expression) = &args.filter {
        body["where"] = filter::parse(expression, fields).map_err(Failure::Usage)?;
    }
    let mut select = Vec::new();
    for selection in &args.select {
        let parts: Vec<&str> = selection.split(':').collect();
        let value = match parts.as_slice() {
            ["time", unit, rest @ ..] => {
                if !types::TimeUnit::KNOWN.contains(unit) {
                    return Err(Failure::Usage(format!(
                        "{selection:?}: the time unit must be one of {}",
                        types::TimeUnit::KNOWN.join(", ")
                    )));
                }
                let mut value = json!({"type": "time", "timeUnit": unit});
                match rest {
                    [] => {}
                    [field] => value["field"] = json!(field_and_path(field, fields)?.0),
                    _ => {
                        return Err(Failure::Usage(format!(
                            "{selection:?}: expected time:UNIT[:FIELD]"
                        )));
                    }
                }
                value
            }
            [function, rest @ ..] if types::AggregationFunction::KNOWN.contains(function) => {
                let mut value = json!({"type": "aggregation", "aggregation": function});
                match rest {
                    [] => value,
                    [field] => {
                        let (field, path) = field_and_path(field, fields)?;
                        value["field"] = json!(field);
                        with_path(value, path)
                    }
                    _ => {
                        return Err(Failure::Usage(format!(
                            "{selection:?}: expected FUNCTION:FIELD"
                        )));
                    }
                }
            }
            [field] => {
                let (field, path) = field_and_path(field, fields)?;
                with_path(json!({"type": "field", "field": field}), path)
            }
            _ => {
                return Err(Failure::Usage(format!(
                    "{selection:?}: expected a field, FUNCTION:FIELD ({}) or time:UNIT[:FIELD]",
                    types::AggregationFunction::KNOWN.join(", ")
                )));
            }
        };
        select.push(value);
    }
    if !select.is_empty() {
        body["select"] = json!(select);
    }
    let mut group_by = Vec::new();
    for field in &args.group_by {
        let (field, path) = field_and_path(field, fields)?;
        group_by.push(with_path(json!({"field": field}), path));
    }
    if !group_by.is_empty() {
        body["groupBy"] = json!(group_by);
    }
    let mut order_by = Vec::new();
    for key in &args.order_by {
        let (field, direction) = match key.rsplit_once(':') {
            Some((field, direction)) => (field, direction),
            None => (key.as_str(), "asc"),
        };
        if !types::SortDirection::KNOWN.contains(&direction) {
            return Err(Failure::Usage(format!(
                "{key:?}: the direction must be asc or desc"
            )));
        }
        if field.is_empty() {
            return Err(Failure::Usage(format!("{key:?}: the field is empty")));
        }
        order_by.push(json!({"field": field, "direction": direction}));
    }
    if !order_by.is_empty() {
        body["orderBy"] = json!(order_by);
    }
    if let Some(search) = &args.search {
        if args.view != QueryView::SemanticThreads {
            return Err(Failure::Usage(
                "--search only applies to semantic-threads".into(),
            ));
        }
        body["query"] = json!(search);
    }
    Ok(body)
}

fn typed<T: DeserializeOwned>(body: Value) -> Result<T, Failure> {
    serde_json::from_value(body).map_err(|error| Failure::Usage(format!("invalid query: {error}")))
}

async fn query(global: &GlobalOptions, client: &Client, args: QueryArgs) -> Result<(), Failure> {
    let body = query_body(&args)?;
    let preferred = selection_keys(&body);
    let what = format!("querying {:?}", args.view).to_lowercase();
    if args.csv {
        let export = match args.view {
            QueryView::Conversations => {
                client
                    .export_conversations_query_results(typed::<types::QueryConversationsBody>(
                        body,
                    )?)
                    .await
            }
            QueryView::Events => {
                client
                    .export_events_query_results(typed::<types::QueryEventsBody>(body)?)
                    .await
            }
            QueryView::Feedback => {
                client
                    .export_feedback_query_results(typed::<types::QueryFeedbackBody>(body)?)
                    .await
            }
            QueryView::SemanticThreads => {
                client
                    .export_semantic_threads_query_results(
                        typed::<types::QuerySemanticThreadsBody>(body)?,
                    )
                    .await
            }
        }
        .map_err(Failure::api(what.clone()))?;
        return stream_to_output(export, global.output.as_deref(), &what).await;
    }
    let response = match args.view {
        QueryView::Conversations => {
            client
                .query_conversations(typed::<types::QueryConversationsBody>(body)?)
                .await
        }
        QueryView::Events => {
            client
                .query_events(typed::<types::QueryEventsBody>(body)?)
                .await
        }
        QueryView::Feedback => {
            client
                .query_feedback(typed::<types::QueryFeedbackBody>(body)?)
                .await
        }
        QueryView::SemanticThreads => {
            client
                .query_semantic_threads(typed::<types::QuerySemanticThreadsBody>(body)?)
                .await
        }
    }
    .map_err(Failure::api(what))?;
    let format = format_for_reading(global);
    let text = if format == Format::Json {
        output::render_document(&to_value(&response), format)
    } else {
        let rows: Vec<Value> = response.data.result.iter().map(to_value).collect();
        output::render_records(&rows, format, |rows| dynamic_table(rows, &preferred))?
    };
    output::emit(&text, global.output.as_deref())
}

/// Copies a CSV export to the output as it arrives.
async fn stream_to_output(
    mut export: inkeep_analytics::CsvExport,
    path: Option<&Path>,
    what: &str,
) -> Result<(), Failure> {
    use std::io::Write;
    let mut sink: Box<dyn Write> = match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(Failure::io(format!("creating {}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    while let Some(chunk) = export
        .try_next()
        .await
        .map_err(Failure::api(what.to_string()))?
    {
        sink.write_all(&chunk)
            .map_err(Failure::io("writing the CSV"))?;
    }
    sink.flush().map_err(Failure::io("writing the CSV"))
}

async fn properties(
    global: &GlobalOptions,
    client: &Client,
    command: PropertiesCommand,
) -> Result<(), Failure> {
    let check = |args: &PropertyArgs| -> Result<Value, Failure> {
        if !types::PropertyField::KNOWN.contains(&args.field.as_str()) {
            return Err(Failure::Usage(
                "--field must be properties or userProperties".into(),
            ));
        }
        if let Some(view) = args
            .views
            .iter()
            .find(|v| !types::View::KNOWN.contains(&v.as_str()))
        {
            return Err(Failure::Usage(format!(
                "{view:?} is not a view; use {}",
                types::View::KNOWN.join(", ")
            )));
        }
        let mut body = json!({"field": args.field});
        if !args.views.is_empty() {
            body["views"] = json!(args.views);
        }
        Ok(body)
    };
    let response = match command {
        PropertiesCommand::Keys(args) => {
            let body = typed::<types::PropertyKeysRequest>(check(&args)?)?;
            client
                .query_property_keys(body)
                .await
                .map_err(Failure::api("listing property keys"))?
        }
        PropertiesCommand::Values {
            key,
            property,
            limit,
        } => {
            let mut body = check(&property)?;
            body["key"] = json!(key);
            if let Some(limit) = limit {
                if limit == 0 {
                    return Err(Failure::Usage("--limit must be at least 1".into()));
                }
                body["limit"] = json!(limit);
            }
            let body = typed::<types::PropertyValuesRequest>(body)?;
            client
                .query_property_values(body)
                .await
                .map_err(Failure::api("listing property values"))?
        }
    };
    let format = format_for_reading(global);
    let text = match format {
        Format::Table => response.results.iter().map(|r| format!("{r}\n")).collect(),
        Format::Csv => {
            let mut table = Table::new(&["value"]);
            table.rows = response.results.iter().map(|r| vec![r.clone()]).collect();
            table.csv()?
        }
        format => output::render_document(&to_value(&response), format),
    };
    output::emit(&text, global.output.as_deref())
}

async fn search(
    global: &GlobalOptions,
    client: &Client,
    command: SearchCommand,
) -> Result<(), Failure> {
    let (rows, header, keys): (Vec<Value>, _, _) = match &command {
        SearchCommand::TopQueries(SearchArgs { after, project_id }) => {
            let response = client
                .top_search_queries(after.as_deref(), project_id.as_deref())
                .await
                .map_err(Failure::api("reading the top search queries"))?;
            (
                response.data.result.iter().map(to_value).collect(),
                ["QUERY", "COUNT"],
                ["search_query", "count"],
            )
        }
        SearchCommand::WeeklyUsers(SearchArgs { after, project_id }) => {
            let response = client
                .weekly_search_users(after.as_deref(), project_id.as_deref())
                .await
                .map_err(Failure::api("reading the weekly search users"))?;
            (
                response.data.result.iter().map(to_value).collect(),
                ["WEEK", "UNIQUE USERS"],
                ["week", "unique_users"],
            )
        }
    };
    let text = output::render_records(&rows, format_for_reading(global), |rows| {
        let mut table = Table::new(&header);
        table.rows = rows
            .iter()
            .map(|row| keys.iter().map(|key| cell(&row[*key])).collect())
            .collect();
        table
    })?;
    output::emit(&text, global.output.as_deref())
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Reads JSON from a file or `-` (stdin) and decodes it as `T`, saying what was wrong.
fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, Failure> {
    let (text, source) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(Failure::io("reading standard input"))?;
        (text, "standard input".to_string())
    } else {
        let text = std::fs::read_to_string(path)
            .map_err(|error| Failure::Usage(format!("cannot read {}: {error}", path.display())))?;
        (text, path.display().to_string())
    };
    if text.trim().is_empty() {
        return Err(Failure::Usage(format!(
            "{source} is empty; expected {what} as JSON"
        )));
    }
    serde_json::from_str(&text).map_err(|error| {
        Failure::Usage(format!(
            "{source} is not {what} as the API expects it: {error}"
        ))
    })
}
