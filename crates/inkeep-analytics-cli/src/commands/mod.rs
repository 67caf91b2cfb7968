//! One module per command group: each checks its input locally, calls the SDK, and renders the answer; this one dispatches and holds what they share.

mod conversations;
mod events;
mod feedback;
mod openai;
mod properties;
mod query;
mod sandbox;
mod search;
pub mod sync;

use std::io::{IsTerminal, Read};
use std::path::Path;

use inkeep_analytics::Client;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::cli::{Cli, Command, Format, GlobalOptions, SandboxCommand};
use crate::failure::Failure;
use crate::output::{self, Table};

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
        }) => sandbox::serve(&global, port, seed, conversations).await,
        Command::Mcp(args) => {
            let (client, _sandbox) = sandbox::connect(&global).await?;
            crate::mcp::serve(client, args).await
        }
        Command::Spool(command) => crate::record::spool(&global, command),
        Command::Record(args) => {
            let (client, _sandbox) = sandbox::connect(&global).await?;
            crate::record::run(&global, client, args).await
        }
        command => {
            let (client, _sandbox) = sandbox::connect(&global).await?;
            run_with_client(&global, &client, command).await
        }
    }
}

async fn run_with_client(
    global: &GlobalOptions,
    client: &Client,
    command: Command,
) -> Result<(), Failure> {
    match command {
        Command::Conversations(command) => conversations::run(global, client, command).await,
        Command::Feedback(command) => feedback::run(global, client, command).await,
        Command::Events(command) => events::run(global, client, command).await,
        Command::Query(args) => query::run(global, client, args).await,
        Command::Properties(command) => properties::run(global, client, command).await,
        Command::Search(command) => search::run(global, client, command).await,
        Command::Sync(args) => sync::run(global, client, args).await,
        Command::Sandbox(_)
        | Command::Completions { .. }
        | Command::Mcp(_)
        | Command::Record(_)
        | Command::Spool(_) => Ok(()),
    }
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

/// Writes one document, such as a conversation: pretty JSON, or one line with `--format jsonl`.
fn emit_document(global: &GlobalOptions, document: &impl serde::Serialize) -> Result<(), Failure> {
    let format = match global.format {
        Some(Format::Jsonl) => Format::Jsonl,
        _ => Format::Json,
    };
    output::emit(
        &output::render_document(&to_value(document), format),
        global.output.as_deref(),
    )
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

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Reads JSON from a file or `-` (stdin) and decodes it as `T`, saying what was wrong.
fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<T, Failure> {
    let (text, source) = read_text(path, what)?;
    serde_json::from_str(&text).map_err(|error| {
        Failure::Usage(format!(
            "{source} is not {what} as the API expects it: {error}"
        ))
    })
}

/// Reads a file or `-` (stdin), refusing an empty one; returns the text and how to name its source.
fn read_text(path: &Path, what: &str) -> Result<(String, String), Failure> {
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
    Ok((text, source))
}
