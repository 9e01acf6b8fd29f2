//! portwhy-lab.
fn main() {}
