//! `swarm`: the command line.
fn main() {}
