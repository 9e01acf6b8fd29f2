//! Proving remedies: run a typed action in the environment as a user would, publish the same
//! container again, and probe who answers.
//!
//! A fix is proven when, after its steps, the scenario's own trigger (the same port, and the same
//! address unless the fix's point is another address, such as leaving 127.0.0.53 to a resolver
//! stub) exits 0 and the container answers from every source its publish covers, while no source
//! still reaches the process that held the port. A workaround is proven the same way on the port or
//! address it moves to. A check is proven when it runs and exits 0. Nothing here reads the text
//! `portwhy` printed: the steps come from the action's own fields (`Action::steps`).
//!
//! The environment has no systemd, so the steps that need one are done the way the environment
//! runs those services: a daemon restart is the environment's own, a service stop is SIGTERM to the
//! service's process, and a service start runs its binary as the fault did.

use std::net::IpAddr;

use portwhy::port::{PortQuery, Proto};
use portwhy::remedy::{Action, BindAddress, Purpose, Remedy, Step};
use portwhy::version::EngineVersion;
use portwhy_harness::{EngineImage, Environment, Fault, RootlessPortDriver};

use crate::outcome::{RemedySource, RemedyTrial, TrialOutcome};
use crate::probe;
use crate::publish::{self, PublishSpec};
use crate::scenario::{Answerer, TrafficCheck, TrafficSource};

/// Where `portwhy` is copied inside every environment.
pub(crate) const PORTWHY_IN_ENV: &str = "/usr/local/bin/portwhy";

/// What a proof needs to know about the cell.
pub struct Proof<'a> {
    pub env: &'a Environment,
    /// The scenario's trigger argv, `{host_ip}` filled.
    pub trigger: &'a [String],
    /// The trigger's `--name`.
    pub container: &'a str,
    pub query: &'a PortQuery,
    /// The scenario's probes: the sources that matter for this cause.
    pub traffic: &'a [TrafficCheck],
    pub host_ip: IpAddr,
    /// The environment has IPv6 on lo/eth0 (a wildcard publish then covers `::1` too).
    pub ipv6: bool,
    /// The scenario's faults, to put the cause back after a remedy removed it.
    pub faults: &'a [Fault],
    /// The run's engine images, by engine name: where an upgrade finds its release.
    pub images: &'a std::collections::HashMap<String, EngineImage>,
    /// The compose project when compose is the trigger: it is downed, not `docker rm`-ed.
    pub compose: Option<&'a crate::compose::ComposeRun>,
}

/// A step the environment cannot carry out (the trial is then "not tried", with this reason).
struct Unsupported(String);

impl Proof<'_> {
    /// Try one remedy and record what it showed.
    pub async fn trial(&self, remedy: &Remedy, source: RemedySource) -> RemedyTrial {
        let mut trial = RemedyTrial {
            source,
            kind: remedy.kind(),
            purpose: remedy.purpose,
            risk: remedy.risk,
            command: remedy.command.clone(),
            outcome: TrialOutcome::Failed,
            ran: Vec::new(),
            why: String::new(),
            effects: Vec::new(),
        };
        let steps = remedy.action.steps();
        let mut argv = self.trigger.to_vec();
        for step in &steps {
            match self.run_step(step, &mut argv).await {
                Ok(ran) => trial.ran.extend(ran),
                Err(StepError::Unsupported(Unsupported(why))) => {
                    trial.outcome = TrialOutcome::NotTried;
                    trial.why = why;
                    return trial;
                }
                Err(StepError::Failed(why)) => {
                    trial.why = why;
                    return trial;
                }
            }
        }
        if remedy.purpose == Purpose::Check {
            trial.outcome = TrialOutcome::Proven;
            trial.why = "ran and exited 0".to_owned();
            return trial;
        }
        let (proven, why) = self.publish_and_probe(&argv).await;
        trial.ran.push(argv.join(" "));
        trial.outcome = if proven { TrialOutcome::Proven } else { TrialOutcome::Failed };
        trial.why = why;
        // A workaround leaves the cause in place but its container on another port or address:
        // remove it so later trials start from the fault alone.
        if remedy.purpose == Purpose::Workaround {
            self.remove_trigger().await;
        }
        trial
    }

    /// Undo the trigger so it can run again: `docker rm -f`, or the compose project down.
    async fn remove_trigger(&self) {
        match self.compose {
            Some(c) => {
                let down = c.down();
                let w: Vec<&str> = down.iter().map(String::as_str).collect();
                let _ = self.env.exec(&w).await;
            }
            None => {
                let _ = self.env.exec(&["docker", "rm", "-f", self.container]).await;
            }
        }
    }

    /// The publish the trigger `argv` asks for (compose: read back from the files, which a remedy
    /// may have edited).
    async fn publish_of(&self, argv: &[String]) -> Result<PublishSpec, String> {
        match self.compose {
            Some(c) => c.publish_in(self.env).await,
            None => publish::first(argv),
        }
    }

    fn compose_cannot_move(&self) -> Result<(), StepError> {
        match self.compose {
            Some(_) => Err(StepError::Unsupported(Unsupported(
                "a compose service moves to another port by an edit of its file; the lab does not run that edit"
                    .to_owned(),
            ))),
            None => Ok(()),
        }
    }

    /// Remove whatever the last trial left and inject the faults again, so the next remedy meets
    /// the cause it is meant to remove.
    pub async fn restore_cause(&self) -> Result<(), String> {
        self.remove_trigger().await;
        for f in self.faults.iter().rev() {
            // The remedy may have removed part of it already; undo tolerates what is gone.
            let _ = f.undo(self.env).await;
        }
        for f in self.faults {
            f.inject(self.env).await.map_err(|e| format!("re-injecting {}: {e}", f.kind()))?;
            f.check(self.env)
                .await
                .map_err(|e| format!("{} re-injected but not observable: {e}", f.kind()))?;
        }
        // A remedy may have edited the project's files: put the scenario's own back.
        if let Some(c) = self.compose {
            c.restore_files(self.env).await?;
        }
        // What compose deployed before the trigger is part of the cause too (another project on the port).
        for argv in self.compose.iter().flat_map(|c| c.before.iter()) {
            let w: Vec<&str> = argv.iter().map(String::as_str).collect();
            let out = self.env.exec(&w).await.map_err(|e| format!("{}: {e}", argv.join(" ")))?;
            if !out.success() {
                return Err(format!("{} exited {}: {}", argv.join(" "), out.exit_code, out.stderr.trim()));
            }
        }
        Ok(())
    }

    async fn run_step(&self, step: &Step, argv: &mut Vec<String>) -> Result<Vec<String>, StepError> {
        let env = self.env;
        let failed = |what: &str, e: &dyn std::fmt::Display| StepError::Failed(format!("{what}: {e}"));
        match step {
            Step::Run { argv: words } => {
                let w: Vec<&str> = words.iter().map(String::as_str).collect();
                let out = env.exec(&w).await.map_err(|e| failed(&step.render(), &e))?;
                if !out.success() {
                    return Err(StepError::Failed(format!(
                        "`{}` exited {}: {}",
                        step.render(),
                        out.exit_code,
                        out.stderr.trim()
                    )));
                }
                Ok(vec![step.render()])
            }
            Step::WriteFile { path, content } => {
                env.write_file(path, content.as_bytes(), 0o644)
                    .await
                    .map_err(|e| failed(&step.render(), &e))?;
                Ok(vec![format!("write {path}")])
            }
            Step::RestartDaemon { .. } | Step::StartDaemon { .. } => {
                env.restart_dockerd().await.map_err(|e| failed("restarting dockerd", &e))?;
                Ok(vec!["restart the environment's dockerd (no systemd inside)".to_owned()])
            }
            Step::StopService { unit, process } => {
                env.stop_service(process).await.map_err(|e| failed(&format!("stopping {unit}"), &e))?;
                Ok(vec![format!("stop {unit}: SIGTERM to {process} (no systemd inside)")])
            }
            Step::RestartService { unit, process } => {
                env.stop_service(process).await.map_err(|e| failed(&format!("stopping {unit}"), &e))?;
                portwhy_harness::faults::start_service(env, unit)
                    .await
                    .map_err(|e| failed(&format!("starting {unit}"), &e))?;
                Ok(vec![format!("restart {unit}: SIGTERM to {process}, then start it (no systemd inside)")])
            }
            Step::Publish { address, port, proto } => {
                self.compose_cannot_move()?;
                let mut spec = publish::first(argv).map_err(StepError::Failed)?;
                spec.host_ip = Some(match address {
                    BindAddress::Ip(ip) => *ip,
                    BindAddress::HostIp => self.host_ip,
                });
                spec.host_port = Some(*port);
                if *proto != Proto::Tcp {
                    spec.proto = Some(*proto);
                }
                *argv = publish::with_first(argv, &spec);
                Ok(vec![format!("publish on {spec}")])
            }
            Step::SuggestPort { query } => {
                self.compose_cannot_move()?;
                let q = query.to_string();
                let out = env
                    .exec(&[PORTWHY_IN_ENV, "suggest", &q, "--json"])
                    .await
                    .map_err(|e| failed("portwhy suggest", &e))?;
                let port = serde_json::from_str::<serde_json::Value>(&out.stdout)
                    .ok()
                    .and_then(|v| v["suggested"].as_u64())
                    .and_then(|p| u16::try_from(p).ok())
                    .ok_or_else(|| {
                        StepError::Failed(format!(
                            "`portwhy suggest {q} --json` named no free port (exit {}): {}",
                            out.exit_code,
                            out.stderr.trim()
                        ))
                    })?;
                let mut spec = publish::first(argv).map_err(StepError::Failed)?;
                spec.host_port = Some(port);
                *argv = publish::with_first(argv, &spec);
                Ok(vec![format!("portwhy suggest {q}: {port}")])
            }
            Step::UpgradeEngine { to } => {
                let image = self.release_from(to).ok_or_else(|| {
                    StepError::Unsupported(Unsupported(format!(
                        "no tarball engine at {to} or later among this run's engines (run it with --engine {to})"
                    )))
                })?;
                let version =
                    env.install_engine(image).await.map_err(|e| failed("upgrading the engine", &e))?;
                Ok(vec![format!(
                    "installed {} ({}): dockerd now reports {version}",
                    image.engine.name, image.tag
                )])
            }
            Step::SetRootlessPortDriver { driver } => {
                let d = match driver.as_str() {
                    "builtin" => RootlessPortDriver::Builtin,
                    "slirp4netns" => RootlessPortDriver::Slirp4netns,
                    other => {
                        return Err(StepError::Unsupported(Unsupported(format!(
                            "the lab runs the builtin and slirp4netns port drivers, not {other}"
                        ))))
                    }
                };
                env.set_rootless_port_driver(d).await.map_err(|e| failed("switching the port driver", &e))?;
                Ok(vec![step.render()])
            }
            Step::EditLine { path, line, old, new } => {
                let out =
                    env.exec(&["cat", path]).await.map_err(|e| failed(&format!("reading {path}"), &e))?;
                if !out.success() {
                    return Err(StepError::Failed(format!("reading {path}: {}", out.stderr.trim())));
                }
                let edited =
                    crate::compose::edit_line(&out.stdout, *line, old, new).map_err(StepError::Failed)?;
                env.write_file(path, edited.as_bytes(), 0o644)
                    .await
                    .map_err(|e| failed(&step.render(), &e))?;
                Ok(vec![step.render()])
            }
            Step::Foreign { os, .. } => Err(StepError::Unsupported(Unsupported(format!(
                "a command for {os:?}: no Linux environment can run it"
            )))),
        }
    }

    /// The oldest tarball engine of the run at `to` or later: what a user upgrading to `to` gets
    /// (only tarball engines install over another engine's files).
    fn release_from(&self, to: &str) -> Option<&EngineImage> {
        let to = EngineVersion::parse(to).ok()?;
        self.images
            .values()
            .filter(|i| matches!(i.engine.recipe, portwhy_harness::Recipe::Tarball { .. }))
            .filter_map(|i| EngineVersion::parse(&i.engine.version).ok().map(|v| (v, i)))
            .filter(|(v, _)| *v >= to)
            .min_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, i)| i)
    }

    /// Run `argv` (the trigger, perhaps moved to another port or address) and probe.
    async fn publish_and_probe(&self, argv: &[String]) -> (bool, String) {
        let env = self.env;
        self.remove_trigger().await;
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = match env.exec(&words).await {
            Ok(o) => o,
            Err(e) => return (false, format!("re-trigger: {e}")),
        };
        if !out.success() {
            return (false, format!("re-trigger exited {}: {}", out.exit_code, out.stderr.trim()));
        }
        let spec = match self.publish_of(argv).await {
            Ok(s) => s,
            Err(e) => return (false, e),
        };
        let port = spec.host_port.unwrap_or(self.query.port);
        let proto = spec.proto();
        if let Err(e) = probe::container_ready(env, self.container, spec.container_port, proto).await {
            return (false, format!("re-trigger exited 0, but {e}"));
        }
        let mut notes = vec![format!("re-trigger exited 0 on {spec}")];
        let mut proven = true;
        // The default path for the publish's address: another host for a wildcard or the host's
        // own address, the address itself from inside for anything else (127.0.0.2, ::1, ...).
        let (got, reply, from) = match spec.host_ip {
            None => self.probe(TrafficSource::Outside, None, proto, port).await,
            Some(ip) if ip.is_unspecified() && ip.is_ipv4() || ip == self.host_ip => {
                self.probe(TrafficSource::Outside, None, proto, port).await
            }
            Some(ip) => {
                let (got, reply) = probe::probe_address_until(env, &ip.to_string(), proto, port).await;
                (got, reply, format!("this host to {ip}"))
            }
        };
        proven &= got == Answerer::Container;
        notes.push(format!("from {from} to {port}/{proto}: {} answered ({reply})", got.as_str()));
        // The default path already asked from outside, where every publish it probes covers.
        let asked_outside = (from == TrafficSource::Outside.as_str()).then_some((got, reply));
        for t in self.traffic {
            let covered = self.covers(&spec, t.from);
            let want = if covered { Answerer::Container } else { Answerer::Nothing };
            let (got, reply) = match &asked_outside {
                Some((got, reply)) if t.from == TrafficSource::Outside && t.client.is_none() && covered => {
                    (*got, reply.clone())
                }
                _ => probe::probe_until(env, t.from, t.client.as_deref(), proto, port, want).await,
            };
            // Not covered by the publish: only the old holder answering there is wrong.
            let ok = if covered { got == Answerer::Container } else { got != Answerer::HostProcess };
            proven &= ok;
            notes.push(format!(
                "from {} to {port}/{proto}: {} answered{} ({reply})",
                t.from.as_str(),
                got.as_str(),
                if ok { "" } else { ", which is wrong" }
            ));
        }
        (proven, notes.join("; "))
    }

    async fn probe(
        &self,
        from: TrafficSource,
        client: Option<&str>,
        proto: Proto,
        port: u16,
    ) -> (Answerer, String, String) {
        let (got, reply) = probe::probe_until(self.env, from, client, proto, port, Answerer::Container).await;
        (got, reply, from.as_str().to_owned())
    }

    /// Whether a publish on `spec`'s address reaches the container from the scenario source `from`.
    fn covers(&self, spec: &PublishSpec, from: TrafficSource) -> bool {
        let v4_any = matches!(
            from,
            TrafficSource::Loopback4
                | TrafficSource::HostIp
                | TrafficSource::Outside
                | TrafficSource::OtherNetwork
        );
        let loopback4 = IpAddr::from([127, 0, 0, 1]);
        match spec.host_ip {
            // Docker binds both families for an address-less publish when IPv6 is up.
            None => v4_any || (from == TrafficSource::Loopback6 && self.ipv6),
            Some(ip) if ip.is_unspecified() && ip.is_ipv4() => v4_any,
            Some(ip) if ip.is_unspecified() => from == TrafficSource::Loopback6,
            Some(ip) if ip == loopback4 => from == TrafficSource::Loopback4,
            Some(ip) if ip.is_loopback() && ip.is_ipv6() => from == TrafficSource::Loopback6,
            Some(ip) if ip == self.host_ip => {
                matches!(from, TrafficSource::HostIp | TrafficSource::Outside | TrafficSource::OtherNetwork)
            }
            Some(_) => false,
        }
    }
}

enum StepError {
    Unsupported(Unsupported),
    Failed(String),
}

/// A trial that did not run, and why (a lower-risk fix was already proven, ...).
pub fn not_tried(remedy: &Remedy, source: RemedySource, why: impl Into<String>) -> RemedyTrial {
    RemedyTrial {
        source,
        kind: remedy.kind(),
        purpose: remedy.purpose,
        risk: remedy.risk,
        command: remedy.command.clone(),
        outcome: TrialOutcome::NotTried,
        ran: Vec::new(),
        why: why.into(),
        effects: Vec::new(),
    }
}

/// A claim's action as a remedy, so it is tried and reported like portwhy's own.
pub fn claim_remedy(action: &Action) -> Remedy {
    // The risk of a claim is not portwhy's to rank; it is reported with the worst that a restart or
    // removal can do, and as a fix because that is what the document claims it is.
    Remedy::fix(portwhy::remedy::Risk::Disruptive, action.clone(), "a seed document's remedy, as measured")
}
