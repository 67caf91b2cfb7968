//! The command line's grammar: global options, commands and their help, in one place so `--help` and completions agree.

use std::num::NonZeroU64;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Read, export and write your Inkeep Analytics data.
#[derive(Debug, Parser)]
#[command(
    name = "inkeep-analytics",
    version,
    about = "Read, export and write your Inkeep Analytics data.",
    after_help = "Examples:
  inkeep-analytics --sandbox conversations export
  inkeep-analytics conversations list --limit 5
  inkeep-analytics conversations export --output conversations.jsonl
  inkeep-analytics query conversations --where 'type = \"openai\"' --select count --group-by type

Exit codes: 0 success, 1 other failure, 2 usage or invalid input, 3 authentication (401, 403),
4 not found (404), 5 other API error, 6 network or timeout."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalOptions {
    /// The API key (never printed; prefer the environment variable).
    #[arg(
        long,
        env = inkeep_analytics::config::ENV_API_KEY,
        hide_env_values = true,
        global = true
    )]
    pub api_key: Option<String>,

    /// The API's base URL.
    #[arg(
        long,
        env = inkeep_analytics::config::ENV_BASE_URL,
        global = true,
        default_value = inkeep_analytics::config::DEFAULT_BASE_URL
    )]
    pub base_url: Option<String>,

    /// Start a local sandbox of the API with demo data and use it (no key, no network).
    // Not `conflicts_with_all`: clap counts a value from the environment as given, and a key kept
    // in INKEEP_ANALYTICS_API_KEY must not stop anyone from trying the sandbox. `parse` refuses
    // only a key or URL given on the command line.
    #[arg(long, global = true)]
    pub sandbox: bool,

    /// How long one request may take, such as `30s` or `2m`.
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value_t = HumanDuration(inkeep_analytics::config::DEFAULT_TIMEOUT)
    )]
    pub timeout: HumanDuration,

    /// How long connecting to the API may take, such as `5s`.
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value_t = HumanDuration(inkeep_analytics::config::DEFAULT_CONNECT_TIMEOUT)
    )]
    pub connect_timeout: HumanDuration,

    /// How many times to retry a request that failed on the network or with 429/5XX. Long jobs
    /// (exports, syncs) are bounded by --retry-for instead, and by this count only when it is given.
    #[arg(
        long,
        global = true,
        default_value_t = inkeep_analytics::config::DEFAULT_MAX_RETRIES,
        value_name = "N"
    )]
    pub retries: u32,

    /// Whether `--retries` was given on the command line, rather than left at its default: a long
    /// job then bounds its retries by that count as well as by `--retry-for`.
    #[arg(skip)]
    pub retries_given: bool,

    /// How long each request of a long job (an export, a sync) may keep retrying a network
    /// failure, 429 or 5XX, such as `10m` or `90s`; a job that still fails says how to resume it.
    #[arg(
        long,
        global = true,
        value_name = "DURATION",
        default_value_t = HumanDuration(inkeep_analytics::config::DEFAULT_LONG_JOB_RETRY_FOR)
    )]
    pub retry_for: HumanDuration,

    /// The most requests in flight at once; fewer while the API answers slowly or asks to slow down.
    #[arg(
        long,
        global = true,
        default_value_t = inkeep_analytics::config::DEFAULT_MAX_CONCURRENCY,
        value_parser = parse_max_concurrency,
        value_name = "N"
    )]
    pub max_concurrency: usize,

    /// Output format.
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,

    /// Write the output to this file instead of standard output. Files the program creates are
    /// readable by their owner only (0600), directories 0700.
    #[arg(long, short = 'o', global = true, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print nothing but the output and errors.
    #[arg(long, short = 'q', global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Log what happens on standard error (repeat for more).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// A ceiling of requests in flight: a whole number, at least 1.
fn parse_max_concurrency(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(count) => Ok(count),
        Err(error) => Err(error.to_string()),
    }
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people (the default for lists on a terminal).
    Table,
    /// One JSON document.
    Json,
    /// One JSON record per line (the default for exports).
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read, log, delete and export conversations.
    #[command(subcommand)]
    Conversations(ConversationsCommand),
    /// Read, submit, delete and export feedback.
    #[command(subcommand)]
    Feedback(FeedbackCommand),
    /// Log events.
    #[command(subcommand)]
    Events(EventsCommand),
    /// Query a view with filters, selections, grouping and ordering.
    Query(QueryArgs),
    /// List the keys and values of properties and user properties.
    #[command(subcommand)]
    Properties(PropertiesCommand),
    /// Search statistics.
    #[command(subcommand)]
    Search(SearchCommand),
    /// Run the local sandbox of the API.
    #[command(subcommand)]
    Sandbox(SandboxCommand),
    /// Serve the API to AI assistants over MCP (stdio, or HTTP with --http).
    #[command(
        after_help = "Examples:\n  inkeep-analytics --sandbox mcp\n  inkeep-analytics mcp --tools list_conversations,query_conversations\n  inkeep-analytics mcp --http 8808\n  INKEEP_ANALYTICS_MCP_TOKEN=$(openssl rand -hex 32) inkeep-analytics mcp --allow-writes --http 8808"
    )]
    Mcp(McpArgs),
    /// Ship JSON lines of conversations, feedback and events through the recorder.
    Record(crate::record::RecordArgs),
    /// Mirror conversations and feedback into SQLite or Parquet, incrementally.
    #[command(
        after_help = "Examples:\n  inkeep-analytics sync --db analytics.db\n  sqlite3 analytics.db 'SELECT * FROM negative_feedback_by_week'\n  inkeep-analytics sync --parquet analytics/ --format json"
    )]
    Sync(crate::commands::sync::SyncArgs),
    /// Look into a recorder's spool.
    #[command(subcommand)]
    Spool(crate::record::SpoolCommand),
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  inkeep-analytics completions bash > ~/.local/share/bash-completion/completions/inkeep-analytics"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// A page of a listing.
#[derive(Debug, Args)]
pub struct PageArgs {
    /// How many records to return (0 to 100).
    #[arg(long, allow_negative_numbers = true)]
    pub limit: Option<i64>,
    /// How many records to skip.
    #[arg(long, allow_negative_numbers = true)]
    pub offset: Option<i64>,
}

/// Where an export goes and how it pages.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Records per request (1 to the API's largest page).
    #[arg(long, default_value_t = inkeep_analytics::listing::MAX_PAGE_SIZE, allow_negative_numbers = true)]
    pub page_size: i64,
    /// Continue an interrupted export to `--output` from its checkpoint, after checking that the
    /// partial file still holds what the checkpoint counts.
    #[arg(long, requires = "output")]
    pub resume: bool,
}

/// Where JSON input comes from.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// A JSON file, or `-` for standard input.
    #[arg(default_value = "-", value_name = "FILE")]
    pub input: PathBuf,
}

/// One OpenAI exchange to log.
#[derive(Debug, Args)]
pub struct LogOpenaiArgs {
    /// A JSON file with the exchange, or `-` for standard input.
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// The conversation to log into: the exchange is merged into what it already holds (read
    /// back first), so a turn that carries only part of the chat keeps the rest. Defaults to the
    /// conversation the request names (a `metadata` key such as `session_id`, or `user` with the
    /// chat's opening), else the completion's id (or, without one, an id derived from the file).
    #[arg(long, value_name = "ID")]
    pub conversation_id: Option<String>,
}

/// Conversations.
#[derive(Debug, Subcommand)]
pub enum ConversationsCommand {
    /// List one page of conversations.
    #[command(after_help = "Example:\n  inkeep-analytics conversations list --limit 5 --offset 10")]
    List(PageArgs),
    /// Show one conversation.
    #[command(after_help = "Example:\n  inkeep-analytics conversations get conv_123")]
    Get {
        /// The conversation's id.
        id: String,
    },
    /// Show the conversation with this external id.
    #[command(
        after_help = "Example:\n  inkeep-analytics conversations get-by-external-id zendesk-42"
    )]
    GetByExternalId {
        /// The id the conversation has in the integration that logged it.
        external_id: String,
    },
    /// Delete one conversation.
    #[command(after_help = "Example:\n  inkeep-analytics conversations delete conv_123")]
    Delete {
        /// The conversation's id.
        id: String,
    },
    /// Log (upsert) a conversation read as JSON, checked before it is sent.
    #[command(
        after_help = "Example:\n  echo '{\"type\":\"openai\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}' | inkeep-analytics conversations log -"
    )]
    Log(InputArgs),
    /// Log one OpenAI chat completion (its request and its response, or its streamed chunks)
    /// through the SDK's lossless mapping, and print the logged conversation.
    #[command(
        name = "log-openai",
        after_help = "The file holds {\"request\": <chat-completions request body>, \"response\": <chat.completion>}\nor {\"request\": ..., \"chunks\": [<chat.completion.chunk>, ...]}, exactly as OpenAI's API sends them.\nEach exchange is merged into what the conversation already holds (read back first), so the turns\nof a chat that sends the model only a window of its history keep the whole of it.\n\nExamples:\n  inkeep-analytics conversations log-openai turn-1.json --conversation-id support-42\n  inkeep-analytics conversations log-openai turn-2.json --conversation-id support-42\n  inkeep-analytics conversations log-openai streamed.json --format json"
    )]
    LogOpenai(LogOpenaiArgs),
    /// Export every conversation, exactly as the server sent each one.
    #[command(
        after_help = "Examples:\n  inkeep-analytics conversations export > conversations.jsonl\n  inkeep-analytics conversations export --output conversations.jsonl --resume\n  inkeep-analytics conversations export --format csv --output conversations.csv"
    )]
    Export(ExportArgs),
}

/// Feedback.
#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// List one page of feedback (both lists).
    #[command(after_help = "Example:\n  inkeep-analytics feedback list --limit 10")]
    List(PageArgs),
    /// Show one feedback item.
    #[command(after_help = "Example:\n  inkeep-analytics feedback get fb_789")]
    Get {
        /// The feedback's id.
        id: String,
    },
    /// Delete one feedback item.
    #[command(after_help = "Example:\n  inkeep-analytics feedback delete fb_789")]
    Delete {
        /// The feedback's id.
        id: String,
    },
    /// Submit feedback read as JSON, checked before it is sent.
    #[command(
        after_help = "Example:\n  echo '{\"type\":\"positive\",\"messageId\":\"msg_1\"}' | inkeep-analytics feedback submit -"
    )]
    Submit(InputArgs),
    /// Export every feedback item, exactly as the server sent each one.
    #[command(after_help = "Example:\n  inkeep-analytics feedback export --output feedback.jsonl")]
    Export(ExportArgs),
}

/// Events.
#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Log an event read as JSON, checked before it is sent.
    #[command(
        after_help = "Example:\n  echo '{\"entityType\":\"search\",\"type\":\"search_performed\",\"searchQuery\":\"pricing\"}' | inkeep-analytics events log -"
    )]
    Log(InputArgs),
}

/// A query over one view.
#[derive(Debug, Args)]
#[command(after_help = "Filter expressions:
  field = value, !=, >, >=, <, <=, field in [a, b], field not in [a, b],
  field contains value (arrays), field has key \"k\", field has any keys [..], field has all keys [..],
  field json contains {..}, field json contained by {..}, field array contains object {..},
  field is null, field is not null, joined with and, or and parentheses.
  A field is a name of the view or a JSON path such as properties.plan.
  Values are JSON: \"text\", 42, 1.5, true, null.

Examples:
  inkeep-analytics query conversations --where 'type = \"openai\" and userMessageCount >= 3'
  inkeep-analytics query conversations --select type --select count:id --group-by type --order-by count_id:desc
  inkeep-analytics query events --where 'eventType in [\"search\"]' --csv")]
pub struct QueryArgs {
    /// The view to query.
    #[arg(value_enum)]
    pub view: QueryView,
    /// A filter expression.
    #[arg(long = "where", value_name = "EXPRESSION")]
    pub filter: Option<String>,
    /// A selection: a field, `FUNCTION:FIELD` (sum, count, countDistinct, avg, min, max) or `time:UNIT[:FIELD]` (hour, day, week, month). Repeatable.
    #[arg(long, value_name = "SELECTION")]
    pub select: Vec<String>,
    /// A field to group by. Repeatable.
    #[arg(long, value_name = "FIELD")]
    pub group_by: Vec<String>,
    /// A sort key `FIELD[:asc|desc]`. Repeatable.
    #[arg(long, value_name = "FIELD[:DIRECTION]")]
    pub order_by: Vec<String>,
    /// A semantic search (semantic threads only).
    #[arg(long)]
    pub search: Option<String>,
    /// Stream the results as CSV through the export operation.
    #[arg(long)]
    pub csv: bool,
}

/// The views a query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueryView {
    /// Conversations.
    Conversations,
    /// Events.
    Events,
    /// Feedback.
    Feedback,
    /// Semantic threads.
    SemanticThreads,
}

/// Property look-ups.
#[derive(Debug, Subcommand)]
pub enum PropertiesCommand {
    /// List the keys used in properties or user properties.
    #[command(after_help = "Example:\n  inkeep-analytics properties keys --field userProperties")]
    Keys(PropertyArgs),
    /// List the values a key takes.
    #[command(
        after_help = "Example:\n  inkeep-analytics properties values plan --field properties --limit 20"
    )]
    Values {
        /// The key.
        key: String,
        #[command(flatten)]
        property: PropertyArgs,
        /// How many values to return (at least 1).
        #[arg(long, default_value_t = inkeep_analytics::query::DEFAULT_PROPERTY_VALUES_LIMIT)]
        limit: NonZeroU64,
    },
}

/// Which properties a look-up reads.
#[derive(Debug, Args)]
pub struct PropertyArgs {
    /// `properties` or `userProperties`.
    #[arg(long, default_value = "properties")]
    pub field: String,
    /// Views to read (all when omitted): conversations_view, events_view, feedback_view, semantic_threads_view.
    #[arg(long = "view")]
    pub views: Vec<String>,
}

/// Search statistics.
#[derive(Debug, Subcommand)]
pub enum SearchCommand {
    /// The most frequent search queries.
    #[command(after_help = "Example:\n  inkeep-analytics search top-queries --after 2025-01-01")]
    TopQueries(SearchArgs),
    /// Distinct searching users, week by week.
    #[command(after_help = "Example:\n  inkeep-analytics search weekly-users --project-id proj_1")]
    WeeklyUsers(SearchArgs),
}

/// Filters of the search statistics.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Only count searches after this point (sent as given).
    #[arg(long)]
    pub after: Option<String>,
    /// Only count this project.
    #[arg(long)]
    pub project_id: Option<String>,
}

/// The MCP server's options.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Offer the tools that write and delete (log_*, delete_*) as well as the reads.
    #[arg(long)]
    pub allow_writes: bool,
    /// Offer only these tools (comma-separated, such as list_conversations,query_conversations).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub tools: Vec<String>,
    /// The most characters one tool result may hold (about four per token).
    #[arg(long, default_value_t = crate::mcp::DEFAULT_BUDGET, value_parser = parse_budget, value_name = "CHARACTERS")]
    pub budget: usize,
    /// Serve streamable HTTP on 127.0.0.1 at this port (path /mcp) instead of stdio. Every
    /// request needs a bearer token, generated and printed once on stderr unless given, and a
    /// browser's request from an origin other than loopback (or --allow-origin) is refused.
    #[arg(long, value_name = "PORT")]
    pub http: Option<u16>,
    /// The address to listen on with --http; another than loopback needs a token.
    #[arg(long, value_name = "ADDRESS", requires = "http")]
    pub bind: Option<std::net::IpAddr>,
    /// The bearer token clients must send with --http, as `Authorization: Bearer <TOKEN>`
    /// (at least 16 characters; prefer the environment variable).
    #[arg(long, value_name = "TOKEN", env = crate::mcp::ENV_MCP_TOKEN, hide_env_values = true)]
    pub http_token: Option<String>,
    /// Serve --http without a token: refused with --allow-writes or off loopback.
    #[arg(long, requires = "http")]
    pub no_http_token: bool,
    /// A browser origin allowed to call the --http server besides loopback ones, such as
    /// https://app.example.com. Repeatable.
    #[arg(long, value_name = "ORIGIN", requires = "http")]
    pub allow_origin: Vec<String>,
}

/// A budget below a few thousand characters could not hold one record and its note.
fn parse_budget(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(budget) if budget >= 2_000 => Ok(budget),
        _ => Err(format!(
            "{text:?} must be a whole number of characters, at least 2000"
        )),
    }
}

/// The sandbox.
#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Serve the sandbox on 127.0.0.1 until interrupted.
    #[command(
        after_help = "Example:\n  inkeep-analytics sandbox serve --port 4010 --seed 7 --conversations 1000"
    )]
    Serve {
        /// The port (0 picks a free one).
        #[arg(long, default_value_t = 4010)]
        port: u16,
        /// The seed of the demo data.
        #[arg(long, default_value_t = inkeep_analytics_sandbox::DEFAULT_SEED)]
        seed: u64,
        /// How many conversations to generate.
        #[arg(long, default_value_t = inkeep_analytics_sandbox::DEFAULT_CONVERSATIONS)]
        conversations: usize,
    },
}

/// Parses the command line, refusing `--sandbox` together with `--api-key` or `--base-url` given
/// on the command line (the same settings from the environment are ignored by `--sandbox`).
pub fn parse() -> Result<Cli, clap::Error> {
    parse_from(std::env::args_os())
}

fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(args)?;
    if matches.get_flag("sandbox") {
        for (id, flag) in [
            ("api_key", "--api-key <API_KEY>"),
            ("base_url", "--base-url <BASE_URL>"),
        ] {
            if matches.value_source(id) == Some(ValueSource::CommandLine) {
                return Err(command.error(
                    ErrorKind::ArgumentConflict,
                    format!("the argument '--sandbox' cannot be used with '{flag}'"),
                ));
            }
        }
    }
    let mut cli = Cli::from_arg_matches(&matches).map_err(|error| error.format(&mut command))?;
    cli.global.retries_given = matches.value_source("retries") == Some(ValueSource::CommandLine);
    Ok(cli)
}

/// A duration on the command line: parsed from `500ms`, `30s`, `2m` or a bare number of seconds,
/// and shown the same way, so that `--help` prints the SDK's defaults as they are typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_duration(text).map(HumanDuration)
    }
}

impl std::fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "{}s", millis / 1000)
        } else {
            write!(f, "{millis}ms")
        }
    }
}

/// Parses `500ms`, `30s`, `2m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 30s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?} has an unknown unit; use ms, s or m")),
    };
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 86_400.0 {
        return Err(format!("{text:?} must be more than 0 and at most a day"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sandbox_refuses_only_a_key_or_url_on_the_command_line() {
        assert!(parse_from(["inkeep-analytics", "--sandbox", "conversations", "list"]).is_ok());
        for args in [
            &[
                "inkeep-analytics",
                "--sandbox",
                "--api-key",
                "k",
                "conversations",
                "list",
            ][..],
            &[
                "inkeep-analytics",
                "conversations",
                "list",
                "--base-url",
                "http://127.0.0.1:1",
                "--sandbox",
            ],
        ] {
            let error = parse_from(args).err().map(|error| error.kind());
            assert_eq!(error, Some(ErrorKind::ArgumentConflict), "{args:?}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("5"), Ok(Duration::from_secs(5)));
        for bad in ["", "0", "-1s", "5h", "abc", "1e999"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_given_on_the_command_line_are_told_apart_from_the_default() -> Result<(), clap::Error>
    {
        let cli = parse_from([
            "inkeep-analytics",
            "--retries",
            "2",
            "--retry-for",
            "10m",
            "conversations",
            "export",
        ])?;
        assert!(cli.global.retries_given);
        assert_eq!(cli.global.retry_for.0, Duration::from_secs(600));
        Ok(())
    }

    #[test]
    fn durations_print_as_they_parse() {
        for (duration, text) in [
            (Duration::from_secs(60), "60s"),
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(1500), "1500ms"),
        ] {
            assert_eq!(HumanDuration(duration).to_string(), text);
            assert_eq!(text.parse(), Ok(HumanDuration(duration)));
        }
    }

    #[test]
    fn the_defaults_are_the_sdks() -> Result<(), clap::Error> {
        let cli = parse_from(["inkeep-analytics", "conversations", "list"])?;
        assert_eq!(
            cli.global.retries,
            inkeep_analytics::config::DEFAULT_MAX_RETRIES
        );
        assert!(!cli.global.retries_given);
        assert_eq!(
            cli.global.retry_for.0,
            inkeep_analytics::config::DEFAULT_LONG_JOB_RETRY_FOR
        );
        assert_eq!(
            cli.global.timeout.0,
            inkeep_analytics::config::DEFAULT_TIMEOUT
        );
        assert_eq!(
            cli.global.connect_timeout.0,
            inkeep_analytics::config::DEFAULT_CONNECT_TIMEOUT
        );
        Ok(())
    }
}
