//! `properties`: the keys and values of `properties` and `userProperties`, through the SDK's property requests.

use inkeep_analytics::{Client, query, types};

use super::{format_for_reading, to_value};
use crate::cli::{Format, GlobalOptions, PropertiesCommand, PropertyArgs};
use crate::failure::Failure;
use crate::output::{self, Table};

/// Runs one `properties` command.
pub async fn run(
    global: &GlobalOptions,
    client: &Client,
    command: PropertiesCommand,
) -> Result<(), Failure> {
    let response = match command {
        PropertiesCommand::Keys(args) => {
            let (field, views) = checked(&args)?;
            let mut request = query::property_keys(field);
            request.views = views;
            client
                .query_property_keys(request)
                .await
                .map_err(Failure::api("listing property keys"))?
        }
        PropertiesCommand::Values {
            key,
            property,
            limit,
        } => {
            let (field, views) = checked(&property)?;
            let mut request = query::property_values(field, key);
            request.views = views;
            request.limit = limit;
            client
                .query_property_values(request)
                .await
                .map_err(Failure::api("listing property values"))?
        }
    };
    let text = match format_for_reading(global) {
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

/// The property field and the views of a look-up, each one the spec lists.
fn checked(args: &PropertyArgs) -> Result<(types::PropertyField, Vec<types::View>), Failure> {
    if !types::PropertyField::KNOWN.contains(&args.field.as_str()) {
        return Err(Failure::Usage(format!(
            "--field must be {}",
            types::PropertyField::KNOWN.join(" or ")
        )));
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
    let views = args
        .views
        .iter()
        .map(|view| types::View::from(view.as_str()));
    Ok((
        types::PropertyField::from(args.field.as_str()),
        views.collect(),
    ))
}
