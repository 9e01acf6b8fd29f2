//! `portwhy lint` over the compose fixtures: one snapshot per `valid-*` / `invalid-*` directory.
//!
//! Each fixture directory holds `compose.yaml`, optionally `compose.override.yaml` and a `.env`
//! file, and optionally `files.txt` listing the files in merge order (to name a missing one).
//! Variables come only from the fixture's `.env`, never from the test process, so snapshots do
//! not depend on the machine. The address rules behind the expected findings were measured on
//! Engine 20.10.24 (see engine/LINT.md).

use std::path::{Path, PathBuf};

use portwhy::lint::{self, LintOptions, LintReport, Severity};
use rstest::rstest;
use serde::Serialize;

/// What a fixture produced: the exit code `portwhy lint` would return and either the report or
/// the bad-input message.
#[derive(Serialize)]
struct Outcome {
    exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<LintReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    human: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Paths relative to the package, so snapshots hold `tests/fixtures/...` and not a checkout path.
fn files_of(dir: &Path) -> Vec<PathBuf> {
    let rel = dir.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(dir).to_path_buf();
    match std::fs::read_to_string(dir.join("files.txt")) {
        Ok(list) => list.lines().filter(|l| !l.trim().is_empty()).map(|l| rel.join(l.trim())).collect(),
        Err(_) => ["compose.yaml", "compose.override.yaml"]
            .iter()
            .filter(|f| dir.join(f).exists())
            .map(|f| rel.join(f))
            .collect(),
    }
}

fn run(dir: &Path) -> Outcome {
    let files = files_of(dir);
    let options = LintOptions::from_dotenv(&dir.join("compose.yaml"));
    match lint::lint_files(&files, &options) {
        Ok(report) => Outcome {
            exit_code: i32::from(report.exit_code().code()),
            human: Some(lint::render_human(&report).lines().map(str::to_owned).collect()),
            report: Some(report),
            error: None,
        },
        Err(e) => Outcome {
            exit_code: i32::from(e.exit_code().code()),
            report: None,
            human: None,
            error: Some(e.to_string()),
        },
    }
}

fn inputs(dir: &Path) -> Vec<(String, String)> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("fixture dir is readable")
        .map(|e| e.expect("dir entry").path())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let text = std::fs::read_to_string(&p).expect("fixture file is readable");
            (name, text)
        })
        .collect()
}

fn snapshot(dir: &Path, outcome: &Outcome) {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).expect("fixture dir name");
    let mut settings = insta::Settings::clone_current();
    settings.set_info(&inputs(dir));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_json_snapshot!(format!("lint__{name}"), outcome));
}

#[rstest]
fn valid(
    #[files("tests/fixtures/compose/valid-*")]
    #[dirs]
    dir: PathBuf,
) {
    let outcome = run(&dir);
    assert_ne!(
        outcome.exit_code,
        2,
        "{}: a valid fixture must not be bad input: {:?}",
        dir.display(),
        outcome.error
    );
    let report = outcome.report.as_ref().expect("valid fixtures produce a report");
    // The exit code follows the findings: 1 exactly when a warning or an error was found.
    let failing = report.findings.iter().any(|f| f.severity >= Severity::Warning);
    assert_eq!(outcome.exit_code, i32::from(failing));
    for f in &report.findings {
        assert!(lint::find_rule(&f.code).is_some(), "{} has documentation", f.code);
        assert!(!f.locations.is_empty(), "{} points at a file", f.code);
    }
    snapshot(&dir, &outcome);
}

#[rstest]
fn invalid(
    #[files("tests/fixtures/compose/invalid-*")]
    #[dirs]
    dir: PathBuf,
) {
    let outcome = run(&dir);
    assert_eq!(outcome.exit_code, 2, "{}: an invalid fixture is bad input", dir.display());
    let error = outcome.error.as_deref().expect("bad input has a message");
    assert!(error.contains("tests/fixtures/compose/"), "the message names the file: {error}");
    snapshot(&dir, &outcome);
}

/// The findings a reader of each fixture expects, independent of the snapshot wording.
#[rstest]
#[case("valid-clean", &[])]
#[case("valid-duplicate-host-port", &["PWL001", "PWL001"])]
#[case("valid-overlapping-address", &["PWL002", "PWL002", "PWL002"])]
#[case("valid-overlapping-range", &["PWL003", "PWL003", "PWL003"])]
#[case("valid-override-append", &["PWL001", "PWL004"])]
#[case("valid-override-replace", &[])]
#[case("valid-interpolation", &["PWL001", "PWL005"])]
#[case("valid-scale", &["PWL006", "PWL006"])]
#[case("valid-host-network", &["PWL008"])]
#[case("valid-long-syntax", &["PWL001", "PWL003"])]
#[case("valid-privileged", &[])]
#[case("valid-anchors", &["PWL001"])]
fn expected_codes(#[case] fixture: &str, #[case] expected: &[&str]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose").join(fixture);
    let report = run(&dir).report.expect("a report");
    let mut got: Vec<&str> =
        report.findings.iter().filter(|f| f.severity > Severity::Info).map(|f| f.code.as_str()).collect();
    got.sort();
    assert_eq!(got, expected, "{fixture}: {:#?}", report.findings);
}

#[test]
fn override_duplicate_points_at_both_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose/valid-override-append");
    let report = run(&dir).report.expect("a report");
    let f = report.findings.iter().find(|f| f.code == "PWL004").expect("PWL004");
    let lines: Vec<String> = f.locations.iter().map(|l| l.to_string()).collect();
    assert!(lines[0].ends_with("valid-override-append/compose.yaml:5"), "{lines:?}");
    assert!(lines[1].ends_with("valid-override-append/compose.override.yaml:5"), "{lines:?}");
    assert_eq!(f.ports.map(|p| p.to_string()).as_deref(), Some("8080"));
}

#[test]
fn invalid_yaml_names_the_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose/invalid-yaml");
    let error = run(&dir).error.expect("an error");
    assert!(error.contains("invalid-yaml/compose.yaml:4"), "{error}");
}

#[test]
fn privileged_ports_are_notes_only() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compose/valid-privileged");
    let outcome = run(&dir);
    let report = outcome.report.expect("a report");
    assert_eq!(report.count(Severity::Info), 2);
    assert_eq!(outcome.exit_code, 0);
}
