//! PW009 rootless-regression: a rootless engine version with a known port-driver regression.

use super::{Context, Rule, RuleDoc};
use crate::diagnosis::{Confidence, EvidenceItem, Finding, Remedy, Risk};
use crate::parse::error::Stage;
use crate::remedy;

pub struct RootlessRegression;

pub static DOC: RuleDoc = RuleDoc {
    code: "PW009",
    cause: "rootless-regression",
    title: "Known rootless port-driver regression",
    what_it_detects: "A rootless engine whose version has a known bug that makes publishing fail with \
        `address already in use` although nothing holds the port.",
    why_it_happens: "Rootless engines publish through rootlesskit's port driver. Some releases broke it: \
        29.0.0 to 29.1.1 with the slirp4netns driver fail every publish (moby#51591, fixed in 29.1.2; \
        seed 1, 000_6f5509e30c1bb32c.txt, gives the range as 29.0.0 to 29.0.2); 28.0.0 \
        (moby#49499, fixed in 28.0.1); 20.10.6 with its bundled rootlesskit (rootlesskit#250).",
    example: "dockerd-rootless.sh with DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns, Engine 29.0.1\n\
        docker run -p 8080:80 nginx   # fails; ss shows nothing on 8080",
    fix: "Upgrade the engine past the fixed release, or switch the port driver \
        (DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin) and restart the rootless daemon.",
};

type Version = (u32, u32, u32);

/// (first affected, last affected, reference, fixed in).
const REGRESSIONS: &[(Version, Version, &str, &str)] = &[
    ((20, 10, 6), (20, 10, 6), "rootlesskit#250", "20.10.7"),
    ((28, 0, 0), (28, 0, 0), "moby#49499", "28.0.1"),
    ((29, 0, 0), (29, 1, 1), "moby#51591", "29.1.2"),
];

/// `28.5.2`, `20.10.24+dfsg1`, `29.0.0-rc.1` → (major, minor, patch).
pub fn parse_version(v: &str) -> Option<Version> {
    let core = v.trim().trim_start_matches('v').split(['+', '-', '~']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next().flatten().unwrap_or(0), parts.next().flatten().unwrap_or(0)))
}

impl Rule for RootlessRegression {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let Some(docker) = cx.evidence.docker.as_ref().filter(|d| d.rootless) else { return Vec::new() };
        let Some(v) = parse_version(&docker.version) else { return Vec::new() };
        let Some((_, _, reference, fixed)) = REGRESSIONS.iter().find(|(lo, hi, _, _)| *lo <= v && v <= *hi)
        else {
            return Vec::new();
        };
        let holder_seen = cx.blocking_listeners().next().is_some();
        let bind_error = cx.error_stage() == Some(Stage::HostBind);
        let mut evidence = vec![EvidenceItem::new(
            "docker",
            format!("rootless Engine {} is affected by {reference} (fixed in {fixed})", docker.version),
        )];
        evidence.push(EvidenceItem::new(
            "sockets",
            if holder_seen {
                "a socket does hold the port: the regression may not be the cause".to_owned()
            } else {
                "no socket holds the port, in the host namespace or in rootlesskit's".to_owned()
            },
        ));
        evidence.extend(cx.error_evidence());
        vec![Finding {
            code: DOC.code.into(),
            cause: DOC.cause.into(),
            summary: format!("rootless Engine {} has a known port-driver regression ({reference}, fixed in {fixed})", docker.version),
            evidence,
            confidence: match (bind_error, holder_seen) {
                (true, false) => Confidence::High,
                (_, false) => Confidence::Medium,
                _ => Confidence::Low,
            },
            remedies: vec![
                remedy::other_port(q),
                Remedy::new(
                    Risk::Disruptive,
                    "mkdir -p ~/.config/systemd/user/docker.service.d && printf '[Service]\\nEnvironment=DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin\\n' > ~/.config/systemd/user/docker.service.d/port-driver.conf && systemctl --user daemon-reload && systemctl --user restart docker".to_owned(),
                    "switches the rootless engine to rootlesskit's builtin port driver; rootless containers restart".to_owned(),
                ),
                Remedy::new(Risk::Disruptive, format!("upgrade Docker Engine to {fixed} or later"), "installs the fixed release; the daemon restarts".to_owned()),
            ],
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions() {
        assert_eq!(parse_version("20.10.24+dfsg1"), Some((20, 10, 24)));
        assert_eq!(parse_version("28.5.2"), Some((28, 5, 2)));
        assert_eq!(parse_version("29.0.0-rc.1"), Some((29, 0, 0)));
        assert_eq!(parse_version("garbage"), None);
    }
}
