//! The rules a parsed scenario must meet beyond its types: a trigger that can run, an
//! expectation per engine and backend that can be checked, claims that can be measured.

use std::path::Path;

use super::error::{line_at, ScenarioError};
use super::*;

/// `table` (a path of keys) with `field` appended.
fn at<'a>(table: &[&'a str], field: &'a str) -> Vec<&'a str> {
    let mut p = table.to_vec();
    p.push(field);
    p
}

pub(super) fn validate(path: &Path, text: &str, s: &Scenario) -> Result<(), ScenarioError> {
    let invalid = |key: &[&str], message: String, fix: &str| ScenarioError::Invalid {
        path: path.to_owned(),
        line: line_at(text, key),
        message,
        fix: fix.to_owned(),
    };
    if s.schema_version != SCHEMA_VERSION {
        return Err(invalid(
            &["schema_version"],
            format!(
                "schema_version {} is not supported (this portwhy-lab reads {SCHEMA_VERSION})",
                s.schema_version
            ),
            "set `schema_version = 1` and follow scenarios/README.md",
        ));
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if s.name != stem {
        return Err(invalid(
            &["name"],
            format!("name `{}` differs from the file name `{stem}.toml`", s.name),
            "rename the file or the `name` so they match",
        ));
    }
    if s.seed_claim.claim.trim().len() < 20 {
        return Err(invalid(
            &["seed_claim", "claim"],
            "the seed claim is empty or too short to say what is being tested".into(),
            "restate the claim in one sentence of your own words",
        ));
    }
    if let Some(c) = &s.trigger.compose {
        if !s.trigger.run.is_empty() {
            return Err(invalid(
                &["trigger", "run"],
                "the trigger has both `run` and `compose`".into(),
                "keep one: `run` for docker run, `compose` for a compose project",
            ));
        }
        return crate::compose::validate(c)
            .map_err(|(message, fix)| invalid(&["trigger", "compose"], message, &fix))
            .and_then(|()| validate_rest(path, text, s));
    }
    let run = &s.trigger.run;
    if run.len() < 3 || run[0] != "docker" || run[1] != "run" {
        return Err(invalid(
            &["trigger", "run"],
            "the trigger must be a `docker run ...` argv".into(),
            "write run = [\"docker\", \"run\", \"-d\", \"--name\", \"web\", \"-p\", \"8080:80\", \"busybox\", ...]",
        ));
    }
    if s.trigger.container_name().is_none() {
        return Err(invalid(
            &["trigger", "run"],
            "the trigger does not name its container".into(),
            "add \"--name\", \"<name>\" so the runner can remove it before re-triggering",
        ));
    }
    if !run.iter().any(|a| a == "-d" || a == "--detach") {
        return Err(invalid(
            &["trigger", "run"],
            "the trigger does not detach".into(),
            "add \"-d\" after \"run\"",
        ));
    }
    if s.trigger.publishes().is_empty() {
        return Err(invalid(
            &["trigger", "run"],
            "the trigger publishes no port".into(),
            "add \"-p\", \"HOST:CONTAINER\"",
        ));
    }
    validate_rest(path, text, s)
}

/// What every trigger kind shares: claims, overrides, expectations.
fn validate_rest(path: &Path, text: &str, s: &Scenario) -> Result<(), ScenarioError> {
    let invalid = |key: &[&str], message: String, fix: &str| ScenarioError::Invalid {
        path: path.to_owned(),
        line: line_at(text, key),
        message,
        fix: fix.to_owned(),
    };
    // Each list of claims with the path of its table, so a bad effect is reported on its line.
    let mut lists: Vec<(Vec<String>, &[RemedyClaim])> = vec![(vec!["expect".into()], &s.expect.claims)];
    for (k, o) in &s.expect.engine {
        lists.extend(o.claims.as_deref().map(|c| (vec!["expect".into(), "engine".into(), k.clone()], c)));
    }
    for (b, o) in &s.expect.backend {
        lists
            .extend(o.claims.as_deref().map(|c| (vec!["expect".into(), "backend".into(), b.to_string()], c)));
    }
    for (table, claims) in lists {
        for (i, c) in claims.iter().enumerate() {
            for e in &c.effects {
                // getent takes one argument; a name with spaces or a leading '-' would be read otherwise.
                let ok = !e.lookup.is_empty()
                    && !e.lookup.starts_with('-')
                    && e.lookup.chars().all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch));
                if !ok {
                    let index = i.to_string();
                    let mut key: Vec<&str> = table.iter().map(String::as_str).collect();
                    key.extend(["claims", index.as_str(), "effects"]);
                    return Err(invalid(
                        &key,
                        format!("a claim's effect looks up {:?}, which is not a host name", e.lookup),
                        "name a host name: letters, digits, '.', '_' and '-', not starting with '-'",
                    ));
                }
            }
        }
    }
    if s.environment.backends.is_empty() {
        return Err(invalid(
            &["environment", "backends"],
            "no backend to run on".into(),
            "list legacy, nft, nftables or several",
        ));
    }
    let mut keys: Vec<(&str, Option<BackendName>)> = vec![("", None)];
    keys.extend(s.expect.engine.keys().map(|k| (k.as_str(), None)));
    keys.extend(s.expect.backend.keys().map(|b| ("", Some(*b))));
    for (key, backend) in keys {
        // Resolve as if the engine were the key itself, so every override is checked.
        let engine = EngineKey { name: key, version: key };
        let label = match (key, backend) {
            (_, Some(b)) => format!("[expect.backend.{b}]"),
            ("", None) => "[expect]".to_owned(),
            (k, None) => format!("[expect.engine.\"{k}\"]"),
        };
        let backend_key = backend.map(|b| b.to_string());
        let table: Vec<&str> = match (key, &backend_key) {
            (_, Some(b)) => vec!["expect", "backend", b.as_str()],
            ("", None) => vec!["expect"],
            (k, None) => vec!["expect", "engine", k],
        };
        let e = s.expectation_for_cell(engine, backend).map_err(|m| {
            invalid(
                &at(&table, "stage"),
                format!("{label}: {m}"),
                "pair `trigger = \"fails\"` with a `stage`",
            )
        })?;
        if e.trigger == ExpectedTrigger::Succeeds
            && !e.cause.is_note()
            && e.traffic.is_empty()
            && !e.cause.silent()
        {
            return Err(invalid(
                &at(&table, "cause"),
                format!("{label}: a trigger that succeeds cannot be blocked by {}", e.cause),
                "expect a silent cause (PW005, PW008, PW010, PW011) or PW000, or `trigger = \"fails\"`",
            ));
        }
        if e.cause.silent() && e.traffic.is_empty() {
            return Err(invalid(
                &at(&table, "cause"),
                format!("{label}: {} is silent: only traffic shows it", e.cause),
                "add [[expect.traffic]] checks (from, answers)",
            ));
        }
        match (e.cause.is_note(), e.remedy) {
            (false, None) => {
                return Err(invalid(
                    &at(&table, "cause"),
                    format!("{label}: {} needs the remedy that must be proven", e.cause),
                    "add `remedy = \"<action kind>\"` (e.g. \"stop-process\", \"delete-nat-rule\"): the lowest-risk fix portwhy proposes for this cause",
                ))
            }
            (true, Some(r)) => {
                return Err(invalid(
                    &at(&table, "remedy"),
                    format!("{label}: {} is a note: there is no cause for `{r}` to remove", e.cause),
                    "remove `remedy`",
                ))
            }
            _ => {}
        }
        if e.traffic.iter().any(|t| t.client.is_some() && t.from != TrafficSource::OtherNetwork) {
            return Err(invalid(
                &at(&table, "traffic"),
                format!("{label}: `client` only applies to probes from other-network"),
                "remove `client` or set `from = \"other-network\"`",
            ));
        }
        if e.traffic.iter().any(|t| t.from == TrafficSource::Loopback6) && !s.environment.ipv6 {
            return Err(invalid(
                &at(&table, "traffic"),
                format!("{label}: a probe from ::1 needs IPv6 in the environment"),
                "set `ipv6 = true` under [environment]",
            ));
        }
    }
    Ok(())
}
