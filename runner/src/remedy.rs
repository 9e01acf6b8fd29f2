//! Turning a remedy `portwhy` proposed into something the runner can execute in an environment.
//!
//! `portwhy` writes remedies for people: `docker run -p 127.0.0.1:8080:<container-port> ...`,
//! `sudo kill 4211`, `systemctl restart docker`. The runner fills them in this way:
//! - `docker run ... -p SPEC ...` rewrites the scenario's trigger: its publish becomes SPEC, with
//!   `<container-port>` taken from the trigger's own `-p` and `...` standing for the rest of the
//!   trigger's argv;
//! - `portwhy suggest Q` runs inside the environment; the first port it prints replaces the host
//!   port of the trigger's publish;
//! - `systemctl restart docker` (or `service docker restart`) restarts the environment's dockerd
//!   (there is no systemd inside); `systemctl stop X` ends process X;
//! - a leading `sudo` is dropped (everything runs as root), `a && b` runs each part in turn;
//! - anything else runs as a shell command; a command that still holds a `<placeholder>` cannot be
//!   filled and the next remedy is tried.

use portwhy::diagnosis::Remedy;

/// One executable step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run the trigger again with this argv instead of the scenario's.
    Retrigger(Vec<String>),
    /// Run `portwhy suggest ...` and re-publish on the port it prints.
    SuggestPort(String),
    RestartDockerd,
    Shell(String),
}

/// A remedy, made executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub remedy: Remedy,
    pub steps: Vec<Step>,
}

impl Plan {
    /// What the runner runs, for reports.
    pub fn applied(&self) -> String {
        self.steps
            .iter()
            .map(|s| match s {
                Step::Retrigger(argv) => argv.join(" "),
                Step::SuggestPort(cmd) => format!("{cmd} (then publish on the port it prints)"),
                Step::RestartDockerd => "restart dockerd".to_owned(),
                Step::Shell(cmd) => cmd.clone(),
            })
            .collect::<Vec<_>>()
            .join(" && ")
    }

    /// Whether the plan re-triggers on its own (otherwise the runner re-runs the scenario's trigger).
    pub fn retriggers(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Retrigger(_) | Step::SuggestPort(_)))
    }
}

/// The lowest-risk remedy that can be executed.
pub fn choose(remedies: &[Remedy], trigger: &[String]) -> Option<Plan> {
    executable(remedies, trigger).into_iter().next()
}

/// Every remedy that can be executed, lowest risk first (stable within one risk level).
pub fn executable(remedies: &[Remedy], trigger: &[String]) -> Vec<Plan> {
    let mut sorted: Vec<&Remedy> = remedies.iter().collect();
    sorted.sort_by_key(|r| r.risk);
    sorted
        .into_iter()
        .filter_map(|r| plan(r, trigger).map(|steps| Plan { remedy: r.clone(), steps }))
        .collect()
}

fn plan(remedy: &Remedy, trigger: &[String]) -> Option<Vec<Step>> {
    remedy.command.split("&&").map(|part| step(part.trim(), trigger)).collect()
}

fn step(cmd: &str, trigger: &[String]) -> Option<Step> {
    let cmd = cmd.strip_prefix("sudo ").unwrap_or(cmd).trim();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    match words.as_slice() {
        ["docker", "run", ..] => rewrite_trigger(&words[2..], trigger).map(Step::Retrigger),
        ["portwhy", "suggest", ..] => Some(Step::SuggestPort(cmd.to_owned())),
        ["systemctl", "restart", "docker" | "docker.service"] | ["service", "docker", "restart"] => {
            Some(Step::RestartDockerd)
        }
        ["systemctl", "stop" | "disable", rest @ ..] => {
            let unit = rest.iter().rev().find(|w| !w.starts_with('-'))?;
            let name = unit.trim_end_matches(".service");
            // The kernel's comm is at most 15 bytes (`systemd-resolve`).
            let comm: String = name.chars().take(15).collect();
            Some(Step::Shell(format!("pkill -x {comm} || kill $(pidof {comm})")))
        }
        _ if cmd.contains('<') && cmd.contains('>') => None,
        _ => Some(Step::Shell(cmd.to_owned())),
    }
}

/// `docker run` args of a remedy (`-p SPEC ...`) applied to the trigger argv.
fn rewrite_trigger(args: &[&str], trigger: &[String]) -> Option<Vec<String>> {
    let container_port = first_publish(trigger).and_then(|p| container_port(&p))?;
    let mut specs = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "-p" | "--publish" => specs.push(it.next()?.replace("<container-port>", &container_port)),
            "..." => {}
            other if other.contains('<') => return None,
            _ => {}
        }
    }
    if specs.is_empty() {
        return None;
    }
    Some(replace_publish(trigger, &specs))
}

fn first_publish(trigger: &[String]) -> Option<String> {
    trigger.windows(2).find(|w| w[0] == "-p" || w[0] == "--publish").map(|w| w[1].clone())
}

/// The container side of a publish spec, with its protocol: `8080:80/udp` → `80/udp`... but the
/// remedy writes the protocol itself, so only the number is returned.
fn container_port(spec: &str) -> Option<String> {
    let bare = spec.split('/').next()?;
    bare.rsplit(':').next().map(str::to_owned)
}

/// Replace every publish of the trigger with `specs` (in place of the first one).
pub fn replace_publish(trigger: &[String], specs: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(trigger.len());
    let mut inserted = false;
    let mut it = trigger.iter();
    while let Some(a) = it.next() {
        if a == "-p" || a == "--publish" {
            it.next();
            if !inserted {
                for s in specs {
                    out.push("-p".to_owned());
                    out.push(s.clone());
                }
                inserted = true;
            }
        } else {
            out.push(a.clone());
        }
    }
    out
}

/// The trigger with the host port of its publish replaced by `port` (for `portwhy suggest`).
pub fn with_host_port(trigger: &[String], port: u16) -> Vec<String> {
    let Some(spec) = first_publish(trigger) else { return trigger.to_vec() };
    let (body, proto) = match spec.split_once('/') {
        Some((b, p)) => (b.to_owned(), format!("/{p}")),
        None => (spec.clone(), String::new()),
    };
    // HOST_IP:HOST_PORT:CPORT or HOST_PORT:CPORT; IPv6 host addresses come in brackets.
    let new = match body.rsplit_once(':') {
        Some((left, cport)) => match left.rsplit_once(':') {
            Some((ip, _)) => format!("{ip}:{port}:{cport}{proto}"),
            None => format!("{port}:{cport}{proto}"),
        },
        None => format!("{port}:{body}{proto}"),
    };
    replace_publish(trigger, &[new])
}

/// The container port of the trigger's first publish (`8080:80/udp` → 80).
pub fn container_port_of(trigger: &[String]) -> Option<u16> {
    first_publish(trigger).and_then(|p| container_port(&p)).and_then(|p| p.parse().ok())
}

/// The host port a trigger publishes (for probes after a remedy moved it).
pub fn host_port(trigger: &[String]) -> Option<u16> {
    let spec = first_publish(trigger)?;
    let body = spec.split('/').next()?;
    let mut parts: Vec<&str> = body.rsplitn(3, ':').collect();
    parts.reverse();
    match parts.as_slice() {
        [_, host, _] | [host, _] => host.parse().ok(),
        _ => None,
    }
}

/// The first port number `portwhy suggest` printed that differs from `avoid`.
pub fn suggested_port(stdout: &str, avoid: u16) -> Option<u16> {
    stdout
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse::<u16>().ok())
        .find(|p| *p != avoid && *p >= 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portwhy::diagnosis::Risk;

    fn trigger() -> Vec<String> {
        ["docker", "run", "-d", "--name", "web", "-p", "8080:80", "busybox", "sh"].map(String::from).to_vec()
    }

    #[test]
    fn bind_address_remedy_rewrites_the_publish() {
        let r = Remedy::new(Risk::Safe, "docker run -p 127.0.0.2:8080:<container-port> ...", "x");
        let p = choose(&[r], &trigger()).unwrap();
        assert_eq!(
            p.steps,
            vec![Step::Retrigger(
                ["docker", "run", "-d", "--name", "web", "-p", "127.0.0.2:8080:80", "busybox", "sh"]
                    .map(String::from)
                    .to_vec()
            )]
        );
    }

    #[test]
    fn unfillable_placeholders_fall_through_to_the_next_remedy() {
        let a = Remedy::new(Risk::Safe, "iptables -t nat -D DOCKER <N>", "x");
        let b = Remedy::new(Risk::Disruptive, "sudo systemctl restart docker", "y");
        let p = choose(&[b, a], &trigger()).unwrap();
        assert_eq!(p.steps, vec![Step::RestartDockerd]);
    }

    #[test]
    fn chained_commands_and_service_stops_translate() {
        let r = Remedy::new(
            Risk::Disruptive,
            "sudo update-alternatives --set iptables /usr/sbin/iptables-legacy && sudo systemctl restart docker",
            "x",
        );
        let p = choose(&[r], &trigger()).unwrap();
        assert_eq!(
            p.steps,
            vec![
                Step::Shell("update-alternatives --set iptables /usr/sbin/iptables-legacy".into()),
                Step::RestartDockerd
            ]
        );
        let s = Remedy::new(Risk::Disruptive, "sudo systemctl disable --now systemd-resolved", "x");
        let p = choose(&[s], &trigger()).unwrap();
        assert_eq!(
            p.steps,
            vec![Step::Shell("pkill -x systemd-resolve || kill $(pidof systemd-resolve)".into())]
        );
    }

    #[test]
    fn host_port_edits_keep_address_and_protocol() {
        let t: Vec<String> = ["docker", "run", "-p", "127.0.0.1:53:53/udp", "x"].map(String::from).to_vec();
        assert_eq!(with_host_port(&t, 5300)[3], "127.0.0.1:5300:53/udp");
        assert_eq!(host_port(&t), Some(53));
        assert_eq!(host_port(&trigger()), Some(8080));
        assert_eq!(with_host_port(&trigger(), 8081)[6], "8081:80");
        assert_eq!(suggested_port("free: 8081/tcp (next to 8080)", 8080), Some(8081));
    }
}
