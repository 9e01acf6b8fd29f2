//! Redaction of volatile values (ids, addresses, pids, timings) for snapshots, in one place.
//!
//! Everything that changes between two runs of the same cell becomes a bracketed placeholder, so a
//! snapshot diff only shows changes of verdict or remedy. Addresses that carry meaning in a verdict
//! (wildcards, loopback, the resolver stub) are kept.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{json, Value};

use portwhy::diagnosis::Diagnosis;

use crate::outcome::CellResult;

struct Rule {
    re: Regex,
    replacement: &'static str,
}

fn rule(pattern: &str, replacement: &'static str) -> Rule {
    Rule { re: Regex::new(pattern).expect("redaction patterns are constant and valid"), replacement }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    vec![
        // Full container, network and endpoint ids.
        rule(r"\b[0-9a-f]{64}\b", "[ID]"),
        // Short ids as `docker ps` prints them.
        rule(r"\b[0-9a-f]{12}\b", "[SHORT_ID]"),
        // Environment and run names carry the run id.
        rule(r"\bpw-[0-9a-z]{4,}(-[0-9a-z]+)*\b", "[ENV]"),
        rule(r"\bpid[= ](\d+)\b", "pid [PID]"),
        // Remedies that name processes: `kill 192`, `kill 192 204`.
        rule(r"\bkill(?: \d+)+\b", "kill [PID]"),
        // nft rule handles are allocated per ruleset and differ between runs.
        rule(r"\bhandle \d+\b", "handle [HANDLE]"),
        rule(r"\b(\d+(\.\d+)?) ?(ms|s)\b", "[ELAPSED]"),
        // Link-local and global IPv6 addresses (`::`, `::1` stay).
        rule(r"\b(?:fe80|fd[0-9a-f]{2}|2001):[0-9a-f:]+\b", "[IP6]"),
    ]
});

/// IPv4 addresses; wildcard, loopback and resolver stubs keep their meaning and are not redacted.
static IPV4: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
        .expect("constant pattern")
});

/// Replace volatile values in one string.
pub fn text(input: &str) -> String {
    let mut out = IPV4
        .replace_all(input, |c: &regex::Captures<'_>| {
            let ip = &c[0];
            if ip == "0.0.0.0" || ip.starts_with("127.") {
                ip.to_owned()
            } else {
                "[IP]".to_owned()
            }
        })
        .into_owned();
    for r in RULES.iter() {
        out = r.re.replace_all(&out, r.replacement).into_owned();
    }
    out
}

/// The snapshot of one cell: the verdict `verdict` (today's rules over the cell's recorded bundle)
/// and what the cell measured (the trigger, the probes, every remedy tried), not logs; every string
/// redacted. `recording` says whether the recorded verdict is still what today's rules give.
pub fn cell_view(c: &CellResult, verdict: &Diagnosis) -> Value {
    let first = verdict.verdict();
    let recorded_same = c.diagnosis.as_ref().is_some_and(|d| d.findings == verdict.findings);
    json!({
        "scenario": c.scenario,
        "engine": c.engine_name,
        "backend": c.backend,
        "trigger": {
            "exit_code": c.trigger.exit_code,
            "error": text(&c.trigger.error),
        },
        "verdict": {
            "stage": verdict.error.as_ref().map(|e| e.stage),
            "cause": first.map(|f| f.code),
            "summary": first.map(|f| text(&f.summary)),
            "confidence": first.map(|f| f.confidence),
            "remedies": first.map(|f| f.remedies.iter().map(|r| json!({
                "kind": r.kind(),
                "purpose": r.purpose,
                "risk": r.risk,
                "command": text(&r.command),
            })).collect::<Vec<_>>()),
        },
        "traffic": c.observed.as_ref().map(|o| o.traffic.iter().map(|t| json!({
            "from": t.from,
            "answered": t.answered,
        })).collect::<Vec<_>>()),
        "remedies_tried": c.remedies.iter().map(|r| {
            let mut t = json!({
                "kind": r.kind,
                "source": r.source,
                "purpose": r.purpose,
                "outcome": r.outcome,
            });
            // Only claims that state a side effect carry one: other snapshots stay as they were.
            if !r.effects.is_empty() {
                t["effects"] = r.effects.iter().map(|e| json!({
                    "lookup": e.lookup,
                    "before": e.before,
                    "after": e.after,
                })).collect();
            }
            t
        }).collect::<Vec<_>>(),
        "status": c.status,
        "recording": if recorded_same {
            "today's rules give the recorded verdict"
        } else {
            "older than the rules: today's verdict differs from the one the live run recorded (refresh: see README, Snapshots)"
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volatile_values_become_placeholders() {
        let id = "a".repeat(64);
        let s = format!(
            "driver failed on endpoint web ({id}): portholder pid=4211 holds 172.17.0.3:8080, 0.0.0.0:8080 and 127.0.0.53:53 after 812 ms in pw-k3x9q2-sid"
        );
        assert_eq!(
            text(&s),
            "driver failed on endpoint web ([ID]): portholder pid [PID] holds [IP]:8080, 0.0.0.0:8080 and 127.0.0.53:53 after [ELAPSED] in [ENV]"
        );
    }

    #[test]
    fn pids_in_kill_remedies_are_placeholders() {
        // Docker-in-Docker pids differ between runs of the same cell (seen as a snapshot diff in CI).
        assert_eq!(text("kill 192"), "kill [PID]");
        assert_eq!(text("kill 192 204"), "kill [PID]");
        assert_eq!(text("pkill -f docker-proxy"), "pkill -f docker-proxy");
    }

    #[test]
    fn ports_and_codes_are_kept() {
        assert_eq!(text("PW001 host-process on 8080/tcp"), "PW001 host-process on 8080/tcp");
    }
}
