//! Generates the typed httpmock helpers from the OpenAPI document at build time.
//!
//! The settings are the SDK's own, from the crate `inkeep-analytics-codegen`, so the helpers name
//! exactly the types of the client; `cargo xtask generate` writes the same code as a snapshot.

use std::path::PathBuf;

fn main() {
    // In the workspace this is a link to `openapi/inkeep-analytics.yaml`; `cargo package` copies
    // the file itself, so the published crate generates from the same spec as the SDK.
    let spec_path = "spec/inkeep-analytics.yaml";
    println!("cargo:rerun-if-changed={spec_path}");

    let spec_text = match std::fs::read_to_string(spec_path) {
        Ok(text) => text,
        Err(error) => fail(&format!("cannot read {spec_path}: {error}")),
    };
    let code = match inkeep_analytics_codegen::generate_mocks(&spec_text) {
        Ok(code) => code,
        Err(error) => fail(&error.to_string()),
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        fail("OUT_DIR is not set");
    };
    let out_path = PathBuf::from(out_dir).join("mock.rs");
    if let Err(error) = std::fs::write(&out_path, code) {
        fail(&format!("cannot write {}: {error}", out_path.display()));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: inkeep-analytics-mock code generation failed: {message}");
    std::process::exit(1);
}
