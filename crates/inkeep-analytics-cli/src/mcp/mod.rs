//! `inkeep-analytics mcp`: the API as tools, resources and prompts for AI assistants, over the Model Context Protocol (stdio, or streamable HTTP on 127.0.0.1 behind a bearer token).

mod budget;
mod http;
mod prompts;
mod resources;
mod schema;
mod tools;

use std::sync::Arc;

use inkeep_analytics::{Client, Error};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, GetPromptRequestParams,
    GetPromptResponse, GetPromptResult, Implementation, ListPromptsResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, Prompt, PromptArgument, PromptMessage,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, Role, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Map, Value, json};

pub use self::budget::DEFAULT_BUDGET;
use self::budget::{Paging, RESULT_OFFSET};
pub use self::http::ENV_MCP_TOKEN;
use self::tools::{CallError, Payload, Selection, ToolEntry};
use crate::cli::McpArgs;
use crate::failure::Failure;

/// The MCP server: the tools the options allow, and the client they call.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    tools: Vec<ToolEntry>,
    budget: usize,
    allow_writes: bool,
}

impl Server {
    fn new(client: Client, args: &McpArgs) -> Result<Self, Failure> {
        let tools = tools::catalog(&Selection {
            allow_writes: args.allow_writes,
            only: args.tools.clone(),
        })
        .map_err(|error| Failure::Usage(error.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                tools,
                budget: args.budget,
                allow_writes: args.allow_writes,
            }),
        })
    }

    async fn run_tool(&self, name: &str, arguments: Map<String, Value>) -> CallToolResult {
        let Some(entry) = self
            .inner
            .tools
            .iter()
            .find(|entry| entry.operation.client_method == name)
        else {
            return refusal(name, self.inner.allow_writes);
        };
        let skip = if entry.read_only && entry.paging == Paging::Skip {
            match arguments.get(RESULT_OFFSET) {
                None | Some(Value::Null) => 0,
                Some(value) => match value.as_u64() {
                    Some(skip) => usize::try_from(skip).unwrap_or(usize::MAX),
                    None => {
                        return tool_error(
                            format!(
                                "invalid arguments for {name}: `{RESULT_OFFSET}` must be a whole number, not {value}"
                            ),
                            json!({"error": {"kind": "invalid_arguments"}}),
                        );
                    }
                },
            }
        } else {
            0
        };
        let payload = match tools::call(&self.inner.client, entry.operation, &arguments).await {
            Ok(payload) => payload,
            Err(CallError::Arguments(message)) => {
                return tool_error(
                    format!("invalid arguments for {name}: {message}"),
                    json!({"error": {"kind": "invalid_arguments", "detail": message}}),
                );
            }
            Err(CallError::Unsupported(id)) => {
                return tool_error(
                    format!("{name} ({id}) cannot be called by this build"),
                    json!({"error": {"kind": "unsupported"}}),
                );
            }
            Err(CallError::Sdk(error)) => return sdk_error(name, &error),
        };
        let budget = self.inner.budget;
        let shaped = match payload {
            Payload::Json(mut value) => {
                budget::compact(&mut value);
                if entry.read_only {
                    budget::shape_json(name, value, budget, entry.paging, skip, &arguments)
                } else {
                    budget::Shaped {
                        text: value.to_string(),
                        structured: Some(value),
                        note: None,
                    }
                }
            }
            Payload::Csv(bytes) => {
                match budget::shape_csv(name, &bytes, budget, skip, &arguments) {
                    Ok(shaped) => shaped,
                    Err(error) => {
                        return tool_error(
                            format!("{name} answered with CSV that does not parse: {error}"),
                            json!({"error": {"kind": "decode"}}),
                        );
                    }
                }
            }
        };
        let mut content = vec![ContentBlock::text(shaped.text)];
        if let Some(note) = shaped.note {
            content.push(ContentBlock::text(note));
        }
        let mut result = CallToolResult::success(content);
        result.structured_content = shaped.structured;
        result
    }
}

/// A tool that exists but is not offered: say why, and what would offer it.
fn refusal(name: &str, allow_writes: bool) -> CallToolResult {
    let write = tools::catalog(&Selection {
        allow_writes: true,
        only: vec![name.to_string()],
    })
    .ok()
    .and_then(|entries| entries.into_iter().next())
    .map(|entry| !entry.read_only);
    let message = if write.is_none() {
        format!("there is no tool named {name}")
    } else if !allow_writes && write == Some(true) {
        format!(
            "{name} writes or deletes data, and this server was started read-only; restart it with --allow-writes to offer it"
        )
    } else {
        format!("{name} is not among the tools this server was started with (--tools)")
    };
    tool_error(
        message,
        json!({"error": {"kind": "tool_not_offered", "tool": name}}),
    )
}

fn tool_error(message: String, structured: Value) -> CallToolResult {
    let mut result = CallToolResult::error(vec![ContentBlock::text(message)]);
    result.structured_content = Some(structured);
    result
}

/// An error of the SDK as a tool error: the message its `Display` gives, and the API's facts.
fn sdk_error(name: &str, error: &Error) -> CallToolResult {
    let mut facts = Map::new();
    match error.as_api() {
        Some(api) => {
            facts.insert("kind".into(), json!("api"));
            facts.insert("status".into(), json!(api.status.as_u16()));
            for (key, value) in [
                ("code", &api.code),
                ("title", &api.title),
                ("detail", &api.detail),
                ("requestId", &api.request_id),
            ] {
                if let Some(value) = value {
                    facts.insert(key.into(), json!(value));
                }
            }
        }
        None => {
            let kind = if error.is_retryable() {
                "network"
            } else {
                "client"
            };
            facts.insert("kind".into(), json!(kind));
            if let Some(status) = error.status() {
                facts.insert("status".into(), json!(status.as_u16()));
            }
            if let Some(request_id) = error.request_id() {
                facts.insert("requestId".into(), json!(request_id));
            }
        }
    }
    facts.insert("message".into(), json!(error.to_string()));
    tool_error(
        format!("{name} failed: {error}"),
        json!({"error": Value::Object(facts)}),
    )
}

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new(
            "inkeep-analytics",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(format!(
            "Tools read Inkeep Analytics: conversations, feedback, events, semantic threads and search statistics. \
             For counts, trends and breakdowns use the query_* tools (their arguments are the query body); \
             read the resource {} for the query language with examples, and inkeep-analytics://views/<view> for the fields. \
             Results are compacted and cut to about {} characters; a cut result names the arguments that fetch the rest.",
            resources::QUERY_LANGUAGE_URI,
            self.inner.budget,
        ))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.inner
                .tools
                .iter()
                .map(|entry| entry.tool.clone())
                .collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.unwrap_or_default();
        Ok(self.run_tool(&request.name, arguments).await.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(
            resources::list()
                .into_iter()
                .map(|(uri, name, description, mime_type)| {
                    Resource::new(uri, name)
                        .with_description(description)
                        .with_mime_type(mime_type)
                })
                .collect(),
        ))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(
            prompts::PROMPTS
                .iter()
                .map(|prompt| {
                    Prompt::new(
                        prompt.name,
                        Some(prompt.description),
                        Some(vec![
                            PromptArgument::new("since")
                                .with_description(prompts::SINCE)
                                .with_required(false),
                        ]),
                    )
                })
                .collect(),
        ))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let since = request
            .arguments
            .as_ref()
            .and_then(|arguments| arguments.get("since"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|since| !since.is_empty());
        match prompts::text(&request.name, since) {
            Some(text) => {
                Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).into())
            }
            None => Err(ErrorData::invalid_params(
                format!("no prompt {}", request.name),
                None,
            )),
        }
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        match resources::read(&request.uri) {
            Some((text, mime_type)) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(text, request.uri).with_mime_type(mime_type),
            ])
            .into()),
            None => Err(ErrorData::resource_not_found(
                format!("no resource {}", request.uri),
                None,
            )),
        }
    }
}

/// Serves MCP on stdio, or on streamable HTTP (127.0.0.1 unless `--bind`, with a bearer token)
/// with `--http`, until the client leaves or Ctrl-C.
pub async fn serve(client: Client, args: McpArgs) -> Result<(), Failure> {
    let server = Server::new(client, &args)?;
    match args.http {
        None => {
            let running = server
                .serve(rmcp::transport::stdio())
                .await
                .map_err(|error| {
                    Failure::Usage(format!("cannot start the MCP session: {error}"))
                })?;
            running
                .waiting()
                .await
                .map_err(|error| Failure::Usage(format!("the MCP session failed: {error}")))?;
            Ok(())
        }
        Some(port) => {
            let options = http::HttpOptions {
                port,
                bind: args.bind.unwrap_or(http::DEFAULT_BIND),
                token: args.http_token.clone(),
                no_token: args.no_http_token,
                allowed_origins: args.allow_origin.clone(),
                allow_writes: args.allow_writes,
            };
            http::serve(server, options).await
        }
    }
}
