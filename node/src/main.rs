//! `swarmd`: one per machine.
fn main() {}
