//! Everything CI runs, in one command, so that a developer can run exactly what CI runs.

use std::path::Path;
use std::process::Command;

/// One step: a name for the log and the cargo arguments.
struct Step {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

const STEPS: &[Step] = &[
    Step {
        name: "format",
        args: &["fmt", "--all", "--", "--check"],
        env: &[],
    },
    Step {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        env: &[],
    },
    Step {
        name: "drift check and spec lint",
        args: &[
            "run",
            "--quiet",
            "--locked",
            "--package",
            "xtask",
            "--",
            "check",
        ],
        env: &[],
    },
    Step {
        name: "tests (unit, integration and doctests)",
        args: &["test", "--workspace", "--locked"],
        env: &[],
    },
    Step {
        name: "the SDK's optional JSON Schema support (feature `schemars`)",
        args: &[
            "test",
            "--package",
            "inkeep-analytics",
            "--features",
            "schemars",
            "--lib",
            "--locked",
        ],
        env: &[],
    },
    Step {
        name: "docs",
        args: &["doc", "--workspace", "--no-deps", "--locked"],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
    },
    Step {
        // Published in this order: the codegen, then the SDK, then the mock crate, which needs
        // both; cargo packages them together against each other's packages.
        name: "package the published crates and build each on its own",
        args: &[
            "package",
            "--package",
            "inkeep-analytics-codegen",
            "--package",
            "inkeep-analytics",
            "--package",
            "inkeep-analytics-mock",
            "--locked",
            "--allow-dirty",
        ],
        env: &[],
    },
];

/// Runs every step in order and stops at the first failure.
pub fn run(root: &Path) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    for (index, step) in STEPS.iter().enumerate() {
        println!(
            "==> [{}/{}] {}: cargo {}",
            index + 1,
            STEPS.len(),
            step.name,
            step.args.join(" ")
        );
        let status = Command::new(&cargo)
            .args(step.args)
            .envs(step.env.iter().copied())
            .current_dir(root)
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("ci: step `{}` failed ({status})", step.name));
        }
    }
    println!("ci: every step passed");
    Ok(())
}
