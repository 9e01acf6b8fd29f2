//! One matrix cell, end to end: environment, faults, trigger, `portwhy`, comparison, remedy, proof.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::Docker;
use portwhy::diagnosis::Diagnosis;
use portwhy::port::Proto;
use portwhy_harness::{EngineImage, EnvOptions, Environment, Fault, FirewallMode, RunLabels};
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;

use crate::event::Event;
use crate::matrix::CellPlan;
use crate::outcome::{
    CellOptions, CellResult, Observed, RemedyRecord, Status, TrafficObservation, TriggerRecord,
};
use crate::probe;
use crate::remedy::{self, Step};
use crate::scenario::{Action, Answerer, BackendName, Cause, DiagnoseWhen, TrafficSource, TriggerResult};

/// Where `portwhy` is copied inside every environment.
const PORTWHY_IN_ENV: &str = "/usr/local/bin/portwhy";

/// What every cell of a run shares.
pub struct Lab {
    pub docker: Docker,
    pub run_id: String,
    /// The host-built `portwhy` binary copied into each environment.
    pub portwhy_bin: PathBuf,
    /// Leave environments running after the cell (for `repro` and debugging).
    pub keep: bool,
    /// `--privileged --cgroupns private` environments (CI runners with cgroup v2).
    pub privileged: bool,
    /// Engine images by engine name, built before the cells start.
    pub images: HashMap<String, EngineImage>,
}

/// Result of a cell that left its environment up (`repro`).
pub struct KeptCell {
    pub result: CellResult,
    pub env_name: Option<String>,
}

fn firewall(b: BackendName) -> FirewallMode {
    match b {
        BackendName::Legacy => FirewallMode::Legacy,
        BackendName::Nft => FirewallMode::Nft,
    }
}

fn blank_result(plan: &CellPlan) -> CellResult {
    let s = &plan.scenario;
    CellResult {
        scenario: s.name.clone(),
        title: s.title.clone(),
        seed: s.seed_claim.source,
        claim: s.seed_claim.claim.clone(),
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
        expected: plan.expectation.clone(),
        observed: None,
        remedy: None,
        status: Status::Error,
        failures: Vec::new(),
        duration_ms: 0,
    }
}

/// Run one cell; never panics on environment trouble: that becomes `Status::Error`.
pub async fn run(lab: &Lab, plan: &CellPlan, tx: &UnboundedSender<Event>) -> KeptCell {
    let started = Instant::now();
    let id = plan.id();
    let _ = tx.send(Event::Started { cell: id.clone() });
    let mut rec = blank_result(plan);
    let mut env_name = None;
    match start_env(lab, plan).await {
        Err(e) => rec.failures.push(format!("environment: {e}")),
        Ok(env) => {
            rec.engine = env.engine_version().to_owned();
            env_name = Some(env.name().to_owned());
            let _ = tx.send(Event::EnvReady {
                cell: id.clone(),
                engine_version: env.engine_version().to_owned(),
                ms: env.ready_after().as_millis() as u64,
            });
            if let Err(e) = drive(lab, plan, &env, &mut rec, tx).await {
                rec.status = Status::Error;
                rec.failures.push(e);
            }
            if lab.keep {
                // Dropping the handle would remove the container; `portwhy-lab down` does that later.
                std::mem::forget(env);
            } else if let Err(e) = env.teardown().await {
                let _ = tx.send(Event::Progress { message: format!("{id}: teardown failed: {e}") });
            }
        }
    }
    rec.duration_ms = started.elapsed().as_millis() as u64;
    let _ = tx.send(Event::Finished { result: Box::new(rec.clone()) });
    KeptCell { result: rec, env_name }
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
        daemon_json: serde_json::Value::Object(Default::default()),
        labels: RunLabels {
            run_id: lab.run_id.clone(),
            scenario: s.name.clone(),
            env: format!("{}-{}", plan.engine.name, plan.backend),
        },
    };
    Environment::start(&lab.docker, image, opts).await.map_err(|e| e.to_string())
}

/// The typed harness fault of a scenario entry.
pub fn fault_of(value: &toml::Value, host_ip: &str) -> Result<Fault, String> {
    Fault::deserialize(crate::scenario::fill_host_ip(value, host_ip)).map_err(|e| e.to_string())
}

/// The steps after the environment is up. `Err` = the cell could not run (not a verdict).
async fn drive(
    lab: &Lab,
    plan: &CellPlan,
    env: &Environment,
    rec: &mut CellResult,
    tx: &UnboundedSender<Event>,
) -> Result<(), String> {
    let id = plan.id();
    let s = &plan.scenario;
    env.copy_in(&lab.portwhy_bin, "/usr/local/bin").await.map_err(|e| format!("copying portwhy in: {e}"))?;
    let host_ip = probe::host_ip(env).await?.to_string();
    for f in &s.faults {
        let fault = fault_of(f, &host_ip)?;
        let injected = fault.inject(env).await.map_err(|e| format!("injecting {}: {e}", fault.kind()))?;
        fault.check(env).await.map_err(|e| format!("{} injected but not observable: {e}", fault.kind()))?;
        let _ = tx.send(Event::FaultInjected {
            cell: id.clone(),
            kind: format!("{}: {}", injected.kind, injected.summary),
        });
    }
    for action in &s.trigger.before {
        match action {
            Action::RestartDockerd => env
                .restart_dockerd()
                .await
                .map_err(|e| format!("restarting dockerd before the trigger: {e}"))?,
        }
    }
    let query = s.port.to_string();
    let mut diagnosis = match s.diagnose {
        DiagnoseWhen::BeforeTrigger => Some(diagnose(env, &query, None, None).await),
        DiagnoseWhen::AfterTrigger => None,
    };
    let argv: Vec<String> = s.trigger.run.iter().map(|a| a.replace("{host_ip}", &host_ip)).collect();
    let (exit_code, error) = trigger(env, &argv).await?;
    rec.trigger = TriggerRecord { command: argv.join(" "), exit_code, error: error.clone() };
    let _ = tx.send(Event::Triggered { cell: id.clone(), exit_code, error: error.clone() });
    if diagnosis.is_none() {
        let text = (exit_code != 0 && !error.trim().is_empty()).then_some(error.as_str());
        // After a publish that succeeded, the triggered container holds the port itself: name it
        // as the subject so portwhy explains where its traffic goes instead of blaming it.
        let subject = (exit_code == 0).then(|| s.trigger.container_name()).flatten();
        diagnosis = Some(diagnose(env, &query, text, subject).await);
    }
    let diagnosis = match diagnosis {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            rec.failures.push(format!("portwhy: {e}"));
            None
        }
        None => None,
    };
    // The verdict is the first finding that explains a conflict; notes (low confidence, no-conflict)
    // count only when nothing else was found.
    let cause = diagnosis
        .as_ref()
        .and_then(|d| d.findings.iter().find(|f| f.is_conflict()).or_else(|| d.findings.first()))
        .map(|f| f.code.clone());
    let _ = tx.send(Event::Diagnosed { cell: id.clone(), cause: cause.clone() });

    if exit_code == 0 && !plan.expectation.traffic.is_empty() {
        // A "nothing answered" only means something once the container itself answers.
        let name = s.trigger.container_name().unwrap_or("web");
        let cport = remedy::container_port_of(&argv).unwrap_or(80);
        container_ready(env, name, cport, s.port.proto).await?;
    }
    let mut traffic = Vec::new();
    for check in &plan.expectation.traffic {
        let port = check.port.unwrap_or(s.port.port);
        let (answered, reply) =
            probe_until(env, check.from, check.client.as_deref(), check.proto, port, check.answers).await;
        traffic.push(TrafficObservation { from: check.from, expected: check.answers, answered, reply });
    }
    let observed = Observed {
        trigger: if exit_code == 0 { TriggerResult::Succeeds } else { TriggerResult::Fails },
        stage: diagnosis.as_ref().and_then(|d| d.error.as_ref()).map(|e| e.stage),
        cause,
        findings: diagnosis
            .as_ref()
            .map(|d| d.findings.iter().map(|f| f.code.clone()).collect())
            .unwrap_or_default(),
        traffic,
    };
    rec.failures.extend(crate::verdict::compare(&plan.expectation, &observed));
    rec.observed = Some(observed);
    rec.diagnosis = diagnosis;

    if needs_remedy(plan.expectation.cause) {
        let record = apply_remedy(env, plan, rec, &argv).await;
        match &record {
            Some(r) => {
                let _ = tx.send(Event::Remedied {
                    cell: id.clone(),
                    command: r.applied.clone(),
                    verified: r.verified,
                });
                if !r.verified {
                    rec.failures
                        .push(format!("remedy `{}` did not make the publish work: {}", r.applied, r.detail));
                }
            }
            None => rec.failures.push("portwhy proposed no remedy the runner could apply".to_owned()),
        }
        rec.remedy = record;
    }
    rec.status = if rec.failures.is_empty() { Status::Pass } else { Status::Fail };
    Ok(())
}

/// Causes with nothing to fix: the no-conflict verdict and the stopped-container note.
fn needs_remedy(cause: Cause) -> bool {
    !matches!(cause, Cause::NoConflict | Cause::StoppedContainer)
}

/// Run the trigger; returns the exit code and the daemon's text (stderr).
async fn trigger(env: &Environment, argv: &[String]) -> Result<(i64, String), String> {
    let args: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = env.exec(&args).await.map_err(|e| format!("running the trigger: {e}"))?;
    Ok((out.exit_code, out.stderr.trim().to_owned()))
}

/// `portwhy diagnose QUERY [--error TEXT] [--container NAME] --json` inside the environment.
async fn diagnose(
    env: &Environment,
    query: &str,
    error: Option<&str>,
    subject: Option<&str>,
) -> Result<Diagnosis, String> {
    let mut argv = vec![PORTWHY_IN_ENV, "diagnose", query, "--json"];
    if let Some(e) = error {
        argv.extend(["--error", e]);
    }
    if let Some(c) = subject {
        argv.extend(["--container", c]);
    }
    let out = env.exec(&argv).await.map_err(|e| format!("running portwhy: {e}"))?;
    // 0 no conflict, 1 conflict, 3 inconclusive: all print a diagnosis. 2 and 4 are failures.
    if !matches!(out.exit_code, 0 | 1 | 3) {
        return Err(format!("`{}` exited {}: {}", argv.join(" "), out.exit_code, out.stderr.trim()));
    }
    serde_json::from_str(&out.stdout).map_err(|e| {
        let head: String = out.stdout.chars().take(300).collect();
        format!(
            "portwhy --json output (exit {}) does not parse as a Diagnosis ({e}): `{head}`; stderr: {}",
            out.exit_code,
            out.stderr.trim()
        )
    })
}

/// Wait (at most ~5 s) until the trigger's container answers on its own address, so a probe that
/// gets nothing through the published port shows a routing fault, not a slow start.
async fn container_ready(env: &Environment, name: &str, port: u16, proto: Proto) -> Result<(), String> {
    let ip = env
        .exec(&["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name])
        .await
        .map_err(|e| e.to_string())?
        .stdout
        .split_whitespace()
        .next()
        .map(str::to_owned)
        .ok_or_else(|| format!("container {name} has no address"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (who, reply) = probe::probe_address(env, &ip, proto, port).await;
        if who == Answerer::Container {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("container {name} never answered on {ip}:{port}/{proto} ({reply})"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Probe until the answer matches (servers in fresh containers take a moment to listen), at most ~3 s.
async fn probe_until(
    env: &Environment,
    from: TrafficSource,
    client: Option<&str>,
    proto: Proto,
    port: u16,
    want: Answerer,
) -> (Answerer, String) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (got, reply) = probe::probe(env, from, client, proto, port).await;
        if got == want || Instant::now() > deadline {
            return (got, reply);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Apply the remedies of the first conflict finding, lowest risk first, until one makes the publish
/// work; the record names the one that did (or the last one tried) and what the others did.
async fn apply_remedy(
    env: &Environment,
    plan: &CellPlan,
    rec: &CellResult,
    argv: &[String],
) -> Option<RemedyRecord> {
    let d = rec.diagnosis.as_ref()?;
    let finding = d.findings.iter().find(|f| f.is_conflict()).or_else(|| d.findings.first())?;
    let mut earlier: Vec<String> = Vec::new();
    let mut last = None;
    for chosen in remedy::executable(&finding.remedies, argv) {
        let record = try_remedy(env, plan, &chosen, argv).await;
        if record.verified {
            let mut record = record;
            if !earlier.is_empty() {
                record.detail = format!("{}; tried first: {}", record.detail, earlier.join(" | "));
            }
            return Some(record);
        }
        earlier.push(format!("`{}` ({}): {}", record.applied, record.risk.as_str(), record.detail));
        last = Some(record);
    }
    last.map(|mut r| {
        r.detail = earlier.join(" | ");
        r
    })
}

async fn try_remedy(
    env: &Environment,
    plan: &CellPlan,
    chosen: &remedy::Plan,
    argv: &[String],
) -> RemedyRecord {
    let mut new_argv = argv.to_vec();
    let mut detail = Vec::new();
    for step in &chosen.steps {
        match step {
            Step::Retrigger(a) => new_argv = a.clone(),
            Step::SuggestPort(cmd) => {
                let cmd = cmd.replacen("portwhy", PORTWHY_IN_ENV, 1);
                match env.sh(&cmd).await {
                    Ok(o) => match remedy::suggested_port(&o.stdout, plan.scenario.port.port) {
                        Some(p) => new_argv = remedy::with_host_port(&new_argv, p),
                        None => detail.push(format!(
                            "`{cmd}` printed no port (exit {}): {}",
                            o.exit_code,
                            o.stderr.trim()
                        )),
                    },
                    Err(e) => detail.push(format!("`{cmd}`: {e}")),
                }
            }
            Step::RestartDockerd => {
                if let Err(e) = env.restart_dockerd().await {
                    detail.push(format!("restarting dockerd: {e}"));
                }
            }
            Step::Shell(cmd) => match env.sh(cmd).await {
                Ok(o) if o.success() => {}
                Ok(o) => detail.push(format!("`{cmd}` exited {}: {}", o.exit_code, o.stderr.trim())),
                Err(e) => detail.push(format!("`{cmd}`: {e}")),
            },
        }
    }
    let name = plan.scenario.trigger.container_name().unwrap_or("web");
    let _ = env.exec(&["docker", "rm", "-f", name]).await;
    let verified = match trigger(env, &new_argv).await {
        Ok((0, _)) => {
            let port = remedy::host_port(&new_argv).unwrap_or(plan.scenario.port.port);
            let proto = plan.scenario.port.proto;
            let default = if new_argv.iter().any(|a| a.starts_with("127.")) {
                TrafficSource::Loopback4
            } else {
                TrafficSource::Outside
            };
            // The addresses that matter: the default path, plus the cross-network path the scenario
            // found broken (a hairpin is only fixed when that path works).
            let mut sources: Vec<(TrafficSource, Option<&str>)> = vec![(default, None)];
            for t in &plan.expectation.traffic {
                let source = (t.from, t.client.as_deref());
                if t.from == TrafficSource::OtherNetwork && !sources.contains(&source) {
                    sources.push(source);
                }
            }
            detail.push(format!("re-trigger `{}` exited 0", new_argv.join(" ")));
            let mut all = true;
            for (from, client) in sources {
                let (answered, reply) =
                    probe_until(env, from, client, proto, port, Answerer::Container).await;
                detail.push(format!(
                    "traffic from {} to {port}/{proto}: {} answered ({reply})",
                    from.as_str(),
                    answered.as_str()
                ));
                all &= answered == Answerer::Container;
            }
            all
        }
        Ok((code, err)) => {
            detail.push(format!("re-trigger `{}` exited {code}: {err}", new_argv.join(" ")));
            false
        }
        Err(e) => {
            detail.push(e);
            false
        }
    };
    RemedyRecord {
        command: chosen.remedy.command.clone(),
        risk: chosen.remedy.risk,
        applied: if chosen.retriggers() {
            chosen.applied()
        } else {
            format!("{} && {}", chosen.applied(), new_argv.join(" "))
        },
        verified,
        detail: detail.join("; "),
    }
}
