//! Compare what a cell observed with what the scenario expects: exhaustive matches over the enums.

use crate::outcome::Observed;
use crate::scenario::{Cause, Expectation, ExpectedTrigger, TriggerResult};

/// Every difference between expectation and observation, in words; empty means the verdict holds.
pub fn compare(expected: &Expectation, observed: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    match (expected.trigger, observed.trigger, observed.stage) {
        (ExpectedTrigger::Fails { stage }, TriggerResult::Fails, Some(seen)) if stage == seen => {}
        (ExpectedTrigger::Fails { stage }, TriggerResult::Fails, Some(seen)) => out.push(format!(
            "trigger failed as expected, but portwhy classified the error as stage `{}`, expected `{}`",
            seen.as_str(),
            stage.as_str()
        )),
        (ExpectedTrigger::Fails { stage }, TriggerResult::Fails, None) => out.push(format!(
            "trigger failed as expected, but portwhy gave no error classification (expected stage `{}`)",
            stage.as_str()
        )),
        (ExpectedTrigger::Fails { stage }, TriggerResult::Succeeds, _) => {
            out.push(format!("expected the trigger to fail at stage `{}`, but it succeeded", stage.as_str()))
        }
        (ExpectedTrigger::Succeeds, TriggerResult::Succeeds, _) => {}
        (ExpectedTrigger::Succeeds, TriggerResult::Fails, _) => {
            out.push("expected the trigger to succeed, but it failed".to_owned())
        }
    }
    match observed.cause.as_deref().map(|c| (c, Cause::from_code(c))) {
        Some((_, Some(seen))) if seen == expected.cause => {}
        Some((_, Some(seen))) => out.push(format!("portwhy named {seen} first, expected {}", expected.cause)),
        Some((code, None)) => out.push(format!("portwhy named unknown cause code `{code}`")),
        None => out.push(format!("portwhy gave no finding, expected {}", expected.cause)),
    }
    for also in &expected.also {
        if !observed.findings.iter().any(|c| Cause::from_code(c) == Some(*also)) {
            out.push(format!(
                "portwhy did not report {also} among its findings ({})",
                observed.findings.join(", ")
            ));
        }
    }
    for check in &expected.traffic {
        match observed.traffic.iter().find(|t| t.from == check.from && t.expected == check.answers) {
            Some(t) if t.answered == t.expected => {}
            Some(t) => out.push(format!(
                "traffic from {}: {} answered, expected {} (reply: {})",
                t.from.as_str(),
                t.answered.as_str(),
                t.expected.as_str(),
                t.reply
            )),
            None => out.push(format!("traffic from {} was not probed", check.from.as_str())),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::TrafficObservation;
    use crate::scenario::{Answerer, TrafficCheck, TrafficSource};
    use portwhy::parse::error::Stage;
    use portwhy::port::Proto;

    fn expectation(trigger: ExpectedTrigger, cause: Cause) -> Expectation {
        Expectation { trigger, cause, also: vec![], traffic: vec![], note: None }
    }

    fn observed(trigger: TriggerResult, stage: Option<Stage>, cause: &str) -> Observed {
        Observed {
            trigger,
            stage,
            cause: Some(cause.to_owned()),
            findings: vec![cause.to_owned()],
            traffic: vec![],
        }
    }

    #[test]
    fn matching_failure_passes() {
        let e = expectation(ExpectedTrigger::Fails { stage: Stage::HostBind }, Cause::HostProcess);
        let o = observed(TriggerResult::Fails, Some(Stage::HostBind), "PW001");
        assert_eq!(compare(&e, &o), Vec::<String>::new());
    }

    #[test]
    fn each_difference_is_reported() {
        let e = expectation(ExpectedTrigger::Fails { stage: Stage::Allocated }, Cause::ContainerHolds);
        let o = observed(TriggerResult::Fails, Some(Stage::HostBind), "PW001");
        let diffs = compare(&e, &o);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(diffs[0].contains("`host-bind`") && diffs[0].contains("`allocated`"));
        assert!(diffs[1].contains("PW001") && diffs[1].contains("PW002"));
    }

    #[test]
    fn unexpected_success_and_unknown_code_fail() {
        let e = expectation(ExpectedTrigger::Fails { stage: Stage::HostBind }, Cause::HostProcess);
        let o = observed(TriggerResult::Succeeds, None, "PW999");
        let diffs = compare(&e, &o);
        assert!(diffs.iter().any(|d| d.contains("but it succeeded")));
        assert!(diffs.iter().any(|d| d.contains("unknown cause code `PW999`")));
    }

    #[test]
    fn required_notes_must_be_among_the_findings() {
        let mut e = expectation(ExpectedTrigger::Succeeds, Cause::NoConflict);
        e.also = vec![Cause::StoppedContainer];
        let mut o = observed(TriggerResult::Succeeds, None, "PW000");
        assert_eq!(compare(&e, &o).len(), 1);
        o.findings.push("PW011".into());
        assert!(compare(&e, &o).is_empty());
    }

    #[test]
    fn traffic_mismatch_and_missing_probe_fail() {
        let mut e = expectation(ExpectedTrigger::Succeeds, Cause::SilentShare);
        e.traffic = vec![
            TrafficCheck {
                from: TrafficSource::Loopback4,
                proto: Proto::Tcp,
                port: None,
                client: None,
                answers: Answerer::HostProcess,
            },
            TrafficCheck {
                from: TrafficSource::Outside,
                proto: Proto::Tcp,
                port: None,
                client: None,
                answers: Answerer::Container,
            },
        ];
        let mut o = observed(TriggerResult::Succeeds, None, "PW008");
        o.traffic = vec![TrafficObservation {
            from: TrafficSource::Loopback4,
            expected: Answerer::HostProcess,
            answered: Answerer::Container,
            reply: "container web".into(),
        }];
        let diffs = compare(&e, &o);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(diffs[0].contains("container answered, expected host-process"));
        assert!(diffs[1].contains("outside was not probed"));
    }
}
