//! Host facts: kernel, WSL, resolver, conntrack, unprivileged port start, addresses.

use std::path::Path;

use crate::evidence::HostInfo;

pub fn collect(proc_root: &Path) -> Result<HostInfo, String> {
    let _ = proc_root;
    Err("not implemented".into())
}
