//! Helpers shared by the integration tests.

use std::path::PathBuf;

/// `../shared/data/NAME` beside the repository, if present; otherwise says the test is skipped.
pub fn shared(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is absent (the shared data sets are not part of a clone)",
            dir.display()
        );
        None
    }
}
