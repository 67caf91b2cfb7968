//! Everything CI runs, in one command, so that a developer can run exactly what CI runs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The crates published for users, whose requirements end up in other graphs; `cargo package`
/// packs and verifies them together.
pub(crate) const PUBLISHED: &[&str] = &[
    "inkeep-analytics",
    "inkeep-analytics-codegen",
    "inkeep-analytics-mock",
];

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
        if step.args.first() == Some(&"package") {
            remove_stale_unpacked_copies(&cargo_home())?;
        }
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

/// Where cargo keeps its registry: `$CARGO_HOME`, or `~/.cargo`.
fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from(".cargo"))
}

/// Removes the copies of our own crates that an earlier `cargo package` unpacked.
///
/// `cargo package` verifies a crate that depends on another of the workspace's crates against
/// that crate's fresh package, through a local registry that it unpacks under
/// `registry/src/<hash>/<name>-<version>`. Cargo never unpacks a version twice: while the
/// version stays `0.1.0`, a machine that keeps `~/.cargo` between runs would verify against the
/// sources of the first run (a CI run failed so, building a codegen that still used serde_yaml).
fn remove_stale_unpacked_copies(cargo_home: &Path) -> Result<(), String> {
    let sources = cargo_home.join("registry").join("src");
    let Ok(registries) = std::fs::read_dir(&sources) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        let Ok(unpacked) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for entry in unpacked.flatten() {
            let name = entry.file_name();
            if is_published_crate_copy(&name.to_string_lossy()) {
                let path = entry.path();
                std::fs::remove_dir_all(&path)
                    .map_err(|e| format!("cannot remove the stale copy {}: {e}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Whether `directory` is `<name>-<version>` for one of the crates we publish.
fn is_published_crate_copy(directory: &str) -> bool {
    PUBLISHED.iter().any(|name| {
        directory
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|version| version.chars().next())
            .is_some_and(|first| first.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unpacked_copies_of_our_published_crates_are_stale() {
        assert!(is_published_crate_copy("inkeep-analytics-0.1.0"));
        assert!(is_published_crate_copy("inkeep-analytics-codegen-0.1.0"));
        assert!(is_published_crate_copy("inkeep-analytics-mock-1.2.3-rc.1"));
        assert!(!is_published_crate_copy("inkeep-analytics-cli-0.1.0"));
        assert!(!is_published_crate_copy("inkeep-analytics-sandbox-0.1.0"));
        assert!(!is_published_crate_copy("serde-1.0.0"));
        assert!(!is_published_crate_copy("inkeep-analytics"));
    }

    #[test]
    fn stale_copies_are_removed_and_other_crates_kept() -> Result<(), String> {
        let home = std::env::temp_dir().join(format!("xtask-ci-home-{}", std::process::id()));
        let registry = home.join("registry").join("src").join("-22c3805da5a543b4");
        for directory in ["inkeep-analytics-codegen-0.1.0", "serde-1.0.0"] {
            std::fs::create_dir_all(registry.join(directory).join("src"))
                .map_err(|e| e.to_string())?;
        }
        remove_stale_unpacked_copies(&home)?;
        assert!(!registry.join("inkeep-analytics-codegen-0.1.0").exists());
        assert!(registry.join("serde-1.0.0").exists());
        std::fs::remove_dir_all(&home).map_err(|e| e.to_string())
    }
}
