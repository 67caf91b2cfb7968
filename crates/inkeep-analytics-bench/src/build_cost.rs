//! What depending on the SDK costs a user's build: a new crate that depends only on
//! `inkeep-analytics` is built from clean with each TLS feature (rustls with aws-lc-rs, the
//! default; rustls with ring; native-tls), and once more with the default features and the
//! generated code committed instead of generated (no build script, no build dependencies), side
//! by side in one run. Crates are fetched before the timed builds, which run offline.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::report;

/// The new crate's code: enough to use the client, so that nothing is optimised away.
const APP_MAIN: &str = r#"fn main() {
    let client = inkeep_analytics::Client::builder().api_key("sk-build-cost").build();
    println!("{}", client.is_ok());
}
"#;

struct Build {
    variant: &'static str,
    seconds: f64,
    packages: usize,
    build_scripts: usize,
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The TLS features a user can pick, as the dependency's settings after its path.
const TLS_VARIANTS: [(&str, &str); 3] = [
    ("rustls, aws-lc-rs (default)", ""),
    (
        "rustls-ring",
        ", default-features = false, features = [\"rustls-ring\"]",
    ),
    (
        "native-tls",
        ", default-features = false, features = [\"native-tls\"]",
    ),
];

fn app_manifest(sdk_path: &Path, features: &str, workspace: &str) -> String {
    format!(
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\ninkeep-analytics = {{ path = \"{}\"{features} }}\n{workspace}",
        sdk_path.display()
    )
}

/// The SDK as shipped: the new crate depends on the workspace's own SDK crate with `features`.
fn shipped(root: &Path, dir: &Path, features: &str) -> Result<(), String> {
    write(
        &dir.join("Cargo.toml"),
        &app_manifest(
            &root.join("crates/inkeep-analytics"),
            features,
            "\n[workspace]\n",
        ),
    )?;
    write(&dir.join("src/main.rs"), APP_MAIN)?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(|e| e.to_string())?;
    Ok(())
}

/// The same SDK with the committed snapshot included instead of generated: a copy of the crate
/// without `build.rs` or build dependencies, in a workspace that inherits the same settings.
fn committed(root: &Path, dir: &Path) -> Result<(), String> {
    let manifest = read(&root.join("Cargo.toml"))?;
    let members_start = manifest
        .find("members = [")
        .ok_or("no members in Cargo.toml")?;
    let members_end = manifest[members_start..]
        .find(']')
        .map(|end| members_start + end + 1)
        .ok_or("unterminated members")?;
    let workspace = format!(
        "{}members = [\"app\", \"inkeep-analytics\"]{}",
        &manifest[..members_start],
        &manifest[members_end..]
    )
    .lines()
    .filter(|line| !line.starts_with("default-members"))
    .collect::<Vec<_>>()
    .join("\n");
    write(&dir.join("Cargo.toml"), &workspace)?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).map_err(|e| e.to_string())?;
    write(
        &dir.join("app/Cargo.toml"),
        &app_manifest(Path::new("../inkeep-analytics"), "", ""),
    )?;
    write(&dir.join("app/src/main.rs"), APP_MAIN)?;

    let sdk = root.join("crates/inkeep-analytics");
    let copy = dir.join("inkeep-analytics");
    copy_dir(&sdk.join("src"), &copy.join("src"))?;
    copy_dir(&sdk.join("generated"), &copy.join("generated"))?;
    std::fs::copy(sdk.join("README.md"), copy.join("README.md")).map_err(|e| e.to_string())?;
    let sdk_manifest = read(&sdk.join("Cargo.toml"))?;
    let without_build: String = {
        let before = sdk_manifest
            .split("[build-dependencies]")
            .next()
            .unwrap_or_default()
            .to_string();
        let after = sdk_manifest
            .split("[build-dependencies]")
            .nth(1)
            .and_then(|rest| rest.find("\n[").map(|next| rest[next..].to_string()))
            .unwrap_or_default();
        format!("{before}{after}").replace("build = \"build.rs\"", "build = false")
    };
    write(&copy.join("Cargo.toml"), &without_build)?;
    let lib = read(&copy.join("src/lib.rs"))?;
    let generated_include = "include!(concat!(env!(\"OUT_DIR\"), \"/client.rs\"));";
    if !lib.contains(generated_include) {
        return Err("src/lib.rs no longer includes the generated client from OUT_DIR".into());
    }
    write(
        &copy.join("src/lib.rs"),
        &lib.replace(generated_include, "include!(\"../generated/client.rs\");"),
    )?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Builds `package` in `dir` from an empty target directory, counting what cargo compiled.
fn build(variant: &'static str, dir: &Path, package: &str) -> Result<Build, String> {
    let target = dir.join("target");
    let _ = std::fs::remove_dir_all(&target);
    // Downloads are not what is measured: a feature's crates may not be in the cache yet.
    let fetched = Command::new("cargo")
        .arg("fetch")
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !fetched.status.success() {
        return Err(format!(
            "fetching the crates of the {variant} build failed:\n{}",
            String::from_utf8_lossy(&fetched.stderr)
        ));
    }
    let start = Instant::now();
    let output = Command::new("cargo")
        .args(["build", "--offline", "--message-format=json", "-p", package])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let seconds = start.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(format!(
            "the {variant} build failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut packages = BTreeSet::new();
    let mut build_scripts = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        match message["reason"].as_str() {
            Some("compiler-artifact") => {
                let kinds = message["target"]["kind"].to_string();
                if !kinds.contains("custom-build") {
                    packages.insert(message["package_id"].to_string());
                }
            }
            Some("build-script-executed") => build_scripts += 1,
            _ => {}
        }
    }
    Ok(Build {
        variant,
        seconds,
        packages: packages.len(),
        build_scripts,
    })
}

/// Runs every build and reports them; writes the section of `BENCHMARKS.md` when asked.
pub fn run(root: &Path, write_to: Option<&Path>) -> Result<(), String> {
    let scratch: PathBuf = root.join("target/bench-build");
    let _ = std::fs::remove_dir_all(&scratch);
    let mut builds = Vec::new();
    for (index, (variant, features)) in TLS_VARIANTS.iter().enumerate() {
        let dir = scratch.join(format!("shipped-{index}"));
        shipped(root, &dir, features)?;
        eprintln!("building a new crate on the SDK as shipped with {variant} ...");
        builds.push(build(variant, &dir, "app")?);
    }
    committed(root, &scratch.join("committed"))?;
    eprintln!("building it on the SDK with the generated code committed ...");
    let committed = build(
        "rustls, aws-lc-rs, generated code committed",
        &scratch.join("committed"),
        "app",
    )?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "Measured with `cargo xtask bench build-cost` on {}: `cargo build` (debug) of a new crate whose only dependency is `inkeep-analytics`, from an empty target directory, offline, every variant in one run.",
        report::machine()
    );
    let _ = writeln!(text);
    let _ = writeln!(
        text,
        "| SDK features | Clean build | Crates compiled | Build scripts run |"
    );
    let _ = writeln!(text, "|---|---:|---:|---:|");
    for build in builds.iter().chain([&committed]) {
        let _ = writeln!(
            text,
            "| {} | {:.0} s | {} | {} |",
            build.variant, build.seconds, build.packages, build.build_scripts
        );
    }
    let _ = writeln!(text);
    if let (Some(aws_lc), Some(ring)) = (builds.first(), builds.get(1)) {
        let _ = writeln!(
            text,
            "ring instead of aws-lc-rs changes the clean build by {:+.0} s ({:+.0}%).",
            ring.seconds - aws_lc.seconds,
            (ring.seconds / aws_lc.seconds - 1.0) * 100.0,
        );
        let _ = writeln!(
            text,
            "Generating at build time changes the clean build by {:+.0} s ({:+.0}%) and compiles {} crates more than committing the generated code.",
            aws_lc.seconds - committed.seconds,
            (aws_lc.seconds / committed.seconds - 1.0) * 100.0,
            aws_lc.packages.saturating_sub(committed.packages),
        );
    }
    println!("{text}");
    if let Some(path) = write_to {
        report::write_section(path, report::BUILD_SECTION, &text)?;
        eprintln!("wrote the build cost to {}", path.display());
    }
    Ok(())
}
