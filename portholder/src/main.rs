//! portholder: holds ports with exact socket options.
fn main() {}
