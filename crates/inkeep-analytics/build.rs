//! Generates the API client from the OpenAPI document at build time.
//!
//! The settings live in `codegen/lib.rs`, which `cargo xtask` compiles too, so the committed
//! snapshot and this output are byte-identical.

#[path = "codegen/lib.rs"]
mod codegen;

use std::path::PathBuf;

fn main() {
    // In the workspace this is a link to `openapi/inkeep-analytics.yaml`; `cargo package` copies
    // the file itself, so the published crate generates from the same spec.
    // Cargo reads a link's target when it checks what changed. A path outside the package would
    // not exist in the published crate, and a missing path reruns this script on every build.
    let spec_path = "codegen/inkeep-analytics.yaml";
    println!("cargo:rerun-if-changed={spec_path}");
    println!("cargo:rerun-if-changed=codegen");

    let spec_text = match std::fs::read_to_string(spec_path) {
        Ok(text) => text,
        Err(error) => fail(&format!("cannot read {spec_path}: {error}")),
    };
    let code = match codegen::generate_client(&spec_text) {
        Ok(code) => code,
        Err(error) => fail(&error.to_string()),
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        fail("OUT_DIR is not set");
    };
    let out_path = PathBuf::from(out_dir).join("client.rs");
    if let Err(error) = std::fs::write(&out_path, code) {
        fail(&format!("cannot write {}: {error}", out_path.display()));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: inkeep-analytics code generation failed: {message}");
    std::process::exit(1);
}
