//! One matrix cell, end to end: environment, faults, trigger, `portwhy`, comparison, remedy, proof.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use portwhy::diagnosis::{Diagnosis, Finding};
use portwhy::remedy::Purpose;
use portwhy_harness::{EngineImage, EnvOptions, Environment, Fault, FirewallMode, RunLabels};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::compose::ComposeRun;
use crate::event::Event;
use crate::matrix::CellPlan;
use crate::outcome::{
    CellId, CellOptions, CellResult, DiagnoseInput, Observed, Phase, RemedySource, RemedyTrial, Status,
    TrafficObservation, TrialOutcome, TriggerRecord,
};
use crate::probe;
use crate::proof::{claim_remedy, not_tried, Proof, PORTWHY_IN_ENV};
use crate::publish;
use crate::scenario::{BackendName, BeforeStep, DiagnoseWhen, RemedyClaim, TriggerResult};

/// What every cell of a run shares.
pub struct Lab {
    pub docker: Docker,
    pub run_id: String,
    /// `portwhy --version` of the binary under test, asked once for the whole run.
    pub portwhy_version: String,
    /// The run's copies of `portwhy` and `portholder`, bind-mounted read-only into every
    /// environment at /usr/local/bin.
    pub binaries: Vec<PathBuf>,
    /// Environments being torn down at once, beside the cells that run: a cell waits for a place
    /// before it hands its environment over, so no more than this many linger.
    pub teardowns: Arc<Semaphore>,
    /// Leave environments running after the cell (for `repro` and debugging).
    pub keep: bool,
    /// Try and prove remedies (off for `repro`, which leaves the fault in place).
    pub prove: bool,
    /// `--privileged --cgroupns private` environments (CI runners with cgroup v2).
    pub privileged: bool,
    /// Engine images by engine name, built before the cells start.
    pub images: HashMap<String, EngineImage>,
}

/// Result of a cell that left its environment up (`repro`).
pub struct KeptCell {
    pub result: CellResult,
    pub env_name: Option<String>,
    /// The environment's teardown, running in the background: how long it took, or why it failed.
    pub teardown: Option<JoinHandle<Result<Duration, String>>>,
}

/// Times a cell's phases: each lap closes one phase, adds it to the cell's record and reports it.
struct Clock<'a> {
    last: Instant,
    phases: BTreeMap<Phase, u64>,
    tx: &'a UnboundedSender<Event>,
    cell: CellId,
}

impl Clock<'_> {
    fn add(&mut self, phase: Phase, d: Duration) {
        let ms = d.as_millis() as u64;
        *self.phases.entry(phase).or_default() += ms;
        let _ = self.tx.send(Event::PhaseDone { cell: self.cell.clone(), phase, ms });
    }

    /// Close `phase`: the time since the last lap is its.
    fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        self.add(phase, now - self.last);
        self.last = now;
    }
}

fn firewall(b: BackendName) -> FirewallMode {
    match b {
        BackendName::Legacy => FirewallMode::Legacy,
        BackendName::Nft => FirewallMode::Nft,
        BackendName::Nftables => FirewallMode::Nftables,
    }
}

fn blank_result(plan: &CellPlan) -> CellResult {
    let s = &plan.scenario;
    CellResult {
        scenario: s.name.clone(),
        title: s.title.clone(),
        seed: s.seed_claim.source,
        claim: s.seed_claim.claim.clone(),
        predicts: s.seed_claim.predicts,
        engine: plan.engine.version.clone(),
        engine_name: plan.engine.name.clone(),
        backend: plan.backend,
        options: CellOptions {
            userland_proxy: s.environment.userland_proxy,
            rootless: s.environment.rootless,
            ipv6: s.environment.ipv6,
        },
        trigger: TriggerRecord { command: s.trigger.display(), exit_code: -1, error: String::new() },
        diagnosis: None,
        bundle: None,
        portwhy: String::new(),
        diagnose_input: Default::default(),
        expected: plan.expectation.clone(),
        observed: None,
        remedies: Vec::new(),
        status: Status::Error,
        failures: Vec::new(),
        duration_ms: 0,
        phases: BTreeMap::new(),
    }
}

/// The result of a cell whose engine is not on this machine.
pub fn not_run(plan: &CellPlan, how_to_get: String) -> CellResult {
    let mut rec = blank_result(plan);
    rec.status = Status::NotRun;
    rec.failures.push(format!("not run: {how_to_get}"));
    rec
}

/// Run one cell; never panics on environment trouble: that becomes `Status::Error`. The cell's
/// result is known before its environment is gone: the teardown runs in the background (see
/// `KeptCell::teardown`).
pub async fn run(lab: &Lab, plan: &CellPlan, tx: &UnboundedSender<Event>) -> KeptCell {
    let started = Instant::now();
    let id = plan.id();
    let _ = tx.send(Event::Started { cell: id.clone() });
    let mut rec = blank_result(plan);
    let mut env_name = None;
    let mut teardown = None;
    let mut clock = Clock { last: started, phases: BTreeMap::new(), tx, cell: id.clone() };
    match start_env(lab, plan).await {
        Err(e) => rec.failures.push(format!("environment: {e}")),
        Ok(env) => {
            let t = env.start_times();
            clock.add(Phase::EnvStart, t.container);
            clock.add(Phase::DockerdReady, t.dockerd);
            clock.add(Phase::ImageImport, t.image_import);
            clock.add(Phase::Binaries, t.binaries);
            clock.last = Instant::now();
            rec.engine = env.engine_version().to_owned();
            env_name = Some(env.name().to_owned());
            let _ = tx.send(Event::EnvReady {
                cell: id.clone(),
                engine_version: env.engine_version().to_owned(),
                ms: env.ready_after().as_millis() as u64,
            });
            if let Err(e) = drive(lab, plan, &env, &mut rec, &mut clock).await {
                rec.status = Status::Error;
                rec.failures.push(e);
            }
            if lab.keep {
                // Dropping the handle would remove the container; `portwhy-lab down` does that later.
                std::mem::forget(env);
            } else {
                // The wait bounds how many environments linger while they are removed.
                let permit = lab.teardowns.clone().acquire_owned().await.ok();
                teardown = Some(tokio::spawn(async move {
                    let t = Instant::now();
                    let done = env.teardown().await.map_err(|e| e.to_string());
                    drop(permit);
                    done.map(|()| t.elapsed())
                }));
            }
        }
    }
    rec.phases = clock.phases;
    rec.duration_ms = started.elapsed().as_millis() as u64;
    let _ = tx.send(Event::Finished { result: Box::new(rec.clone()) });
    KeptCell { result: rec, env_name, teardown }
}

async fn start_env(lab: &Lab, plan: &CellPlan) -> Result<Environment, String> {
    let image = lab.images.get(&plan.engine.name).ok_or_else(|| {
        format!("no image for engine {} (build it with `portwhy-lab images build`)", plan.engine.name)
    })?;
    let s = &plan.scenario;
    let opts = EnvOptions {
        backend: firewall(plan.backend),
        userland_proxy: s.environment.userland_proxy,
        rootless: s.environment.rootless,
        privileged: lab.privileged,
        ipv6: s.environment.ipv6,
        daemon_json: if s.environment.live_restore {
            serde_json::json!({ "live-restore": true })
        } else {
            serde_json::Value::Object(Default::default())
        },
        labels: RunLabels {
            run_id: lab.run_id.clone(),
            scenario: s.name.clone(),
            env: format!("{}-{}", plan.engine.name, plan.backend),
        },
        bind_binaries: lab.binaries.clone(),
    };
    Environment::start(&lab.docker, image, opts).await.map_err(|e| e.to_string())
}

/// The steps after the environment is up. `Err` = the cell could not run (not a verdict).
async fn drive(
    lab: &Lab,
    plan: &CellPlan,
    env: &Environment,
    rec: &mut CellResult,
    clock: &mut Clock<'_>,
) -> Result<(), String> {
    let id = plan.id();
    let tx = clock.tx;
    let s = &plan.scenario;
    rec.portwhy = lab.portwhy_version.clone();
    let host_ip = probe::host_ip(env)?;
    for fault in &s.faults {
        let injected = fault.inject(env).await.map_err(|e| format!("injecting {}: {e}", fault.kind()))?;
        fault.check(env).await.map_err(|e| format!("{} injected but not observable: {e}", fault.kind()))?;
        let _ = tx.send(Event::FaultInjected {
            cell: id.clone(),
            kind: format!("{}: {}", injected.kind, injected.summary),
        });
    }
    clock.lap(Phase::Faults);
    let compose = match &s.trigger.compose {
        Some(c) => {
            let image = lab.images.get(&plan.engine.name).and_then(|i| i.compose.as_ref());
            let run = ComposeRun::prepare(env, c, image).await?;
            for argv in &run.before {
                let (code, text) = trigger(env, argv).await?;
                if code != 0 {
                    return Err(format!("{} (before the trigger) exited {code}: {text}", argv.join(" ")));
                }
            }
            Some(run)
        }
        None => None,
    };
    for step in &s.trigger.before {
        match step {
            BeforeStep::RestartDockerd => env
                .restart_dockerd()
                .await
                .map_err(|e| format!("restarting dockerd before the trigger: {e}"))?,
        }
    }
    clock.lap(Phase::Trigger);
    let query = s.port.to_string();
    let before = match s.diagnose {
        DiagnoseWhen::BeforeTrigger => Some(diagnose(env, &query, None, None).await),
        DiagnoseWhen::AfterTrigger => None,
    };
    clock.lap(Phase::Diagnose);
    let argv: Vec<String> = match &compose {
        Some(c) => c.up(),
        None => s.trigger.run.iter().map(|a| a.replace("{host_ip}", &host_ip.to_string())).collect(),
    };
    let (exit_code, error) = trigger(env, &argv).await?;
    rec.trigger = TriggerRecord { command: argv.join(" "), exit_code, error: error.clone() };
    let _ = tx.send(Event::Triggered { cell: id.clone(), exit_code, error: error.clone() });
    clock.lap(Phase::Trigger);
    let container = match &compose {
        Some(c) => c.container.as_str(),
        None => s.trigger.container_name().unwrap_or("web"),
    };
    let outcome = match before {
        Some(d) => d,
        None => {
            let text = (exit_code != 0 && !error.trim().is_empty()).then_some(error.as_str());
            // After a publish that succeeded, the triggered container holds the port itself: name it
            // as the subject so portwhy explains where its traffic goes instead of blaming it.
            let subject = (exit_code == 0).then_some(container);
            rec.diagnose_input =
                DiagnoseInput { error: text.map(str::to_owned), container: subject.map(str::to_owned) };
            diagnose(env, &query, text, subject).await
        }
    };
    clock.lap(Phase::Diagnose);
    let diagnosis = match outcome {
        Ok((d, bundle)) => {
            rec.bundle = Some(bundle);
            Some(d)
        }
        Err(e) => {
            rec.failures.push(format!("portwhy: {e}"));
            None
        }
    };
    let verdict = diagnosis.as_ref().and_then(|d| d.verdict());
    let cause = verdict.map(|f| f.code);
    let _ = tx.send(Event::Diagnosed { cell: id.clone(), cause });

    let publish = match &compose {
        Some(c) => c.publish.clone(),
        None => publish::first(&argv)?,
    };
    if exit_code == 0 && !plan.expectation.traffic.is_empty() {
        probe::container_ready(env, container, publish.container_port, s.port.proto).await?;
    }
    let mut traffic = Vec::new();
    for check in &plan.expectation.traffic {
        let port = check.port.unwrap_or(s.port.port);
        let (answered, reply) =
            probe::probe_until(env, check.from, check.client.as_deref(), check.proto, port, check.answers)
                .await;
        traffic.push(TrafficObservation { from: check.from, expected: check.answers, answered, reply });
    }
    clock.lap(Phase::Probes);
    let observed = Observed {
        trigger: if exit_code == 0 { TriggerResult::Succeeds } else { TriggerResult::Fails },
        stage: diagnosis.as_ref().and_then(|d| d.error.as_ref()).map(|e| e.stage),
        cause,
        findings: diagnosis.as_ref().map(|d| d.findings.iter().map(|f| f.code).collect()).unwrap_or_default(),
        traffic,
    };
    rec.failures.extend(crate::verdict::compare(&plan.expectation, &observed));
    rec.observed = Some(observed);

    if let Some(finding) = verdict.filter(|f| lab.prove && !f.code.is_note()) {
        let proof = Proof {
            env,
            trigger: &argv,
            container,
            query: &s.port,
            traffic: &plan.expectation.traffic,
            host_ip,
            ipv6: s.environment.ipv6,
            faults: &s.faults,
            images: &lab.images,
            compose: compose.as_ref(),
        };
        let claims: Vec<RemedyClaim> = plan
            .expectation
            .claims
            .iter()
            .filter(|c| c.backends.is_empty() || c.backends.contains(&plan.backend))
            .cloned()
            .collect();
        rec.remedies = prove(&proof, finding, &claims, tx, &id).await;
        rec.failures.extend(crate::verdict::compare_claims(&claims, &rec.remedies));
        rec.failures.extend(crate::verdict::compare_remedies(&plan.expectation, &rec.remedies));
        clock.lap(Phase::Remedies);
    }
    rec.diagnosis = diagnosis;
    rec.status = if rec.failures.is_empty() { Status::Pass } else { Status::Fail };
    Ok(())
}

/// Try the verdict's remedies and the scenario's claims, in an order that leaves each one the cause
/// it is meant to remove:
/// 1. workarounds (they leave the cause in place) and checks (read-only);
/// 2. portwhy's fixes, lowest risk first, until one is proven; the rest are not tried;
/// 3. the claims of the seed documents, each measured after the faults are injected again. They come
///    last because a claim may change more than the cause (a daemon restarted under another
///    backend), and what it leaves behind must not stand in the way of portwhy's own proof.
async fn prove(
    proof: &Proof<'_>,
    finding: &Finding,
    claims: &[RemedyClaim],
    tx: &UnboundedSender<Event>,
    id: &crate::outcome::CellId,
) -> Vec<RemedyTrial> {
    let mut trials = Vec::new();
    let mut cause_present = true;
    let report = |t: &RemedyTrial| {
        let _ = tx.send(Event::Remedied { cell: id.clone(), command: t.command.clone(), outcome: t.outcome });
    };
    for r in finding.remedies.iter().filter(|r| r.purpose != Purpose::Fix) {
        let t = proof.trial(r, RemedySource::Portwhy).await;
        report(&t);
        trials.push(t);
    }
    let mut proven: Option<String> = None;
    for r in finding.fixes() {
        if let Some(first) = &proven {
            trials.push(not_tried(
                r,
                RemedySource::Portwhy,
                format!("a lower-risk fix was proven first: `{first}`"),
            ));
            continue;
        }
        if let Err(e) = ensure_cause(proof, &mut cause_present).await {
            trials.push(not_tried(r, RemedySource::Portwhy, e));
            continue;
        }
        let t = proof.trial(r, RemedySource::Portwhy).await;
        if t.outcome == TrialOutcome::Proven {
            proven = Some(t.command.clone());
            cause_present = false;
        }
        report(&t);
        trials.push(t);
    }
    for c in claims {
        let remedy = claim_remedy(&c.action);
        if let Err(e) = ensure_cause(proof, &mut cause_present).await {
            trials.push(not_tried(&remedy, RemedySource::Claim, e));
            continue;
        }
        let meanwhile = match inject_meanwhile(proof.env, &c.meanwhile).await {
            Ok(m) => m,
            Err(e) => {
                trials.push(not_tried(&remedy, RemedySource::Claim, e));
                continue;
            }
        };
        // A side effect is only measured when it holds before the action.
        let mut before = Vec::new();
        for e in &c.effects {
            before.push(crate::probe::lookup(proof.env, &e.lookup).await);
        }
        if let Some((_, why)) = before.iter().find(|(ok, _)| !ok) {
            for (f, _) in meanwhile.iter().rev() {
                let _ = f.undo(proof.env).await;
            }
            trials.push(not_tried(
                &remedy,
                RemedySource::Claim,
                format!("the claim's side effect cannot be measured: before the action, {why}"),
            ));
            continue;
        }
        let mut t = proof.trial(&remedy, RemedySource::Claim).await;
        for (f, summary) in meanwhile.iter().rev() {
            let _ = f.undo(proof.env).await;
            t.ran.insert(0, format!("meanwhile: {summary}"));
        }
        for e in &c.effects {
            let (after, detail) = crate::probe::lookup(proof.env, &e.lookup).await;
            t.why.push_str(&format!(
                "; side effect: {} resolved before the action, {} after ({detail})",
                e.lookup,
                if after { "still resolves" } else { "does not resolve" }
            ));
            t.effects.push(crate::outcome::EffectObserved {
                lookup: e.lookup.clone(),
                before: true,
                after,
                detail,
            });
        }
        cause_present = t.outcome != TrialOutcome::Proven;
        report(&t);
        trials.push(t);
    }
    trials
}

/// A claim's `meanwhile` faults, injected and checked; each with what it did.
async fn inject_meanwhile(env: &Environment, faults: &[Fault]) -> Result<Vec<(Fault, String)>, String> {
    let mut out = Vec::new();
    for f in faults {
        let f = f.clone();
        let injected = f.inject(env).await.map_err(|e| format!("meanwhile {}: {e}", f.kind()))?;
        f.check(env).await.map_err(|e| format!("meanwhile {} not observable: {e}", f.kind()))?;
        out.push((f, injected.summary));
    }
    Ok(out)
}

/// Put the cause back when the last trial removed it.
async fn ensure_cause(proof: &Proof<'_>, present: &mut bool) -> Result<(), String> {
    if !*present {
        proof.restore_cause().await?;
        *present = true;
    }
    Ok(())
}

/// Run the trigger; returns the exit code and the daemon's text (stderr).
async fn trigger(env: &Environment, argv: &[String]) -> Result<(i64, String), String> {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = env.exec(&args).await.map_err(|e| format!("running the trigger: {e}"))?;
    Ok((out.exit_code, out.stderr.trim().to_owned()))
}

/// Where the bundle `portwhy collect` writes lives inside the environment.
const BUNDLE_IN_ENV: &str = "/run/portwhy/bundle.json";

/// `portwhy collect QUERY` into a bundle, then `portwhy diagnose --evidence BUNDLE [--error TEXT]
/// [--container NAME] --json`, inside the environment: the verdict is made from the bundle the
/// fast layer replays. Returns the diagnosis and the bundle.
async fn diagnose(
    env: &Environment,
    query: &str,
    error: Option<&str>,
    subject: Option<&str>,
) -> Result<(Diagnosis, serde_json::Value), String> {
    let collect = env
        .sh(&format!("{PORTWHY_IN_ENV} collect {} > {BUNDLE_IN_ENV}", portwhy::remedy::quote(query)))
        .await
        .map_err(|e| format!("running portwhy collect: {e}"))?;
    // 0 no conflict, 1 conflict, 3 inconclusive: all write a bundle. 2 and 4 are failures.
    if !matches!(collect.exit_code, 0 | 1 | 3) {
        return Err(format!(
            "`portwhy collect {query}` exited {}: {}",
            collect.exit_code,
            collect.stderr.trim()
        ));
    }
    let bundle_text =
        env.exec(&["cat", BUNDLE_IN_ENV]).await.map_err(|e| format!("reading the bundle: {e}"))?.stdout;
    let bundle: serde_json::Value =
        serde_json::from_str(&bundle_text).map_err(|e| format!("the bundle does not parse as JSON: {e}"))?;
    let mut argv = vec![PORTWHY_IN_ENV, "diagnose", query, "--evidence", BUNDLE_IN_ENV, "--json"];
    if let Some(e) = error {
        argv.extend(["--error", e]);
    }
    if let Some(c) = subject {
        argv.extend(["--container", c]);
    }
    let out = env.exec(&argv).await.map_err(|e| format!("running portwhy: {e}"))?;
    if !matches!(out.exit_code, 0 | 1 | 3) {
        return Err(format!("`{}` exited {}: {}", argv.join(" "), out.exit_code, out.stderr.trim()));
    }
    let d = serde_json::from_str(&out.stdout).map_err(|e| {
        let head: String = out.stdout.chars().take(300).collect();
        format!(
            "portwhy --json output (exit {}) does not parse as a Diagnosis ({e}): `{head}`; stderr: {}",
            out.exit_code,
            out.stderr.trim()
        )
    })?;
    Ok((d, bundle))
}
