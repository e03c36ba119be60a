//! The repository's own files and scripts, for the tests that check what ships beside the binary
//! (alert rules, manifests, dashboard). Included on its own (`#[path]`) by suites that need nothing
//! else of `support`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file's text; panics naming the file.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Panics with how to install `program` unless `program --version` runs: a test that needs a tool
/// fails without it rather than passing unchecked. Returns the program's name.
pub fn require_tool(program: &str, install: &str) -> String {
    match Command::new(program).arg("--version").stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => program.to_owned(),
        Ok(out) => {
            panic!("`{program} --version` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr))
        }
        Err(e) => panic!("this test needs {program} ({e}); on Debian: {install}"),
    }
}

/// Runs a check script of the repository (`script` relative to the root) with bash and panics with
/// its output unless it succeeds.
pub fn run_check(script: &str) {
    let out = Command::new("bash")
        .arg(root().join(script))
        .output()
        .unwrap_or_else(|e| panic!("bash {script} cannot be run: {e}"));
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
