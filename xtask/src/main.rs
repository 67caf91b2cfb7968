//! Workspace automation for inkeep-analytics: `cargo xtask generate | check | ci`.
//!
//! It exists so that generation, the drift check and the spec lint are one command each,
//! in Rust, on every platform, with the settings shared with the SDK's `build.rs`.

mod ci;
mod drift;
mod lint;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  generate   regenerate the committed snapshots of the generated client and httpmock helpers
  check      fail on drift between the spec and the snapshot, and lint the spec
  ci         everything CI runs: fmt, clippy, check, tests, docs, package";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => drift::generate(&workspace_root()),
        Some("check") => check(&workspace_root()),
        Some("ci") => ci::run(&workspace_root()),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The drift check and the lint, reporting every problem before failing.
fn check(root: &Path) -> Result<(), String> {
    let mut failures = Vec::new();
    if let Err(diff) = drift::check(root) {
        failures.push(diff);
    } else {
        println!("drift: the snapshots match the spec");
    }
    match lint::lint_workspace(root) {
        Ok(()) => println!("lint: the spec follows every rule"),
        Err(problems) => failures.push(problems),
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or(manifest_dir)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}
