//! `events`: log an event.

use inkeep_analytics::{Client, types};

use super::{emit_document, read_json};
use crate::cli::{EventsCommand, GlobalOptions};
use crate::failure::Failure;

/// Runs one `events` command.
pub async fn run(
    global: &GlobalOptions,
    client: &Client,
    command: EventsCommand,
) -> Result<(), Failure> {
    match command {
        EventsCommand::Log(input) => {
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
            emit_document(global, &logged)
        }
    }
}
