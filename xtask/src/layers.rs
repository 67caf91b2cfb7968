//! The SDK's layering rule, checked by `cargo xtask check`: a lower layer never names a module above it.
//!
//! The layers run spec -> generated code -> `transport` -> `client`, the listings, `query`, the
//! recorder -> `openai`. Rust allows module cycles, so the compiler does not hold this line; a
//! reader does, when a layer can be read without the ones above it.
//! The check reads `crate::` paths in code (comment lines are skipped, so docs may point upwards).

use std::path::Path;

/// Where each rule applies (a file or a directory under the SDK's `src/`), and the top-level
/// modules it must not name.
const RULES: &[(&str, &[&str])] = &[
    (
        "transport",
        &[
            "client",
            "config",
            "pagination",
            "listing",
            "query",
            "recorder",
            "openai",
            "export",
            "prelude",
        ],
    ),
    (
        "error.rs",
        &["client", "pagination", "query", "recorder", "openai"],
    ),
    ("pagination.rs", &["client", "recorder", "openai"]),
    ("query", &["recorder", "openai", "pagination"]),
    ("recorder", &["openai"]),
];

/// Checks the SDK's sources under `root`, reporting every crossing.
pub fn check(root: &Path) -> Result<(), String> {
    let src = root.join("crates/inkeep-analytics/src");
    let mut problems = Vec::new();
    for (place, forbidden) in RULES {
        let mut files = Vec::new();
        sources(&src.join(place), &mut files)?;
        for file in files {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            for name in crossings(&text, forbidden) {
                let shown = file
                    .strip_prefix(root)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                problems.push(format!("{shown} names crate::{name}, a layer above it"));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("layers:\n  {}", problems.join("\n  ")))
    }
}

/// The file at `path`, or every `.rs` file under it.
pub(crate) fn sources(path: &Path, found: &mut Vec<std::path::PathBuf>) -> Result<(), String> {
    if path.is_file() {
        found.push(path.to_path_buf());
        return Ok(());
    }
    let entries =
        std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() || path.extension().is_some_and(|ext| ext == "rs") {
            sources(&path, found)?;
        }
    }
    Ok(())
}

/// The forbidden modules that `text` names as `crate::name` or inside `crate::{..}`, outside comments.
fn crossings<'a>(text: &str, forbidden: &[&'a str]) -> Vec<&'a str> {
    let code: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect();
    let code = code.join("\n");
    let mut named = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        // `$crate::` and `other_crate::` are not this crate's paths.
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        let first_segments: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => group
                .split('}')
                .next()
                .unwrap_or_default()
                .split(',')
                .collect(),
            None => vec![rest],
        };
        for segment in first_segments {
            let segment = segment.trim();
            let end = segment
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(segment.len());
            if let Some(name) = forbidden.iter().find(|name| **name == &segment[..end]) {
                named.push(*name);
            }
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sdk_keeps_its_layers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        if let Err(problems) = check(&root) {
            panic!("{problems}");
        }
    }

    #[test]
    fn a_path_upwards_is_found_in_code_not_in_comments() {
        let forbidden = &["recorder", "client"];
        assert_eq!(
            crossings("use crate::recorder::Recorder;", forbidden),
            ["recorder"]
        );
        assert_eq!(
            crossings("use crate::{error::Error, client::Client};", forbidden),
            ["client"]
        );
        assert!(crossings("/// See [`crate::recorder`].\nuse crate::error;", forbidden).is_empty());
        assert!(crossings("$crate::recorder!(); other_crate::client", forbidden).is_empty());
    }
}
