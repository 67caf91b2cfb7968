//! The committed snapshot of the generated client, and the check that it matches the spec.

use std::path::Path;

use inkeep_analytics_codegen::{GENERATE_COMMAND, SNAPSHOT_PATH, SPEC_PATH, generate_client};
use similar::TextDiff;

use crate::read;

/// Writes the snapshot from the spec.
pub fn generate(root: &Path) -> Result<(), String> {
    let spec = read(&root.join(SPEC_PATH))?;
    let code = generate_client(&spec).map_err(|e| e.to_string())?;
    let path = root.join(SNAPSHOT_PATH);
    std::fs::write(&path, code).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {SNAPSHOT_PATH}");
    Ok(())
}

/// Fails with a unified diff when the committed snapshot is not what the spec generates.
pub fn check(root: &Path) -> Result<(), String> {
    let spec = read(&root.join(SPEC_PATH))?;
    let snapshot = read(&root.join(SNAPSHOT_PATH)).unwrap_or_default();
    compare(&spec, &snapshot)
}

/// Generates from `spec` in memory and compares with `snapshot`, ignoring CRLF versus LF.
pub fn compare(spec: &str, snapshot: &str) -> Result<(), String> {
    let generated = generate_client(spec).map_err(|e| e.to_string())?;
    let snapshot = snapshot.replace("\r\n", "\n");
    if generated == snapshot {
        return Ok(());
    }
    let diff = TextDiff::from_lines(&snapshot, &generated)
        .unified_diff()
        .context_radius(3)
        .header(SNAPSHOT_PATH, "generated from the spec")
        .to_string();
    Err(format!(
        "drift: {SNAPSHOT_PATH} does not match {SPEC_PATH}.\n{diff}\nRun `{GENERATE_COMMAND}` and commit the result."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace_root;

    /// The same check as `cargo xtask check`, so that plain `cargo test` fails on drift.
    #[test]
    fn snapshot_matches_spec() {
        let root = workspace_root();
        if let Err(report) = check(&root) {
            panic!("{report}");
        }
    }

    #[test]
    fn a_changed_spec_is_reported_with_a_diff() {
        let root = workspace_root();
        let spec = read(&root.join(SPEC_PATH)).unwrap_or_default();
        let snapshot = read(&root.join(SNAPSHOT_PATH)).unwrap_or_default();
        let anchor = "    ProblemLegacyError:\n      type: object\n      description: Legacy error format for backward compatibility.\n      required: [code, message]\n      properties:\n";
        assert!(
            spec.contains(anchor),
            "the test's anchor is gone from the spec"
        );
        let changed = spec.replace(
            anchor,
            &format!("{anchor}        supportHint: {{type: string}}\n"),
        );
        let report = compare(&changed, &snapshot).err().unwrap_or_default();
        assert!(report.contains("support_hint"), "{report}");
        assert!(report.contains("@@"), "no unified diff in: {report}");
        assert!(report.contains(GENERATE_COMMAND), "{report}");
    }

    #[test]
    fn line_endings_do_not_count_as_drift() {
        let root = workspace_root();
        let spec = read(&root.join(SPEC_PATH)).unwrap_or_default();
        let snapshot = read(&root.join(SNAPSHOT_PATH)).unwrap_or_default();
        assert!(compare(&spec, &snapshot.replace('\n', "\r\n")).is_ok());
    }
}
