//! PW013 platform: WSL and Docker Desktop, where the port lives in a VM or on Windows.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::parse::error::{Platform as Os, Reporter, Stage};
use crate::remedy::{self, Action, ForeignOs, Remedy, Risk};

pub struct Platform;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::Platform,
    title: "WSL or Docker Desktop: the holder may be outside this Linux",
    what_it_detects: "A WSL kernel, a Docker Desktop engine, or Docker Desktop's `Ports are not \
        available` wording. The holder can then be a Windows or macOS process that no Linux tool sees.",
    why_it_happens: "Docker Desktop publishes ports on the host OS through its own forwarder; WSL2 \
        forwards localhost ports to Windows. A Windows service, or a Hyper-V/WinNAT excluded port \
        range, can hold the port while `ss` inside Linux shows nothing.",
    example: "docker run -p 8080:80 nginx\n# Ports are not available: exposing port TCP 0.0.0.0:8080 -> 0.0.0.0:0: listen tcp 0.0.0.0:8080: bind: An attempt was made to access a socket ...",
    fix: "Look on the host OS: `netstat -ano | findstr :8080` and `netsh interface ipv4 show \
        excludedportrange protocol=tcp` on Windows, `lsof -iTCP:8080 -sTCP:LISTEN` on macOS.",
};

impl Rule for Platform {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let wsl = cx.evidence.host.as_ref().is_some_and(|h| h.wsl);
        let desktop_engine =
            cx.evidence.docker.as_ref().is_some_and(|d| d.operating_system.contains("Docker Desktop"));
        let desktop_text = cx.error.is_some_and(|e| e.reporter == Some(Reporter::DockerDesktop));
        let windows_text = cx.error.is_some_and(|e| e.platform == Some(Os::Windows));
        if windows_text {
            return vec![windows(cx)];
        }
        if !wsl && !desktop_engine && !desktop_text {
            return Vec::new();
        }
        let mut evidence = Vec::new();
        if wsl {
            let kernel = cx.evidence.host.as_ref().map(|h| h.kernel.as_str()).unwrap_or("");
            evidence.push(EvidenceItem::new("host", format!("WSL kernel {kernel}")));
        }
        if desktop_engine {
            evidence.push(EvidenceItem::new("docker", "the engine is Docker Desktop's (a VM)".to_owned()));
        }
        evidence.extend(cx.error_evidence());
        let nothing_local = cx.blocking_listeners().next().is_none();
        vec![Finding {
            code: DOC.code,
            cause: DOC.code.name().into(),
            summary: if nothing_local {
                format!("nothing in this Linux holds port {}: on WSL/Docker Desktop the holder is likely on the host OS", q.port)
            } else {
                "WSL/Docker Desktop: the host OS can hold ports too".to_owned()
            },
            evidence,
            confidence: if nothing_local && (desktop_text || cx.error.is_some()) {
                Confidence::Medium
            } else {
                Confidence::Low
            },
            remedies: vec![
                remedy::other_port(q),
                Remedy::check(
                    Action::Foreign {
                        os: ForeignOs::Windows,
                        line: format!("netstat -ano | findstr :{}", q.port),
                    },
                    "in a Windows shell: names the Windows process holding the port",
                ),
                Remedy::check(
                    Action::Foreign {
                        os: ForeignOs::Windows,
                        line: format!("netsh interface ipv4 show excludedportrange protocol={}", q.proto),
                    },
                    "lists port ranges Windows reserves (Hyper-V, WinNAT)",
                ),
            ],
        }]
    }
}

/// Windows' own socket error: the holder or the reservation is on Windows, which no Linux tool sees.
fn windows(cx: &Context<'_>) -> Finding {
    let q = cx.query();
    let reserved = cx.error_stage() == Some(Stage::AccessDenied);
    let win = |line: String| Action::Foreign { os: ForeignOs::Windows, line };
    let mut remedies = vec![
        Remedy::check(
            win(format!("netsh interface ipv4 show excludedportrange protocol={}", q.proto)),
            "lists the port ranges Windows reserves (Hyper-V, WinNAT, WSL): no program may bind a port inside one",
        ),
        Remedy::fix(
            Risk::Disruptive,
            win("net stop winnat && net start winnat".to_owned()),
            "in an elevated prompt: restarts Windows NAT, which gives back the ranges it reserved at boot; \
             WSL and container networking drop for a moment",
        ),
        Remedy::check(
            win(format!("netstat -ano | findstr :{}", q.port)),
            "names the PID of the Windows process listening on the port (last column)",
        ),
        Remedy::check(
            win("tasklist /FI \"PID eq N\"".to_owned()),
            "with N the PID netstat printed: names the program, often a Windows service (IIS, SQL Server, a VPN client)",
        ),
        remedy::other_port(q),
    ];
    if !reserved {
        // A held port: who holds it comes first; the reservation is the rarer reason.
        remedies.rotate_left(2);
    }
    Finding {
        code: DOC.code,
        cause: DOC.code.name().into(),
        summary: if reserved {
            format!(
                "Windows refuses port {}: it lies in a range Windows reserves, or a policy forbids it",
                q.port
            )
        } else {
            format!("a Windows program holds port {}: Docker Desktop's forwarder cannot bind it", q.port)
        },
        evidence: cx
            .error_evidence()
            .into_iter()
            .chain([EvidenceItem::new(
                "error-text",
                "the wording is Winsock's: the refusal came from Windows, outside any Linux namespace"
                    .to_owned(),
            )])
            .collect(),
        confidence: Confidence::High,
        remedies,
    }
}
