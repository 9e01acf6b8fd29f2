//! PW012 privileged-port: the engine may not bind the port (rootless below 1024, Windows reserved range).

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::parse::error::Stage;
use crate::remedy::{self, Action, ForeignOs, Remedy, Risk};

pub struct PrivilegedPort;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::PrivilegedPort,
    title: "Not allowed to bind the port",
    what_it_detects: "A rootless engine asked for a port below net.ipv4.ip_unprivileged_port_start \
        (1024 by default), or the daemon reported a permission error (`cannot expose privileged \
        port`, a Windows excluded port range).",
    why_it_happens: "Ports below the unprivileged start need CAP_NET_BIND_SERVICE in the host's \
        namespace; a rootless engine does not have it. On Windows and WSL, Hyper-V and WinNAT reserve \
        ranges of ports that no program may bind.",
    example: "docker run -p 80:80 nginx   # rootless engine\n\
        # docker: Error response from daemon: ... cannot expose privileged port 80, you can add 'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf ...",
    fix: "Publish on a port at or above 1024 (`-p 8080:80`), or lower the unprivileged start with \
        sysctl, or give rootlesskit CAP_NET_BIND_SERVICE.",
};

impl Rule for PrivilegedPort {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let start = cx.evidence.host.as_ref().and_then(|h| h.unprivileged_port_start).unwrap_or(1024);
        let denied = cx.error_stage() == Some(Stage::AccessDenied);
        let rootless_low = cx.rootless() && q.port < start;
        if !denied && !rootless_low {
            return Vec::new();
        }
        // Windows refuses ports of its own (reserved ranges, PW013): a permission rule only
        // explains it for a rootless engine or a port below the unprivileged start.
        let windows = cx.error.is_some_and(|e| e.platform == Some(crate::parse::error::Platform::Windows));
        if windows && !cx.rootless() && q.port >= start {
            return Vec::new();
        }
        let mut evidence = Vec::new();
        if rootless_low {
            evidence.push(EvidenceItem::new(
                "host",
                format!("port {} is below net.ipv4.ip_unprivileged_port_start = {start}, and the engine is rootless", q.port),
            ));
        }
        evidence.extend(cx.error_evidence());
        let wsl = cx.evidence.host.as_ref().is_some_and(|h| h.wsl);
        let mut remedies = vec![remedy::other_port(q)];
        if rootless_low || cx.rootless() {
            remedies.push(Remedy::fix(
                // Nothing stops, but a host-wide protection goes: any user may now take these ports.
                Risk::Disruptive,
                Action::AllowUnprivilegedPorts { from: q.port },
                format!(
                    "lets every unprivileged program bind ports from {} up, not only the engine: any local user can then take a port below {start} that a system service expects",
                    q.port
                ),
            ));
        } else if wsl || !rootless_low {
            remedies.push(Remedy::check(
                Action::Foreign {
                    os: ForeignOs::Windows,
                    line: format!("netsh interface ipv4 show excludedportrange protocol={}", q.proto),
                },
                "on Windows: lists the reserved ranges; pick a port outside them",
            ));
        }
        vec![Finding {
            code: DOC.code,
            cause: DOC.code.name().into(),
            summary: if rootless_low {
                format!("a rootless engine may not bind port {} (below {start})", q.port)
            } else {
                format!("the engine was not allowed to bind port {}", q.port)
            },
            evidence,
            confidence: Confidence::High,
            remedies,
        }]
    }
}
