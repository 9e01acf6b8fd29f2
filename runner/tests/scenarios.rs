//! Every scenario in scenarios/ parses and validates; every invalid-* fixture fails with the right
//! message, at the right line, with a fix.

use std::path::{Path, PathBuf};

use portwhy::cause::CauseCode;
use portwhy_lab::scenario::{self, EngineKey, ExpectedTrigger, ScenarioError};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("runner sits in the workspace").to_owned()
}

const ENGINES: [EngineKey<'static>; 6] = [
    EngineKey { name: "bookworm", version: "20.10.24" },
    EngineKey { name: "trixie", version: "26.1.5" },
    EngineKey { name: "forky", version: "28.5.2" },
    EngineKey { name: "static-29.1.1", version: "29.1.1" },
    EngineKey { name: "static-29.1.2", version: "29.1.2" },
    EngineKey { name: "static-29.7.2", version: "29.7.2" },
];

#[test]
fn every_scenario_file_loads_and_resolves_on_every_engine() {
    let dir = repo().join("scenarios");
    let all = scenario::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml"));
    assert_eq!(all.len(), files.count(), "every .toml in scenarios/ is a scenario");
    assert!(all.len() >= 19, "the matrix covers at least 19 scenarios, found {}", all.len());
    for (path, s) in &all {
        for engine in ENGINES.iter().filter(|e| s.runs_on(**e)) {
            let e = s
                .expectation_for(*engine)
                .unwrap_or_else(|m| panic!("{}: {} on {}: {m}", path.display(), s.name, engine.version));
            // A failing trigger always carries the stage portwhy must classify.
            if let ExpectedTrigger::Fails { .. } = e.trigger {
                assert_ne!(e.cause, CauseCode::NoConflict, "{}: a failure needs a cause", s.name);
            }
        }
    }
}

#[test]
fn engine_overrides_apply_by_version_prefix() {
    let s = scenario::load(&repo().join("scenarios/silent-share-udp-reuseaddr.toml")).unwrap();
    let old = s.expectation_for(ENGINES[0]).unwrap();
    let new = s.expectation_for(ENGINES[2]).unwrap();
    assert!(matches!(old.trigger, ExpectedTrigger::Fails { .. }));
    assert_eq!(old.cause, CauseCode::HostProcess);
    assert_eq!(new.trigger, ExpectedTrigger::Succeeds);
    assert_eq!(new.cause, CauseCode::SilentShare);
    assert_eq!(new.traffic.len(), 2);
    assert!(new.note.as_deref().unwrap_or_default().contains("50669"));
}

#[test]
fn selection_names_unknown_scenarios() {
    let err = scenario::select(&repo().join("scenarios"), &["no-such".to_owned()]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("no scenario named `no-such`") && msg.contains("host-listener-wildcard"), "{msg}");
}

/// (fixture, line, words the message must contain, words the fix must contain)
const INVALID: &[(&str, usize, &str, &str)] = &[
    ("invalid-unknown-cause", 16, "unknown variant `PW042`", "one of the values"),
    ("invalid-stage-missing", 13, "needs `stage`", "stage"),
    ("invalid-typo-field", 16, "unknown field `cuase`", "rename the key"),
    ("invalid-bad-port", 4, "`http` is not a port number", "fix the TOML"),
    ("invalid-name-mismatch", 2, "differs from the file name", "rename"),
    ("invalid-override-stage", 21, "must not have a `stage`", "stage"),
    ("invalid-missing-remedy", 16, "PW001 needs the remedy that must be proven", "remedy = "),
    ("invalid-no-name", 11, "does not name its container", "--name"),
    ("invalid-silent-without-traffic", 15, "PW008 is silent", "[[expect.traffic]]"),
    ("invalid-toml-syntax", 3, "", "fix the TOML"),
    ("invalid-fault-kind", 11, "unknown variant `host-listner`", "one of the values"),
    // A tagged fault's fields are checked after its kind is known, so the line is its table's.
    ("invalid-fault-field", 10, "unknown field `reuse_addr`", "rename the key"),
    ("invalid-effect-lookup", 25, "looks up \"--help\", which is not a host name", "name a host name"),
];

#[test]
fn invalid_fixtures_fail_with_file_line_and_fix() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios");
    let on_disk = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(on_disk, INVALID.len(), "every invalid-* fixture has a row in INVALID");
    for (name, line, message, fix) in INVALID {
        let path = dir.join(format!("{name}.toml"));
        let err = scenario::load(&path).expect_err(name);
        let (got_line, got_fix) = match &err {
            ScenarioError::Syntax { line, fix, .. } | ScenarioError::Invalid { line, fix, .. } => {
                (*line, fix.clone())
            }
            other => panic!("{name}: unexpected error kind {other:?}"),
        };
        let text = err.to_string();
        assert!(text.starts_with(&format!("{}:{line}", path.display())), "{name}: {text}");
        assert_eq!(got_line, *line, "{name}: {text}");
        assert!(text.contains(message), "{name}: `{message}` not in {text}");
        assert!(got_fix.contains(fix), "{name}: fix `{got_fix}` lacks `{fix}`");
    }
}

#[test]
fn shards_partition_the_matrix() {
    use portwhy_lab::matrix::{self, Selection};
    let scenarios: Vec<_> =
        scenario::load_dir(&repo().join("scenarios")).unwrap().into_iter().map(|(_, s)| s).collect();
    let engines = portwhy_harness::load_catalog(&repo().join("engines.toml")).unwrap();
    let all = matrix::plan(&scenarios, &engines, &Selection::default()).unwrap();
    use portwhy_lab::scenario::BackendName;
    // The nftables backend exists from Engine 29.0 on: no cell asks an older engine for it, and
    // every 29.x engine gets it for the host-listener scenario, which runs on every backend.
    for c in &all {
        if c.backend == BackendName::Nftables {
            assert!(c.engine.version.starts_with("29."), "{} asks {} for nftables", c.id(), c.engine.version);
        }
    }
    for v in ["29.1.1", "29.1.2", "29.7.2"] {
        assert!(
            all.iter().any(|c| c.engine.version == v
                && c.backend == BackendName::Nftables
                && c.scenario.name == "host-listener-wildcard"),
            "no nftables cell on {v}"
        );
    }
    assert!(all.iter().any(|c| c.engine.version == "20.10.24" && c.backend == BackendName::Nft));
    let mut seen = Vec::new();
    for i in 1..=3 {
        let shard =
            matrix::plan(&scenarios, &engines, &Selection { shard: Some((i, 3)), ..Selection::default() })
                .unwrap();
        seen.extend(shard.iter().map(|c| c.id()));
    }
    seen.sort();
    let mut ids: Vec<_> = all.iter().map(|c| c.id()).collect();
    ids.sort();
    assert_eq!(seen, ids, "the three shards together hold every cell exactly once");
    let only = matrix::plan(
        &scenarios,
        &engines,
        &Selection {
            engines: vec!["28".into()],
            backends: vec![scenario::BackendName::Legacy],
            shard: None,
            timings: None,
        },
    )
    .unwrap();
    assert!(only
        .iter()
        .all(|c| c.engine.version.starts_with("28.") && c.backend == scenario::BackendName::Legacy));
}
