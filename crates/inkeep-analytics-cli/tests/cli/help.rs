//! `--help` of the program and of every command group, against goldens, and the exit code of help and usage errors.

use crate::support::{assert_golden, cli, run};

/// Every command group, and the golden file of its `--help`.
const GROUPS: &[(&[&str], &str)] = &[
    (&[], "help.txt"),
    (&["conversations"], "help-conversations.txt"),
    (&["feedback"], "help-feedback.txt"),
    (&["events"], "help-events.txt"),
    (&["query"], "help-query.txt"),
    (&["properties"], "help-properties.txt"),
    (&["search"], "help-search.txt"),
    (&["sandbox"], "help-sandbox.txt"),
    (&["completions"], "help-completions.txt"),
    (&["mcp"], "help-mcp.txt"),
    (&["record"], "help-record.txt"),
    (&["spool"], "help-spool.txt"),
    (&["sync"], "help-sync.txt"),
    (
        &["conversations", "export"],
        "help-conversations-export.txt",
    ),
];

#[test]
fn help_matches_the_goldens() {
    for (path, golden) in GROUPS {
        let output = run(cli().args(*path).arg("--help"));
        let text = output.ok();
        assert!(
            output.stderr.is_empty(),
            "help writes nothing on stderr: {}",
            output.stderr
        );
        assert_golden(golden, &text);
    }
}

#[test]
fn the_help_subcommand_prints_the_same_help() {
    let flag = run(cli().args(["conversations", "--help"])).ok();
    let subcommand = run(cli().args(["help", "conversations"])).ok();
    assert_eq!(flag, subcommand);
}

#[test]
fn the_top_level_help_documents_the_exit_codes() {
    let text = run(cli().arg("--help")).ok();
    for code in [
        "0 success",
        "2 usage or invalid input",
        "3 authentication (401, 403)",
        "4 not found (404)",
        "5 other API error",
        "6 network or timeout",
    ] {
        assert!(text.contains(code), "{code:?} is missing from --help");
    }
}

#[test]
fn version_prints_the_crate_version() {
    let text = run(cli().arg("--version")).ok();
    assert_eq!(
        text,
        format!("inkeep-analytics {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_missing_command_is_a_usage_error_with_help_on_stderr() {
    let output = run(&mut cli());
    output.exits(2);
    assert!(output.stdout.is_empty());
    assert!(
        output.stderr.contains("Usage: inkeep-analytics"),
        "{}",
        output.stderr
    );
}

/// The default `--help` shows for `option`: the `[default: ...]` line of its entry.
fn default_of(help: &str, option: &str) -> Option<String> {
    let entry = &help[help.find(&format!("      {option} "))?..];
    let entry = &entry[..entry[option.len() + 6..]
        .find("\n      -")
        .map_or(entry.len(), |end| end + option.len() + 6)];
    let start = entry.find("[default: ")? + "[default: ".len();
    Some(entry[start..].split(']').next()?.to_string())
}

#[test]
fn help_shows_the_sdks_defaults() {
    let help = run(cli().args(["conversations", "export", "--help"])).ok();
    let seconds = |duration: std::time::Duration| format!("{}s", duration.as_secs());
    for (option, expected) in [
        (
            "--retries",
            inkeep_analytics::config::DEFAULT_MAX_RETRIES.to_string(),
        ),
        (
            "--timeout",
            seconds(inkeep_analytics::config::DEFAULT_TIMEOUT),
        ),
        (
            "--connect-timeout",
            seconds(inkeep_analytics::config::DEFAULT_CONNECT_TIMEOUT),
        ),
        (
            "--base-url",
            inkeep_analytics::config::DEFAULT_BASE_URL.to_string(),
        ),
        (
            "--page-size",
            inkeep_analytics::listing::MAX_PAGE_SIZE.to_string(),
        ),
    ] {
        assert_eq!(
            default_of(&help, option).as_deref(),
            Some(expected.as_str()),
            "{option}:\n{help}"
        );
    }
    let values = run(cli().args(["properties", "values", "--help"])).ok();
    assert_eq!(
        default_of(&values, "--limit"),
        Some(inkeep_analytics::query::DEFAULT_PROPERTY_VALUES_LIMIT.to_string()),
        "{values}"
    );
}
