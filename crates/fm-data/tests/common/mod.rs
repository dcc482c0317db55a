//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// `../shared/data/NAME` beside the repository, if present; otherwise prints that the test is
/// skipped and why. Under `CI=true` a missing folder fails the test instead: CI provides the
/// data, and a test that silently reports "ok" there would prove nothing.
pub fn shared(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    let why = format!(
        "{} is absent (the shared data sets are not part of a clone)",
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("CI=true: {why}");
    }
    eprintln!("skipped: {why}");
    None
}
