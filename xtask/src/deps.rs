//! Checks on what the published crates ask of their users' dependency graphs, run by `cargo test -p xtask`.
//!
//! A crate on crates.io that requires `=x.y.z` of a dependency makes every graph that needs another
//! version of it unbuildable, so only the generator whose output the drift check compares
//! (progenitor) is pinned exactly; the workspace's `Cargo.lock` keeps the check deterministic.
//! And the SDK's default build must not compile `schemars` into users' programs.
//! The program's fresh build (the README's main job, issue 24) stays short through the settings
//! checked at the end: no aws-lc, no serde_yaml, crates off the data paths built with less
//! optimisation, and a bundled SQLite without the modules nothing here uses.

use std::path::Path;
use std::process::Command;

use crate::ci::PUBLISHED;

/// The only dependencies a published crate may require exactly: the generator and its runtime half.
pub const PINNED: &[&str] = &["progenitor-impl", "progenitor-client"];

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()))
}

/// The output of a cargo command run in `root`, or why it failed.
fn cargo_output(root: &Path, args: &[&str]) -> Result<String, String> {
    let output = cargo()
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    String::from_utf8(output.stdout).map_err(|e| format!("cargo wrote non-UTF-8: {e}"))
}

/// Every exact (`=`) requirement of a published crate on something other than progenitor, as
/// `crate -> dependency =version (kind)`, from `cargo metadata --format-version 1 --no-deps`.
pub fn exact_requirements(metadata: &serde_json::Value) -> Result<Vec<String>, String> {
    let packages = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata lists no packages")?;
    let mut found = Vec::new();
    for package in packages {
        let name = package["name"].as_str().unwrap_or_default();
        if !PUBLISHED.contains(&name) {
            continue;
        }
        let dependencies = package["dependencies"]
            .as_array()
            .ok_or_else(|| format!("{name} has no dependency list"))?;
        for dependency in dependencies {
            let dependency_name = dependency["name"].as_str().unwrap_or_default();
            let requirement = dependency["req"].as_str().unwrap_or_default();
            let exact = requirement
                .split(',')
                .any(|part| part.trim_start().starts_with('='));
            if exact && !PINNED.contains(&dependency_name) {
                let kind = dependency["kind"].as_str().unwrap_or("normal");
                found.push(format!(
                    "{name} -> {dependency_name} {requirement} ({kind})"
                ));
            }
        }
    }
    Ok(found)
}

/// What a build of a user's program compiles of a package's tree: `normal` edges only.
const NORMAL: &str = "normal";
/// What a build of the package itself compiles: its build scripts' dependencies too.
const NORMAL_AND_BUILD: &str = "normal,build";

/// The names of the packages in the dependency tree of `package` along `edges` (never dev).
fn dependency_names(
    root: &Path,
    package: &str,
    edges: &str,
    features: &[&str],
) -> Result<Vec<String>, String> {
    let mut args = vec![
        "tree",
        "--offline",
        "--package",
        package,
        "--edges",
        edges,
        "--prefix",
        "none",
        "--format",
        "{p}",
    ];
    for feature in features {
        args.extend(["--features", feature]);
    }
    let tree = cargo_output(root, &args)?;
    Ok(tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// The features cargo enables on `dependency` in the normal dependency tree of `package`.
fn features_of(root: &Path, package: &str, dependency: &str) -> Result<Vec<String>, String> {
    let tree = cargo_output(
        root,
        &[
            "tree",
            "--offline",
            "--package",
            package,
            "--edges",
            "normal",
            "--invert",
            dependency,
            "--depth",
            "0",
            "--format",
            "{f}",
        ],
    )?;
    Ok(tree
        .lines()
        .flat_map(|line| line.split(','))
        .map(|feature| feature.trim().to_string())
        .filter(|feature| !feature.is_empty())
        .collect())
}

/// Crates whose speed the benchmarks measure (the export, the scan, decoding, the recorder's spool,
/// the mirror's sync, the benchmarks' built-in server): their opt-level stays the release default.
const ON_THE_DATA_PATH: &[&str] = &[
    "inkeep-analytics",
    "inkeep-analytics-cli",
    "inkeep-analytics-mirror",
    "inkeep-analytics-sandbox",
    "serde",
    "serde_json",
    "reqwest",
    "hyper",
    "hyper-util",
    "h2",
    "http",
    "bytes",
    "rustls",
    "ring",
    "tokio",
    "tokio-util",
    "futures-util",
    "memchr",
    "simdutf8",
    "async-compression",
    "compression-codecs",
    "flate2",
    "brotli",
    "brotli-decompressor",
    "zstd",
    "zstd-safe",
    "zstd-sys",
    "rusqlite",
    "libsqlite3-sys",
    "parquet",
    "twox-hash",
    "foldhash",
    "chrono",
    "axum",
    "csv",
    "sha2",
];

/// The packages that `[profile.release.package.NAME]` tables of the workspace's manifest give an
/// opt-level below the default, as (name, opt-level).
fn lightly_optimised_packages(manifest: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut package: Option<String> = None;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            package = line
                .strip_prefix("[profile.release.package.")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(|name| name.trim_matches('"').to_string());
        } else if let (Some(name), Some(value)) = (&package, line.strip_prefix("opt-level")) {
            let value = value
                .trim_start_matches([' ', '='])
                .trim()
                .trim_matches('"');
            if value != "3" {
                found.push((name.clone(), value.to_string()));
            }
        }
    }
    found
}

/// The `-U` flags the workspace's `.cargo/config.toml` gives libsqlite3-sys's build of the bundled
/// SQLite through `LIBSQLITE3_FLAGS`, such as `SQLITE_ENABLE_FTS5`.
fn sqlite_modules_left_out(config: &str) -> Vec<String> {
    config
        .lines()
        .filter_map(|line| line.trim().strip_prefix("LIBSQLITE3_FLAGS"))
        .flat_map(|value| {
            value
                .trim_start_matches([' ', '='])
                .trim()
                .trim_matches('"')
                .split_whitespace()
                .filter_map(|flag| flag.strip_prefix("-U"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_crates_pin_nothing_but_progenitor() -> Result<(), String> {
        let text = cargo_output(
            &crate::workspace_root(),
            &[
                "metadata",
                "--format-version",
                "1",
                "--no-deps",
                "--offline",
            ],
        )?;
        let metadata: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("cargo metadata: {e}"))?;
        let names: Vec<&str> = metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|package| package["name"].as_str())
            .collect();
        for published in PUBLISHED {
            assert!(
                names.contains(published),
                "{published} is not in the workspace"
            );
        }
        let exact = exact_requirements(&metadata)?;
        assert!(
            exact.is_empty(),
            "published crates force exact versions on their users (only progenitor may be pinned):\n{}",
            exact.join("\n")
        );
        Ok(())
    }

    #[test]
    fn an_exact_requirement_is_reported_and_progenitor_is_not() -> Result<(), String> {
        let metadata = serde_json::json!({"packages": [
            {"name": "inkeep-analytics", "dependencies": [
                {"name": "progenitor-impl", "req": "=0.15.1", "kind": "build"},
                {"name": "progenitor-client", "req": "=0.15.1", "kind": null},
                {"name": "syn", "req": "=3.0.9", "kind": "build"},
                {"name": "serde", "req": ">=1.0.0, =1.0.226", "kind": null},
                {"name": "quote", "req": "^1.0.45", "kind": "build"},
            ]},
            {"name": "xtask", "dependencies": [
                {"name": "openapiv3", "req": "=2.2.0", "kind": null},
            ]},
        ]});
        assert_eq!(
            exact_requirements(&metadata)?,
            [
                "inkeep-analytics -> syn =3.0.9 (build)",
                "inkeep-analytics -> serde >=1.0.0, =1.0.226 (normal)",
            ]
        );
        Ok(())
    }

    /// `schemars` is only compiled into a user's program with the SDK's `schemars` feature. (It is
    /// still built for the SDK's build script, since progenitor's generator reads schemas with it.)
    #[test]
    fn the_default_build_links_no_schemars() -> Result<(), String> {
        let root = crate::workspace_root();
        let default = dependency_names(&root, "inkeep-analytics", NORMAL, &[])?;
        assert!(
            default.iter().any(|name| name == "reqwest"),
            "the tree was not read: {default:?}"
        );
        assert!(
            !default.iter().any(|name| name.starts_with("schemars")),
            "a default build of the SDK links schemars: {default:?}"
        );
        let with_feature = dependency_names(&root, "inkeep-analytics", NORMAL, &["schemars"])?;
        assert!(
            with_feature.iter().any(|name| name == "schemars"),
            "the `schemars` feature no longer pulls in schemars, so this check proves nothing"
        );
        Ok(())
    }

    /// async-openai (and the client stack it brings) is only compiled in with the SDK's
    /// `async-openai` feature; a default build stays free of it.
    #[test]
    fn the_default_build_links_no_async_openai() -> Result<(), String> {
        let root = crate::workspace_root();
        let default = dependency_names(&root, "inkeep-analytics", NORMAL, &[])?;
        assert!(
            default.iter().any(|name| name == "reqwest"),
            "the tree was not read: {default:?}"
        );
        assert!(
            !default.iter().any(|name| name == "async-openai"),
            "a default build of the SDK links async-openai: {default:?}"
        );
        let with_feature = dependency_names(&root, "inkeep-analytics", NORMAL, &["async-openai"])?;
        assert!(
            with_feature.iter().any(|name| name == "async-openai"),
            "the `async-openai` feature no longer pulls in async-openai, so this check proves nothing"
        );
        Ok(())
    }

    /// The client asks for compressed answers and decodes them itself (`transport/compression.rs`),
    /// so neither the SDK nor the program may build reqwest's own decoders (tower-http's
    /// decompression and the codecs behind it) only to switch them off.
    #[test]
    fn reqwest_is_built_without_its_own_decompression() -> Result<(), String> {
        let root = crate::workspace_root();
        for package in ["inkeep-analytics", "inkeep-analytics-cli"] {
            let features = features_of(&root, package, "reqwest")?;
            assert!(
                features.iter().any(|feature| feature == "json"),
                "the features of reqwest were not read for {package}: {features:?}"
            );
            for codec in ["gzip", "brotli", "zstd", "deflate"] {
                assert!(
                    !features.iter().any(|feature| feature == codec),
                    "{package} builds reqwest with `{codec}`, which the client turns off: {features:?}"
                );
            }
        }
        Ok(())
    }

    /// serde_yaml is deprecated; the build script, the program and xtask read the spec through
    /// `codegen/yaml.rs` (yaml-rust2), so no build of the SDK or the program compiles it.
    #[test]
    fn no_build_compiles_the_deprecated_serde_yaml() -> Result<(), String> {
        let root = crate::workspace_root();
        for package in ["inkeep-analytics", "inkeep-analytics-cli", "xtask"] {
            let names = dependency_names(&root, package, NORMAL_AND_BUILD, &[])?;
            assert!(
                names.iter().any(|name| name == "yaml-rust2"),
                "the tree of {package} was not read, or it reads the spec another way: {names:?}"
            );
            assert!(
                !names
                    .iter()
                    .any(|name| name == "serde_yaml" || name == "unsafe-libyaml"),
                "a build of {package} compiles serde_yaml: {names:?}"
            );
        }
        Ok(())
    }

    /// The program builds rustls with ring: aws-lc-sys is the largest C build of a fresh build of
    /// it, and only the SDK's default (`rustls`, for its post-quantum key exchange) asks for it.
    /// A crate of the workspace that turns the SDK's default features back on brings it back.
    #[test]
    fn the_program_builds_ring_not_aws_lc() -> Result<(), String> {
        let root = crate::workspace_root();
        let program = dependency_names(&root, "inkeep-analytics-cli", NORMAL_AND_BUILD, &[])?;
        assert!(
            program.iter().any(|name| name == "ring"),
            "the program no longer builds ring, so this check proves nothing: {program:?}"
        );
        assert!(
            !program.iter().any(|name| name.starts_with("aws-lc")),
            "the program builds aws-lc again: {program:?}"
        );
        let sdk = dependency_names(&root, "inkeep-analytics", NORMAL, &[])?;
        assert!(
            sdk.iter().any(|name| name == "aws-lc-rs"),
            "the SDK's default TLS is no longer rustls with aws-lc-rs: {sdk:?}"
        );
        Ok(())
    }

    /// A package given less optimisation must be one the program builds (a renamed or dropped
    /// crate leaves a table that cargo only warns about) and one whose speed nothing measures.
    #[test]
    fn only_crates_off_the_data_path_are_built_with_less_optimisation() -> Result<(), String> {
        let root = crate::workspace_root();
        let manifest = crate::read(&root.join("Cargo.toml"))?;
        let lowered = lightly_optimised_packages(&manifest);
        assert!(
            lowered.iter().any(|(name, _)| name == "rmcp"),
            "the MCP server is no longer built with less optimisation, or the manifest was not read: {lowered:?}"
        );
        let program = dependency_names(&root, "inkeep-analytics-cli", NORMAL, &[])?;
        for (name, level) in &lowered {
            assert!(
                program.contains(name),
                "[profile.release.package.{name}] names a crate the program does not build"
            );
            assert!(
                !ON_THE_DATA_PATH.contains(&name.as_str()),
                "{name} is on a measured data path and must keep the release opt-level, not {level}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_opt_levels_below_the_default_are_read_from_the_manifest() {
        let manifest = "[profile.release]\ndebug = false\n\n[profile.release.package.rmcp]\nopt-level = 1\n\
            [profile.release.package.\"serde_json\"]\nopt-level = \"s\"\n[profile.release.package.ring]\nopt-level = 3\n\
            [dependencies]\nopt-level = 0\n";
        assert_eq!(
            lightly_optimised_packages(manifest),
            [
                ("rmcp".to_string(), "1".to_string()),
                ("serde_json".to_string(), "s".to_string())
            ]
        );
    }

    /// The bundled SQLite is built without the modules `.cargo/config.toml` leaves out; code that
    /// starts using one of them (a full-text index, an R*Tree) must put it back, and the JSON
    /// functions the mirror's views call must stay.
    #[test]
    fn the_bundled_sqlite_leaves_out_only_modules_nothing_uses() -> Result<(), String> {
        let root = crate::workspace_root();
        let config = crate::read(&root.join(".cargo/config.toml"))?;
        let left_out = sqlite_modules_left_out(&config);
        assert!(
            left_out.iter().any(|flag| flag == "SQLITE_ENABLE_FTS5"),
            "the build no longer leaves out FTS5, or the configuration was not read: {left_out:?}"
        );
        assert!(
            !config.contains("SQLITE_OMIT_JSON"),
            "the mirror's views call json_each and json_extract"
        );
        let mut files = Vec::new();
        crate::layers::sources(&root.join("crates"), &mut files)?;
        crate::layers::sources(&root.join("tests"), &mut files)?;
        assert!(
            files.iter().any(|file| file.ends_with("schema.rs")),
            "the mirror's schema was not among the sources read"
        );
        for file in &files {
            let text = crate::read(file)?.to_lowercase();
            for flag in &left_out {
                let keywords: &[&str] = match flag.as_str() {
                    "SQLITE_ENABLE_FTS3" => &["using fts3", "using fts4"],
                    "SQLITE_ENABLE_FTS5" => &["using fts5"],
                    "SQLITE_ENABLE_RTREE" => &["using rtree", "using geopoly"],
                    _ => &[],
                };
                for keyword in keywords {
                    assert!(
                        !text.contains(keyword),
                        "{} uses `{keyword}`, which the bundled SQLite is built without ({flag} in .cargo/config.toml)",
                        file.display()
                    );
                }
            }
        }
        Ok(())
    }
}
