//! `search`: the search statistics.

use inkeep_analytics::Client;
use serde_json::Value;

use super::{format_for_reading, to_value};
use crate::cli::{GlobalOptions, SearchArgs, SearchCommand};
use crate::failure::Failure;
use crate::output::{self, Table, cell};

/// Runs one `search` command.
pub async fn run(
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
