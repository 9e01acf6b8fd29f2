//! PW009 rootless-regression: a rootless engine version with a known port-driver regression.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::parse::error::Stage;
use crate::remedy::{self, Action, Remedy, Risk};

pub struct RootlessRegression;

pub static DOC: RuleDoc = RuleDoc {
    code: CauseCode::RootlessRegression,
    title: "Known rootless port-driver regression",
    what_it_detects: "A rootless engine whose version has a known bug that makes publishing fail with \
        `address already in use` although nothing holds the port.",
    why_it_happens: "Rootless engines publish through rootlesskit's port driver. Some releases broke it: \
        29.0.0 to 29.1.1 with the slirp4netns driver fail every publish (moby#51591, fixed in 29.1.2; \
        the guide \"Docker port binding: address already in use\" gives the range as 29.0.0 to 29.0.2); 28.0.0 \
        (moby#49499, fixed in 28.0.1); 20.10.6 with its bundled rootlesskit (rootlesskit#250).",
    example: "dockerd-rootless.sh with DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=slirp4netns, Engine 29.0.1\n\
        docker run -p 8080:80 nginx   # fails; ss shows nothing on 8080",
    fix: "Upgrade the engine past the fixed release, or switch the port driver \
        (DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin) and restart the rootless daemon.",
};

type Version = (u32, u32, u32);

/// A known regression: the releases it affects and what still works there.
struct Regression {
    first: Version,
    last: Version,
    reference: &'static str,
    fixed: &'static str,
    /// Publishing on 127.0.0.1 still works (the bug is in the wildcard path).
    loopback_works: bool,
}

const REGRESSIONS: &[Regression] = &[
    Regression {
        first: (20, 10, 6),
        last: (20, 10, 6),
        reference: "rootlesskit#250",
        fixed: "20.10.7",
        loopback_works: false,
    },
    Regression {
        first: (28, 0, 0),
        last: (28, 0, 0),
        reference: "moby#49499",
        fixed: "28.0.1",
        loopback_works: false,
    },
    // Measured on 29.1.1 with the slirp4netns port driver: -p 127.0.0.1:P:80 works.
    Regression {
        first: (29, 0, 0),
        last: (29, 1, 1),
        reference: "moby#51591",
        fixed: "29.1.2",
        loopback_works: true,
    },
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
        let Some(Regression { reference, fixed, loopback_works, .. }) =
            REGRESSIONS.iter().find(|r| r.first <= v && v <= r.last)
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
            code: DOC.code,
            cause: DOC.code.name().into(),
            summary: format!("rootless Engine {} has a known port-driver regression ({reference}, fixed in {fixed})", docker.version),
            evidence,
            confidence: match (bind_error, holder_seen) {
                (true, false) => Confidence::High,
                (_, false) => Confidence::Medium,
                _ => Confidence::Low,
            },
            remedies: vec![
                Remedy::fix(
                    Risk::Disruptive,
                    Action::SetRootlessPortDriver { driver: "builtin".into() },
                    format!(
                        "switches the rootless engine to rootlesskit's builtin port driver, which does not have the bug; the rootless daemon restarts, and {}",
                        remedy::live_restore_note(cx.live_restore())
                    ),
                ),
                Remedy::fix(
                    Risk::Disruptive,
                    Action::UpgradeEngine { to: (*fixed).to_owned() },
                    format!(
                        "installs a release with the fix; the daemon restarts, and {}",
                        remedy::live_restore_note(cx.live_restore())
                    ),
                ),
            ]
            .into_iter()
            .chain(loopback_works.then(|| {
                remedy::bind_address(
                    q,
                    std::net::IpAddr::from([127, 0, 0, 1]),
                    "publishes on loopback only, which the regression does not affect: other hosts cannot reach the container",
                )
            }))
            .collect(),
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
