//! The `fm` command.
fn main() {}
