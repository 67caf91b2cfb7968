//! `feedback`: list, get, delete, submit and export feedback.

use inkeep_analytics::{Client, types};
use serde_json::{Value, json};

use super::{emit_document, read_json, render_page, to_value};
use crate::cli::{FeedbackCommand, Format, GlobalOptions, PageArgs};
use crate::export::{self, Kind, Plan};
use crate::failure::Failure;
use crate::output::{self, Table, cell};

/// Runs one `feedback` command.
pub async fn run(
    global: &GlobalOptions,
    client: &Client,
    command: FeedbackCommand,
) -> Result<(), Failure> {
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
            let text = render_page(global, &page, table, || {
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
            output::emit(&text, global.output.as_deref())
        }
        FeedbackCommand::Get { id } => {
            let feedback = client
                .get_feedback(&id)
                .await
                .map_err(Failure::api(format!("getting feedback {id}")))?;
            emit_document(global, &feedback)
        }
        FeedbackCommand::Delete { id } => {
            let result = client
                .delete_feedback(&id)
                .await
                .map_err(Failure::api(format!("deleting feedback {id}")))?;
            emit_document(global, &result)
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
            emit_document(global, &logged)
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
            export::run(&super::sandbox::for_long_job(global, client), plan)
                .await
                .map(|_| ())
        }
    }
}

fn table(records: &[Value]) -> Table {
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
