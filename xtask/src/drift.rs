//! The committed snapshots of the generated code (the client and its httpmock helpers), and the check that they match the spec.

use std::path::Path;

use inkeep_analytics_codegen::{
    CodegenError, GENERATE_COMMAND, MOCK_SNAPSHOT_PATH, SNAPSHOT_PATH, SPEC_PATH, generate_client,
    generate_mocks,
};
use similar::TextDiff;

use crate::read;

/// One committed file generated from the spec: where it lives and how it is generated.
pub struct Snapshot {
    /// Its path relative to the workspace root.
    pub path: &'static str,
    /// Generates its text from the spec text.
    pub generate: fn(&str) -> Result<String, CodegenError>,
}

/// The generated client of the SDK.
pub const CLIENT: Snapshot = Snapshot {
    path: SNAPSHOT_PATH,
    generate: generate_client,
};

/// The typed httpmock helpers of `inkeep-analytics-mock`.
pub const MOCKS: Snapshot = Snapshot {
    path: MOCK_SNAPSHOT_PATH,
    generate: generate_mocks,
};

/// Every snapshot, in the order they are written and checked.
pub const SNAPSHOTS: &[Snapshot] = &[CLIENT, MOCKS];

/// Writes every snapshot from the spec.
pub fn generate(root: &Path) -> Result<(), String> {
    let spec = read(&root.join(SPEC_PATH))?;
    for snapshot in SNAPSHOTS {
        let code = (snapshot.generate)(&spec).map_err(|e| e.to_string())?;
        let path = root.join(snapshot.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        std::fs::write(&path, code).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", snapshot.path);
    }
    Ok(())
}

/// Fails with a unified diff per stale snapshot when a committed snapshot is not what the spec generates.
pub fn check(root: &Path) -> Result<(), String> {
    let spec = read(&root.join(SPEC_PATH))?;
    let reports: Vec<String> = SNAPSHOTS
        .iter()
        .filter_map(|snapshot| check_one(root, &spec, snapshot).err())
        .collect();
    if reports.is_empty() {
        Ok(())
    } else {
        Err(reports.join("\n\n"))
    }
}

/// Compares one committed snapshot with what `spec` generates.
pub fn check_one(root: &Path, spec: &str, snapshot: &Snapshot) -> Result<(), String> {
    let committed = read(&root.join(snapshot.path)).unwrap_or_default();
    compare_snapshot(snapshot, spec, &committed)
}

/// Generates `snapshot` from `spec` in memory and compares it with `committed`, ignoring CRLF versus LF.
pub fn compare_snapshot(snapshot: &Snapshot, spec: &str, committed: &str) -> Result<(), String> {
    let generated = (snapshot.generate)(spec).map_err(|e| e.to_string())?;
    let committed = committed.replace("\r\n", "\n");
    if generated == committed {
        return Ok(());
    }
    let path = snapshot.path;
    let diff = TextDiff::from_lines(&committed, &generated)
        .unified_diff()
        .context_radius(3)
        .header(path, "generated from the spec")
        .to_string();
    Err(format!(
        "drift: {path} does not match {SPEC_PATH}.\n{diff}\nRun `{GENERATE_COMMAND}` and commit the result."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace_root;

    /// The same check as `cargo xtask check` for the client, so that plain `cargo test` fails on drift.
    #[test]
    fn snapshot_matches_spec() {
        let root = workspace_root();
        let spec = read(&root.join(SPEC_PATH)).unwrap_or_default();
        if let Err(report) = check_one(&root, &spec, &CLIENT) {
            panic!("{report}");
        }
    }

    /// The same check for the httpmock helpers of `inkeep-analytics-mock`.
    #[test]
    fn mock_snapshot_matches_spec() {
        let root = workspace_root();
        let spec = read(&root.join(SPEC_PATH)).unwrap_or_default();
        if let Err(report) = check_one(&root, &spec, &MOCKS) {
            panic!("{report}");
        }
    }

    const ANCHOR: &str = "    ProblemLegacyError:\n      type: object\n      description: Legacy error format for backward compatibility.\n      required: [code, message]\n      properties:\n";

    #[test]
    fn a_changed_spec_is_reported_with_a_diff() {
        let root = workspace_root();
        let spec = read(&root.join(SPEC_PATH)).unwrap_or_default();
        let snapshot = read(&root.join(SNAPSHOT_PATH)).unwrap_or_default();
        assert!(
            spec.contains(ANCHOR),
            "the test's anchor is gone from the spec"
        );
        let changed = spec.replace(
            ANCHOR,
            &format!("{ANCHOR}        supportHint: {{type: string}}\n"),
        );
        let report = compare_snapshot(&CLIENT, &changed, &snapshot)
            .err()
            .unwrap_or_default();
        assert!(report.contains("support_hint"), "{report}");
        assert!(report.contains("@@"), "no unified diff in: {report}");
        assert!(report.contains(GENERATE_COMMAND), "{report}");
    }

    #[test]
    fn a_changed_spec_is_reported_for_the_mocks_too() {
        let root = workspace_root();
        let spec = read(&root.join(SPEC_PATH)).unwrap_or_default();
        let committed = read(&root.join(MOCK_SNAPSHOT_PATH)).unwrap_or_default();
        let changed = format!("{spec}\n# a change that only moves the hash\n");
        let report = compare_snapshot(&MOCKS, &changed, &committed)
            .err()
            .unwrap_or_default();
        assert!(report.contains(MOCK_SNAPSHOT_PATH), "{report}");
        assert!(report.contains("@@"), "no unified diff in: {report}");
        assert!(report.contains(GENERATE_COMMAND), "{report}");
    }

    #[test]
    fn line_endings_do_not_count_as_drift() {
        let root = workspace_root();
        let spec = read(&root.join(SPEC_PATH)).unwrap_or_default();
        for snapshot in SNAPSHOTS {
            let committed = read(&root.join(snapshot.path)).unwrap_or_default();
            assert!(
                compare_snapshot(snapshot, &spec, &committed.replace('\n', "\r\n")).is_ok(),
                "{}",
                snapshot.path
            );
        }
    }
}
