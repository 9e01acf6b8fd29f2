//! NAT rules from iptables-legacy, iptables-nft and native nftables, and the active alternative.
//!
//! Read-only, and careful about it: any `iptables-legacy*` command, `-save` included, makes the
//! kernel create the legacy x_tables it touches. So /proc/net/ip_tables_names (and
//! ip6_tables_names) are read first, and `iptables-legacy-save -t nat` runs only when a `nat`
//! table is already listed there. `iptables-nft-save` and `nft list` only read nf_tables.
//!
//! Tables of iptables-nft are visible to both `iptables-nft-save` and `nft`; their rules are taken
//! from `iptables-nft-save` (nft prints their DNAT targets as opaque compat expressions), and only
//! the other tables count as native nftables (see `parse::nft` for how they are told apart).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::evidence::{Backend, Family, FirewallState, Unavailable};
use crate::parse::iptables::{self, NatDump};
use crate::parse::nft;

/// Directories searched for the tools besides PATH: a non-root PATH often lacks the sbin ones.
const TOOL_DIRS: &[&str] = &["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// Read every backend without changing any. Returns what could be read and what could not.
pub fn collect(proc_root: &Path, port: u16) -> (FirewallState, Vec<Unavailable>) {
    let mut state =
        FirewallState { iptables_alternative: iptables_alternative(), ..FirewallState::default() };
    let mut unavailable = Vec::new();
    let legacy = legacy_tables(proc_root);
    let has_nat = |tables: &[String]| tables.iter().any(|t| t == "nat");
    let (legacy_nat, legacy6_nat) = match &legacy {
        Ok((v4, v6)) => (has_nat(v4), has_nat(v6)),
        Err(_) => (false, false),
    };
    // Each dump is a child process that mostly waits on the kernel: run them side by side, so the
    // collector costs the slowest one rather than the sum.
    const LEGACY_WHY: &str = "legacy x_tables hold a nat table";
    const NFT_WHY: &str = "Docker's rules in nf_tables through iptables-nft";
    let (legacy_out, legacy6_out, nft_out, nft6_out, ruleset_out) = std::thread::scope(|s| {
        let legacy = legacy_nat.then(|| s.spawn(|| run_save("iptables-legacy-save", LEGACY_WHY)));
        let legacy6 = legacy6_nat.then(|| s.spawn(|| run_save("ip6tables-legacy-save", LEGACY_WHY)));
        let nft = s.spawn(|| run_save("iptables-nft-save", NFT_WHY));
        let nft6 = s.spawn(|| run_save("ip6tables-nft-save", NFT_WHY));
        let ruleset = s.spawn(list_ruleset);
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<String, String>>| {
            h.join().unwrap_or_else(|_| Err("a firewall reader thread panicked".to_owned()))
        };
        (legacy.map(join), legacy6.map(join), join(nft), join(nft6), join(ruleset))
    });
    let mut legacy_outputs = [legacy_out, legacy6_out].into_iter();
    let mut nft_outputs = [nft_out, nft6_out].into_iter();

    // iptables-legacy: only when x_tables already hold a nat table.
    match legacy {
        Ok((v4, _)) => {
            state.legacy_tables = v4.clone();
            let mut dumps = Vec::new();
            let mut failed = false;
            for family in [Family::Ipv4, Family::Ipv6] {
                let Some(output) = legacy_outputs.next().flatten() else { continue };
                match output {
                    Ok(text) => dumps.push(iptables::parse_save(&text, family)),
                    Err(reason) => {
                        failed = true;
                        unavailable
                            .push(Unavailable { source: Backend::IptablesLegacy.as_str().into(), reason });
                    }
                }
            }
            // With no legacy nat table there is nothing to miss: that, too, is a complete read.
            if !failed {
                record(&mut state, Backend::IptablesLegacy, &dumps, port);
            }
        }
        Err(reason) => {
            unavailable.push(Unavailable { source: Backend::IptablesLegacy.as_str().into(), reason })
        }
    }

    // iptables-nft, both families.
    let mut dumps = Vec::new();
    let mut nft_failed = false;
    for family in [Family::Ipv4, Family::Ipv6] {
        match nft_outputs.next().expect("one output per family") {
            Ok(text) => dumps.push(iptables::parse_save(&text, family)),
            Err(reason) => {
                nft_failed = true;
                unavailable.push(Unavailable { source: Backend::IptablesNft.as_str().into(), reason });
                // Without the v4 tool the v6 one is missing too; one entry says it all.
                break;
            }
        }
    }
    if !nft_failed {
        record(&mut state, Backend::IptablesNft, &dumps, port);
    }

    // Native nftables.
    match ruleset_out {
        Ok(json) => match nft::parse_ruleset(&json) {
            Ok(ruleset) => {
                state.backends_read.push(Backend::Nftables);
                if ruleset.docker_tables().next().is_some() {
                    state.docker_chains_in.push(Backend::Nftables);
                }
                let native: Vec<_> = ruleset.native_dnat().collect();
                let docker_count = native.iter().filter(|d| d.entry.table == nft::DOCKER_TABLE).count();
                state.docker_dnat_count.push((Backend::Nftables, docker_count));
                state
                    .nat_rules
                    .extend(native.iter().flat_map(|d| d.entry.rules_for(Backend::Nftables, port)));
            }
            Err(e) => unavailable.push(Unavailable {
                source: Backend::Nftables.as_str().into(),
                reason: format!("cannot read `nft -j list ruleset`: {e}"),
            }),
        },
        Err(reason) => unavailable.push(Unavailable { source: Backend::Nftables.as_str().into(), reason }),
    }
    (state, unavailable)
}

fn record(state: &mut FirewallState, backend: Backend, dumps: &[NatDump], port: u16) {
    state.backends_read.push(backend);
    if dumps.iter().any(|d| d.docker_chain) {
        state.docker_chains_in.push(backend);
    }
    state.docker_dnat_count.push((backend, dumps.iter().map(|d| d.docker_dnat_count).sum()));
    state.nat_rules.extend(dumps.iter().flat_map(|d| d.rules_for(backend, port)));
}

/// Tables listed in /proc/net/ip_tables_names and ip6_tables_names. A missing file means x_tables
/// are not in the kernel (or not loaded): no legacy tables.
fn legacy_tables(proc_root: &Path) -> Result<(Vec<String>, Vec<String>), String> {
    let read = |name: &str| -> Result<Vec<String>, String> {
        let path = proc_root.join("net").join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text.split_whitespace().map(str::to_owned).collect()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(format!(
                "cannot read {}: {e}; without it iptables-legacy-save is not run, because running it \
                 would create legacy tables",
                path.display()
            )),
        }
    };
    Ok((read("ip_tables_names")?, read("ip6_tables_names")?))
}

/// `TOOL -t nat`, stdout on success, an actionable reason otherwise.
fn run_save(tool: &str, what: &str) -> Result<String, String> {
    let path =
        find_tool(tool).ok_or_else(|| format!("{tool} not found: apt-get install iptables ({what})"))?;
    run(&path, &["-t", "nat"])
}

fn list_ruleset() -> Result<String, String> {
    let path = find_tool("nft").ok_or_else(|| {
        "nft not found: apt-get install nftables (native nftables rules, e.g. Engine 29 \
         --firewall-backend=nftables, were not read)"
            .to_owned()
    })?;
    run(&path, &["-j", "list", "ruleset"])
}

fn run(path: &Path, args: &[&str]) -> Result<String, String> {
    let shown = format!("{} {}", path.display(), args.join(" "));
    let out = Command::new(path)
        .args(args)
        // Stable, untranslated output and messages.
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim();
    let hint = if first.contains("ermission denied") || first.contains("Operation not permitted") {
        "; run as root (reading firewall rules needs CAP_NET_ADMIN)"
    } else {
        ""
    };
    Err(format!("{shown} failed ({}): {first}{hint}", out.status))
}

/// A tool on PATH or in the usual sbin directories.
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path_dirs =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(TOOL_DIRS.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Where the `iptables` command points: `legacy`, `nft`, or `None` when it cannot be told.
///
/// Debian-style alternatives are a chain of symlinks (`/usr/sbin/iptables` →
/// `/etc/alternatives/iptables` → `/usr/sbin/iptables-nft` → `xtables-nft-multi`); the first link
/// whose name says `legacy` or `nft` decides. Without such links, `iptables --version` says
/// `(nf_tables)` or `(legacy)`; printing the version touches no table.
pub fn iptables_alternative() -> Option<String> {
    let candidates = ["/usr/sbin/iptables", "/sbin/iptables"].map(PathBuf::from);
    for start in candidates.iter().cloned().chain(find_tool("iptables")) {
        if let Some(kind) = alternative_via_links(&start) {
            return Some(kind.to_owned());
        }
    }
    let tool = find_tool("iptables")?;
    let out = Command::new(tool).arg("--version").env("LC_ALL", "C").output().ok()?;
    alternative_from_version(&String::from_utf8_lossy(&out.stdout)).map(str::to_owned)
}

/// Follow the symlink chain from `start` (at most 16 hops) and classify by link names.
pub(crate) fn alternative_via_links(start: &Path) -> Option<&'static str> {
    let mut current = start.to_path_buf();
    for _ in 0..16 {
        if let Some(kind) = current.file_name().and_then(|n| n.to_str()).and_then(alternative_from_name) {
            return Some(kind);
        }
        let next = std::fs::read_link(&current).ok()?;
        current = match current.parent() {
            Some(dir) if next.is_relative() => dir.join(next),
            _ => next,
        };
    }
    None
}

fn alternative_from_name(name: &str) -> Option<&'static str> {
    if name.contains("legacy") {
        Some("legacy")
    } else if name.contains("nft") {
        Some("nft")
    } else {
        None
    }
}

/// `iptables v1.8.9 (nf_tables)` → nft, `iptables v1.8.9 (legacy)` → legacy.
fn alternative_from_version(text: &str) -> Option<&'static str> {
    if text.contains("(nf_tables)") {
        Some("nft")
    } else if text.contains("(legacy)") {
        Some("legacy")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn alternative_from_a_debian_style_link_chain() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("xtables-legacy-multi"), "").unwrap();
        symlink("xtables-legacy-multi", d.join("iptables-legacy")).unwrap();
        symlink(d.join("iptables-legacy"), d.join("alt-iptables")).unwrap();
        symlink(d.join("alt-iptables"), d.join("iptables")).unwrap();
        assert_eq!(alternative_via_links(&d.join("iptables")), Some("legacy"));

        std::fs::write(d.join("xtables-nft-multi"), "").unwrap();
        symlink("xtables-nft-multi", d.join("iptables2")).unwrap();
        assert_eq!(alternative_via_links(&d.join("iptables2")), Some("nft"));

        std::fs::write(d.join("iptables3"), "").unwrap();
        assert_eq!(alternative_via_links(&d.join("iptables3")), None, "a plain binary says nothing");
    }

    #[test]
    fn alternative_from_version_text() {
        assert_eq!(alternative_from_version("iptables v1.8.9 (nf_tables)\n"), Some("nft"));
        assert_eq!(alternative_from_version("iptables v1.8.7 (legacy)\n"), Some("legacy"));
        assert_eq!(alternative_from_version("iptables v1.6.1\n"), None);
    }

    #[test]
    fn missing_table_lists_mean_no_legacy_tables() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(legacy_tables(dir.path()), Ok((Vec::new(), Vec::new())));
        std::fs::create_dir(dir.path().join("net")).unwrap();
        std::fs::write(dir.path().join("net/ip_tables_names"), "nat\nfilter\n").unwrap();
        assert_eq!(legacy_tables(dir.path()), Ok((vec!["nat".into(), "filter".into()], Vec::new())));
    }
}
