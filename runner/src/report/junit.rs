//! JUnit XML: one testsuite per scenario, one testcase per cell (`engine version / backend`),
//! written with quick-junit (nextest's own writer), which counts, escapes, and strips the ANSI
//! colours and control characters of daemon text that XML 1.0 forbids.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::outcome::{CellResult, RunResults, Status};

pub fn render(results: &RunResults) -> String {
    let mut report = Report::new("portwhy-lab");
    report.set_time(Duration::from_millis(results.wall_ms));
    let mut scenarios: Vec<&str> = results.cells.iter().map(|c| c.scenario.as_str()).collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    for scenario in scenarios {
        let mut suite = TestSuite::new(scenario);
        let group: Vec<&CellResult> = results.cells.iter().filter(|c| c.scenario == scenario).collect();
        suite.set_time(Duration::from_millis(group.iter().map(|c| c.duration_ms).sum()));
        suite.add_test_cases(group.into_iter().map(test_case));
        report.add_test_suite(suite);
    }
    // Serialising into memory fails only on an I/O error of the writer, which a Vec has none of.
    report.to_string().expect("JUnit XML serialises into a string")
}

fn test_case(c: &CellResult) -> TestCase {
    let first = |default: &str| c.failures.first().map_or(default.to_owned(), String::clone);
    let status = match c.status {
        Status::Pass => TestCaseStatus::success(),
        // JUnit's <skipped> is how CI dashboards show a test that did not run, not a pass.
        Status::NotRun => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(first("not run"));
            s
        }
        Status::Fail | Status::Error => {
            let kind = if c.status == Status::Fail { NonSuccessKind::Failure } else { NonSuccessKind::Error };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(first("failed")).set_description(c.failures.join("\n"));
            s
        }
    };
    let mut case = TestCase::new(format!("{} {} ({})", c.engine_name, c.engine, c.backend), status);
    case.set_classname(format!("portwhy-lab.{}", c.scenario)).set_time(Duration::from_millis(c.duration_ms));
    if matches!(c.status, Status::Fail | Status::Error) {
        case.set_system_out(format!(
            "trigger: {}\nexit code: {}\nerror: {}\nverdict: {}\n",
            c.trigger.command,
            c.trigger.exit_code,
            c.trigger.error.trim(),
            c.verdict_line().unwrap_or("-")
        ));
    }
    case
}
