//! Pages through every conversation or feedback item with the SDK's item stream and prints each as a JSON line.
//!
//! ```text
//! INKEEP_ANALYTICS_API_KEY=... cargo run --release -p inkeep-analytics --example export -- conversations
//! INKEEP_ANALYTICS_API_KEY=... cargo run --release -p inkeep-analytics --example export -- feedback
//! ```
//!
//! Each line is the item as decoded by the typed model and serialized again. On failure it prints
//! the error (status, code, detail and request id for API errors) and exits with status 1.

use std::io::{BufWriter, ErrorKind, Write};
use std::process::ExitCode;

use futures::TryStreamExt;
use inkeep_analytics::Client;

const USAGE: &str = "usage: export <conversations|feedback>";

#[tokio::main]
async fn main() -> ExitCode {
    let what = std::env::args().nth(1);
    let result = match what.as_deref() {
        Some("conversations") => export_conversations().await,
        Some("feedback") => export_feedback().await,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(count) => {
            eprintln!("exported {count} records");
            ExitCode::SUCCESS
        }
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(Failure::Output(error)) if error.kind() == ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {failure}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug)]
enum Failure {
    Api(inkeep_analytics::Error),
    Encode(serde_json::Error),
    Output(std::io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Api(error) => write!(f, "{error}"),
            Failure::Encode(error) => write!(f, "cannot encode a record: {error}"),
            Failure::Output(error) => write!(f, "cannot write the output: {error}"),
        }
    }
}

async fn export_conversations() -> Result<u64, Failure> {
    let client = Client::from_env().map_err(Failure::Api)?;
    let mut items = client.list_conversations().items();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut count = 0;
    while let Some(conversation) = items.try_next().await.map_err(Failure::Api)? {
        write_line(&mut out, &conversation)?;
        count += 1;
    }
    out.flush().map_err(Failure::Output)?;
    Ok(count)
}

async fn export_feedback() -> Result<u64, Failure> {
    let client = Client::from_env().map_err(Failure::Api)?;
    let mut items = client.list_feedback().items();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut count = 0;
    while let Some(item) = items.try_next().await.map_err(Failure::Api)? {
        write_line(&mut out, &item.feedback)?;
        count += 1;
    }
    out.flush().map_err(Failure::Output)?;
    Ok(count)
}

fn write_line(out: &mut impl Write, record: &impl serde::Serialize) -> Result<(), Failure> {
    serde_json::to_writer(&mut *out, record).map_err(Failure::Encode)?;
    out.write_all(b"\n").map_err(Failure::Output)
}
