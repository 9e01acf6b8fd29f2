//! Compare what a cell observed with what the scenario expects: exhaustive matches over the enums.

use portwhy::remedy::Purpose;

use crate::outcome::{Observed, RemedySource, RemedyTrial, TrialOutcome};
use crate::scenario::{Expectation, ExpectedTrigger, RemedyClaim, TriggerResult};

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
    match observed.cause {
        Some(seen) if seen == expected.cause => {}
        Some(seen) => out.push(format!("portwhy named {seen} first, expected {}", expected.cause)),
        None => out.push(format!("portwhy gave no finding, expected {}", expected.cause)),
    }
    for also in &expected.also {
        if !observed.findings.contains(also) {
            let seen: Vec<&str> = observed.findings.iter().map(|c| c.code()).collect();
            out.push(format!("portwhy did not report {also} among its findings ({})", seen.join(", ")));
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

/// Every way the remedy trials differ from what the scenario expects: the fix that must be proven
/// is the one proven (the lowest-risk fix that works), and every workaround and check portwhy
/// offers works.
pub fn compare_remedies(expected: &Expectation, trials: &[RemedyTrial]) -> Vec<String> {
    let mut out = Vec::new();
    let portwhy = |t: &&RemedyTrial| t.source == RemedySource::Portwhy;
    if let Some(want) = expected.remedy {
        let proven = trials
            .iter()
            .filter(portwhy)
            .find(|t| t.purpose == Purpose::Fix && t.outcome == TrialOutcome::Proven);
        match proven {
            Some(t) if t.kind == want => {}
            Some(t) => out.push(format!(
                "the first fix proven was `{}` ({}), expected a {want} fix to be the lowest-risk one that works",
                t.command, t.kind
            )),
            None => {
                let tried: Vec<String> = trials
                    .iter()
                    .filter(portwhy)
                    .filter(|t| t.purpose == Purpose::Fix)
                    .map(|t| format!("`{}`: {} ({})", t.command, t.outcome.as_str(), t.why))
                    .collect();
                out.push(format!(
                    "no fix was proven (expected {want}); tried: {}",
                    if tried.is_empty() { "portwhy proposed no fix".to_owned() } else { tried.join(" | ") }
                ));
            }
        }
    }
    for t in trials.iter().filter(portwhy).filter(|t| t.purpose != Purpose::Fix) {
        if t.outcome == TrialOutcome::Failed {
            out.push(format!("portwhy's {} `{}` does not work: {}", t.purpose.as_str(), t.command, t.why));
        }
    }
    out
}

/// Every claim that did not measure as the scenario says (`claims`: those for this cell's backend,
/// in the order they were tried).
pub fn compare_claims(claims: &[RemedyClaim], trials: &[RemedyTrial]) -> Vec<String> {
    let mut out = Vec::new();
    let measured = trials.iter().filter(|t| t.source == RemedySource::Claim);
    for (claim, t) in claims.iter().zip(measured) {
        let removed = match t.outcome {
            TrialOutcome::Proven => true,
            TrialOutcome::Failed => false,
            TrialOutcome::NotTried => {
                out.push(format!("the claimed remedy `{}` could not be tried: {}", t.command, t.why));
                continue;
            }
        };
        for (want, got) in claim.effects.iter().zip(&t.effects) {
            if got.after != want.works {
                out.push(format!(
                    "after the claimed remedy `{}`, looking up {} {}, the scenario says it {}: {}",
                    t.command,
                    got.lookup,
                    if got.after { "worked" } else { "failed" },
                    if want.works { "works" } else { "fails" },
                    got.detail
                ));
            }
        }
        if claim.effects.len() != t.effects.len() {
            out.push(format!(
                "the claimed remedy `{}` states {} side effects, {} were measured",
                t.command,
                claim.effects.len(),
                t.effects.len()
            ));
        }
        if removed != claim.removes_cause {
            out.push(format!(
                "the claimed remedy `{}` {} the cause, the scenario says it {}: {}",
                t.command,
                if removed { "removed" } else { "did not remove" },
                if claim.removes_cause { "does" } else { "does not" },
                t.why
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::TrafficObservation;
    use crate::scenario::{Answerer, TrafficCheck, TrafficSource};
    use portwhy::cause::CauseCode;
    use portwhy::parse::error::Stage;
    use portwhy::port::Proto;

    fn expectation(trigger: ExpectedTrigger, cause: CauseCode) -> Expectation {
        Expectation {
            trigger,
            cause,
            also: vec![],
            traffic: vec![],
            remedy: None,
            claims: vec![],
            note: None,
        }
    }

    fn observed(trigger: TriggerResult, stage: Option<Stage>, cause: CauseCode) -> Observed {
        Observed { trigger, stage, cause: Some(cause), findings: vec![cause], traffic: vec![] }
    }

    #[test]
    fn matching_failure_passes() {
        let e = expectation(ExpectedTrigger::Fails { stage: Stage::HostBind }, CauseCode::HostProcess);
        let o = observed(TriggerResult::Fails, Some(Stage::HostBind), CauseCode::HostProcess);
        assert_eq!(compare(&e, &o), Vec::<String>::new());
    }

    #[test]
    fn each_difference_is_reported() {
        let e = expectation(ExpectedTrigger::Fails { stage: Stage::Allocated }, CauseCode::ContainerHolds);
        let o = observed(TriggerResult::Fails, Some(Stage::HostBind), CauseCode::HostProcess);
        let diffs = compare(&e, &o);
        assert_eq!(diffs.len(), 2, "{diffs:?}");
        assert!(diffs[0].contains("`host-bind`") && diffs[0].contains("`allocated`"));
        assert!(diffs[1].contains("PW001") && diffs[1].contains("PW002"));
    }

    #[test]
    fn unexpected_success_and_another_cause_fail() {
        let e = expectation(ExpectedTrigger::Fails { stage: Stage::HostBind }, CauseCode::HostProcess);
        let o = observed(TriggerResult::Succeeds, None, CauseCode::StaleProxy);
        let diffs = compare(&e, &o);
        assert!(diffs.iter().any(|d| d.contains("but it succeeded")));
        assert!(diffs.iter().any(|d| d.contains("named PW003 first, expected PW001")));
    }

    #[test]
    fn required_notes_must_be_among_the_findings() {
        let mut e = expectation(ExpectedTrigger::Succeeds, CauseCode::NoConflict);
        e.also = vec![CauseCode::StoppedContainer];
        let mut o = observed(TriggerResult::Succeeds, None, CauseCode::NoConflict);
        assert_eq!(compare(&e, &o).len(), 1);
        o.findings.push(CauseCode::StoppedContainer);
        assert!(compare(&e, &o).is_empty());
    }

    #[test]
    fn traffic_mismatch_and_missing_probe_fail() {
        let mut e = expectation(ExpectedTrigger::Succeeds, CauseCode::SilentShare);
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
        let mut o = observed(TriggerResult::Succeeds, None, CauseCode::SilentShare);
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

    fn trial(kind: portwhy::remedy::ActionKind, purpose: Purpose, outcome: TrialOutcome) -> RemedyTrial {
        RemedyTrial {
            source: RemedySource::Portwhy,
            kind,
            purpose,
            risk: portwhy::remedy::Risk::Safe,
            command: kind.as_str().to_owned(),
            outcome,
            ran: vec![],
            why: "measured".into(),
            effects: vec![],
        }
    }

    #[test]
    fn the_expected_fix_must_be_the_one_proven() {
        use portwhy::remedy::ActionKind::{DeleteNatRule, RestartDaemon, SuggestPort};
        let mut e = expectation(ExpectedTrigger::Succeeds, CauseCode::OrphanedDnat);
        e.remedy = Some(DeleteNatRule);
        let good = [
            trial(SuggestPort, Purpose::Workaround, TrialOutcome::Proven),
            trial(DeleteNatRule, Purpose::Fix, TrialOutcome::Proven),
            trial(RestartDaemon, Purpose::Fix, TrialOutcome::NotTried),
        ];
        assert!(compare_remedies(&e, &good).is_empty());
        // A workaround that works never stands in for the fix.
        let only_workaround = [trial(SuggestPort, Purpose::Workaround, TrialOutcome::Proven)];
        assert!(compare_remedies(&e, &only_workaround)[0].contains("no fix was proven"));
        let other_fix = [
            trial(DeleteNatRule, Purpose::Fix, TrialOutcome::Failed),
            trial(RestartDaemon, Purpose::Fix, TrialOutcome::Proven),
        ];
        assert!(compare_remedies(&e, &other_fix)[0].contains("expected a delete-nat-rule fix"));
        let broken_workaround = [
            trial(SuggestPort, Purpose::Workaround, TrialOutcome::Failed),
            trial(DeleteNatRule, Purpose::Fix, TrialOutcome::Proven),
        ];
        assert!(
            compare_remedies(&e, &broken_workaround)[0].contains("workaround `suggest-port` does not work")
        );
    }

    #[test]
    fn a_claims_side_effect_must_be_the_measured_one() {
        use crate::outcome::EffectObserved;
        use crate::scenario::EffectCheck;
        use portwhy::remedy::{Action, ActionKind::StopService};
        let claim = RemedyClaim {
            action: Action::StopService {
                unit: "systemd-resolved".into(),
                process: "systemd-resolve".into(),
            },
            removes_cause: true,
            backends: vec![],
            meanwhile: vec![],
            effects: vec![EffectCheck { lookup: "_gateway".into(), works: false }],
            note: String::new(),
        };
        let measured = |after: bool| {
            let mut t = trial(StopService, Purpose::Fix, TrialOutcome::Proven);
            t.source = RemedySource::Claim;
            t.effects = vec![EffectObserved {
                lookup: "_gateway".into(),
                before: true,
                after,
                detail: String::new(),
            }];
            t
        };
        assert!(compare_claims(std::slice::from_ref(&claim), &[measured(false)]).is_empty());
        let wrong = compare_claims(std::slice::from_ref(&claim), &[measured(true)]);
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert!(wrong[0].contains("looking up _gateway worked, the scenario says it fails"), "{wrong:?}");
        let mut unmeasured = measured(false);
        unmeasured.effects.clear();
        assert!(compare_claims(&[claim], &[unmeasured])[0].contains("1 side effects, 0 were measured"));
    }
}
