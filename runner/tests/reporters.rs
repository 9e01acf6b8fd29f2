//! Reporters over recorded results: JUnit is valid XML with the right counts, the Markdown and HTML
//! reports hold every cell, and the HTML matrix renders in a real headless browser.
//!
//! Both fixtures were recorded by real runs of `portwhy-lab run --jobs 2 --report DIR` on this
//! machine's engines (tests/fixtures/README.md): results.json after the engine fixes (every cell
//! passes), results-with-failures.json from an earlier engine (failed and errored cells), so every
//! reporter path runs on real data.

use std::path::{Path, PathBuf};
use std::process::Command;

use portwhy_lab::outcome::{RunResults, Status};
use portwhy_lab::report;

const FIXTURES: [&str; 2] = ["results.json", "results-with-failures.json"];

fn load(name: &str) -> RunResults {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    report::read_results(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn fixtures() -> Vec<RunResults> {
    FIXTURES.iter().map(|f| load(f)).collect()
}

#[test]
fn fixtures_cover_every_status() {
    // The assertions below are only meaningful when every kind of cell is present somewhere.
    let all: Vec<Status> = fixtures().iter().flat_map(|r| r.cells.iter().map(|c| c.status)).collect();
    for s in [Status::Pass, Status::Fail, Status::Error] {
        assert!(all.contains(&s), "no {} cell in the fixtures", s.as_str());
    }
}

#[test]
fn junit_is_valid_xml_with_the_right_counts() {
    for r in fixtures() {
        junit_counts(&r);
    }
}

fn junit_counts(r: &RunResults) {
    let xml = report::junit::render(r);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("invalid XML: {e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let failed = r.cells.iter().filter(|c| c.status == Status::Fail).count();
    let errors = r.cells.iter().filter(|c| c.status == Status::Error).count();
    assert_eq!(root.attribute("tests"), Some(r.cells.len().to_string().as_str()));
    assert_eq!(root.attribute("failures"), Some(failed.to_string().as_str()));
    assert_eq!(root.attribute("errors"), Some(errors.to_string().as_str()));
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), r.cells.len());
    let with_failure = cases.iter().filter(|c| c.children().any(|k| k.has_tag_name("failure"))).count();
    let with_error = cases.iter().filter(|c| c.children().any(|k| k.has_tag_name("error"))).count();
    assert_eq!((with_failure, with_error), (failed, errors));
    let suites: usize = doc
        .descendants()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|s| s.attribute("tests").unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(suites, r.cells.len(), "suite counts add up to the cells");
}

#[test]
fn markdown_and_html_hold_every_cell() {
    for r in fixtures() {
        every_cell_in_reports(&r);
    }
}

fn every_cell_in_reports(r: &RunResults) {
    let md = report::markdown::render(r);
    let html = report::html::render(r);
    for c in &r.cells {
        assert!(md.contains(&format!("| {} |", c.scenario)), "{} missing from report.md", c.scenario);
        assert!(html.contains(&format!("data-cell=\"{}\"", c.id())), "{} missing from index.html", c.id());
        assert!(html.contains(&format!("data-claim=\"{}\"", c.scenario)));
    }
}

fn chromium() -> PathBuf {
    let p = PathBuf::from(std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    assert!(
        p.is_file(),
        "headless browser not found at {}: `apt-get install -y chromium` or set CHROMIUM",
        p.display()
    );
    p
}

#[test]
fn html_matrix_renders_in_a_headless_browser() {
    for r in fixtures() {
        renders_in_browser(&r);
    }
}

fn renders_in_browser(r: &RunResults) {
    let dir = tempfile::tempdir().unwrap();
    report::write_folder(dir.path(), r).unwrap();
    let profile = dir.path().join("profile");
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", dir.path().join("index.html").display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    // The browser re-serialises what it parsed: a cell outside the table or an unclosed element
    // would change these counts.
    let cells = dom.matches("data-cell=\"").count();
    assert_eq!(cells, r.cells.len(), "every cell rendered once");
    let matrix_start = dom.find("<table id=\"matrix\">").expect("matrix table rendered");
    let matrix_end = matrix_start + dom[matrix_start..].find("</table>").expect("matrix closed");
    assert_eq!(
        dom[matrix_start..matrix_end].matches("data-cell=\"").count(),
        r.cells.len(),
        "cells sit inside the matrix"
    );
    let failing = r.cells.iter().filter(|c| c.status != Status::Pass).count();
    assert_eq!(dom.matches("<details open=\"\">").count(), failing, "failing cells open by default");
    for c in &r.cells {
        let marker = format!("data-cell=\"{}\" data-status=\"{}\"", c.id(), c.status.as_str());
        assert!(dom.contains(&marker), "{marker} not in the rendered DOM");
    }
}

#[test]
fn every_report_prints_the_targets_against_the_run() {
    for r in fixtures() {
        let line = portwhy_lab::outcome::targets_line(&r.cells, r.wall_ms);
        // The lab's published targets: median cell 2.5 s, the whole run 5 min warm on 2 cores.
        let median_ok = portwhy_lab::outcome::median_ms(&r.cells).unwrap_or(0) <= 2_500;
        let wall_ok = r.wall_ms <= 300_000;
        assert_eq!(
            line.matches("NOT met").count(),
            usize::from(!median_ok) + usize::from(!wall_ok),
            "{line}"
        );
        assert!(report::markdown::render(&r).contains(&line));
        assert!(report::html::render(&r).contains("<p id=\"targets\">Targets: median cell &lt;= 2.5 s"));
    }
}

#[test]
fn an_absent_engine_is_not_run_in_every_reporter_with_how_to_get_it() {
    let mut r = load("results.json");
    let mut cell = r.cells[0].clone();
    let how = "engines/docker-29.9.9.tgz is absent: download https://download.docker.com/linux/static/stable/x86_64/docker-29.9.9.tgz into engines";
    cell.engine_name = "static-29.9.9".into();
    cell.engine = "29.9.9".into();
    cell.status = Status::NotRun;
    cell.observed = None;
    cell.diagnosis = None;
    cell.remedies.clear();
    cell.failures = vec![format!("not run: {how}")];
    r.cells.push(cell);

    let md = report::markdown::render(&r);
    assert!(md.contains("**NOT RUN: static-29.9.9** (1 cells)") && md.contains(how), "{md}");
    assert!(md.contains("1 NOT RUN"), "the summary line counts it");
    let html = report::html::render(&r);
    assert!(html.contains("data-not-run=\"1\"") && html.contains("NOT RUN: <b>static-29.9.9</b>"));
    let term = report::terminal::summary_table(&r.cells, r.wall_ms);
    assert!(term.contains("NOT RUN: static-29.9.9 (1 cells)") && term.contains(how), "{term}");
    let xml = report::junit::render(&r);
    let doc = roxmltree::Document::parse(&xml).expect("valid XML");
    assert_eq!(doc.root_element().attribute("skipped"), Some("1"));
    let skipped: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("skipped")).collect();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0].attribute("message").unwrap_or_default().contains("download.docker.com"));
    // Never a pass: the counts keep it apart.
    let c = report::counts(&r.cells);
    assert_eq!((c.not_run, c.pass + c.fail + c.error + c.not_run), (1, r.cells.len()));
}

/// What the engines did, as measured in the recorded run (README "Where the engines disagree"):
/// the SO_REUSEADDR UDP share happens on 28.5.2 only, the cross-network hairpin drop is gone on 29.
#[test]
fn seed_claims_are_upheld_and_refuted_per_engine() {
    let r = load("results.json");
    // Engines are named as they reported themselves (Debian's carry a +dfsg suffix).
    let release =
        |v: &Vec<String>| v.iter().map(|e| e.split('+').next().unwrap_or(e).to_owned()).collect::<Vec<_>>();
    let (upheld, refuted) =
        report::claim_verdicts(&r.cells, "silent-share-udp-reuseaddr").expect("a prediction");
    assert_eq!(release(&upheld), vec!["28.5.2"], "refuted by {refuted:?}");
    for v in ["20.10.24", "26.1.5", "29.1.1", "29.1.2", "29.7.2"] {
        assert!(refuted.iter().any(|e| e.starts_with(v)), "{v} missing from {refuted:?}");
    }
    let (upheld, refuted) = report::claim_verdicts(&r.cells, "hairpin-cross-network").expect("a prediction");
    assert_eq!(refuted, vec!["29.1.1", "29.1.2", "29.7.2"], "upheld by {upheld:?}");
    assert_eq!(release(&upheld), vec!["20.10.24", "26.1.5", "28.5.2"]);
    // A claim no engine upholds.
    let (upheld, _) = report::claim_verdicts(&r.cells, "orphaned-dnat-docker-chain").expect("a prediction");
    assert!(upheld.is_empty(), "{upheld:?}");

    let disagree = report::disagreeing(&r.cells);
    for s in ["silent-share-udp-reuseaddr", "hairpin-cross-network", "rootless-regression-slirp4netns"] {
        assert!(disagree.contains(s), "{s} not marked: {disagree:?}");
    }
    assert!(!disagree.contains("host-listener-wildcard"), "every engine refuses a held port the same way");
    let md = report::markdown::render(&r);
    assert!(md.contains("| hairpin-cross-network **engines disagree** |"));
}
