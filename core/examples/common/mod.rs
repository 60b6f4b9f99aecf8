//! Command-line flags of the benchmarks (each example includes this module): `--name value`
//! pairs and bare switches, nothing more, so the examples need no argument-parsing crate.

#![allow(dead_code)] // Each example uses some of these.

use std::str::FromStr;

/// The value after `--name`, if given.
pub fn value(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// The value after `--name` parsed, or `default` when absent or unreadable.
pub fn number<T: FromStr>(name: &str, default: T) -> T {
    value(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A comma-separated list of numbers after `--name`, or `default`.
pub fn numbers<T: FromStr>(name: &str, default: Vec<T>) -> Vec<T> {
    value(name).map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect()).unwrap_or(default)
}

/// Whether the bare switch `--name` is given.
pub fn switch(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
