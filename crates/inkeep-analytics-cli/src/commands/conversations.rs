//! `conversations`: list, get, delete, log and export conversations.

use inkeep_analytics::{Client, types};
use serde_json::Value;

use super::{emit_document, read_json, render_page, to_value};
use crate::cli::{ConversationsCommand, Format, GlobalOptions, PageArgs};
use crate::export::{self, Kind, Plan};
use crate::failure::Failure;
use crate::output::{self, Table, cell};

/// Runs one `conversations` command.
pub async fn run(
    global: &GlobalOptions,
    client: &Client,
    command: ConversationsCommand,
) -> Result<(), Failure> {
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
            let text = render_page(global, &page, table, || {
                page.conversations.iter().map(to_value).collect()
            })?;
            output::emit(&text, global.output.as_deref())
        }
        ConversationsCommand::Get { id } => {
            let conversation = client
                .get_conversation(&id)
                .await
                .map_err(Failure::api(format!("getting conversation {id}")))?;
            emit_document(global, &conversation)
        }
        ConversationsCommand::GetByExternalId { external_id } => {
            let conversation = client
                .get_conversation_by_external_id(&external_id)
                .await
                .map_err(Failure::api(format!(
                    "getting the conversation with external id {external_id}"
                )))?;
            emit_document(global, &conversation)
        }
        ConversationsCommand::Delete { id } => {
            let result = client
                .delete_conversation(&id)
                .await
                .map_err(Failure::api(format!("deleting conversation {id}")))?;
            emit_document(global, &result)
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
            emit_document(global, &logged)
        }
        ConversationsCommand::LogOpenai(args) => super::openai::log(global, client, args).await,
        ConversationsCommand::Export(args) => {
            let plan = Plan {
                kind: Kind::Conversations,
                page_size: args.page_size,
                format: global.format.unwrap_or(Format::Jsonl),
                output: global.output.clone(),
                resume: args.resume,
                progress: !global.quiet,
            };
            let written = export::run(&super::sandbox::for_long_job(global, client), plan).await?;
            if !global.quiet {
                tracing::info!(records = written, "export complete");
            }
            Ok(())
        }
    }
}

fn table(records: &[Value]) -> Table {
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
