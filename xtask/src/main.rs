//! Workspace automation for inkeep-analytics: `cargo xtask generate | check | ci | bench`.
//!
//! It exists so that generation, the drift check and the spec lint are one command each,
//! in Rust, on every platform, with the settings shared with the SDK's `build.rs`.

mod ci;
#[cfg(test)]
mod deps;
mod drift;
mod layers;
mod lint;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  generate   regenerate the committed snapshots of the generated client and httpmock helpers
  check      fail on drift between the spec and the snapshot, lint the spec and the SDK's layers
  ci         everything CI runs: fmt, clippy, check, tests, docs, package
  bench      every scenario below, one after the other, each written to its block of BENCHMARKS.md
  bench loopback
             the SDK, the program and the peers side by side on 127.0.0.1 against a server that
             answers like a production one (options: --conversations N --feedback N --rounds N
             --scales N,N,..|none --server builtin|nginx)
  bench wan  the same through a shaping proxy (100 ms each way, 100 Mbit/s shared) in front of a
             compressing server (options: --conversations N --rounds N --scales N,N,..|none
             --latency-ms N --bandwidth-mbit N --large N)
  bench rate-limit
             the program's export against a sandbox limited to 20 requests a second (options:
             --conversations N --rate R --burst N --rounds N)
  bench build-cost
             what depending on the SDK costs a new crate's clean build, written to BENCHMARKS.md";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("generate") => drift::generate(&workspace_root()),
        Some("check") => check(&workspace_root()),
        Some("ci") => ci::run(&workspace_root()),
        Some("bench") => bench(&workspace_root(), &args[1..]),
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
    match layers::check(root) {
        Ok(()) => println!("layers: no module of the SDK names a layer above it"),
        Err(problems) => failures.push(problems),
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

/// Builds the harness and the program in release mode and runs the harness, which writes its
/// results into `BENCHMARKS.md`. Benchmarks report; they are not part of `ci`.
fn bench(root: &Path, args: &[String]) -> Result<(), String> {
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args([
                "build",
                "--release",
                "-p",
                "inkeep-analytics-bench",
                "-p",
                "inkeep-analytics-cli",
            ])
            .current_dir(root)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err("the release build of the benchmark failed".into());
    }
    let harness = |command: &str, rest: &[String]| -> Result<(), String> {
        let status = std::process::Command::new(root.join("target/release/inkeep-analytics-bench"))
            .arg(command)
            .args(rest)
            .arg("--write")
            .arg(root.join("BENCHMARKS.md"))
            .current_dir(root)
            .status()
            .map_err(|e| format!("cannot run the benchmark harness: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the benchmark `{command}` failed"))
        }
    };
    let profile = |name: &str, rest: &[String]| {
        let mut all = vec!["--profile".to_string(), name.to_string()];
        all.extend_from_slice(rest);
        harness("run", &all)
    };
    match args.first().map(String::as_str) {
        Some("build-cost") => harness("build-cost", &args[1..]),
        Some("loopback") => profile("loopback", &args[1..]),
        Some("wan") => profile("wan", &args[1..]),
        Some("rate-limit") => harness("rate-limit", &args[1..]),
        // Every scenario with its defaults; options apply to the loopback profile only.
        _ => {
            profile("loopback", args)?;
            profile("wan", &[])?;
            harness("rate-limit", &[])
        }
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
