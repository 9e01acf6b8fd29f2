//! PW009 rootless-regression: a rootless engine version with a known port-driver regression.

use super::{Context, Rule, RuleDoc};
use crate::cause::CauseCode;
use crate::diagnosis::{Confidence, EvidenceItem, Finding};
use crate::parse::error::{RootlessSign, RootlessSignKind, Stage};
use crate::remedy::{self, Action, Remedy, Risk};
use crate::version::{EngineRange, EngineVersion};

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
        (DOCKERD_ROOTLESS_ROOTLESSKIT_PORT_DRIVER=builtin) and restart the rootless daemon. \
        Without the engine's version (offline), the error text's rootless sign decides: the daemon \
        binding 10.0.2.100 with `address already in use` is the 29.0.0-29.1.1 slirp4netns bug; a \
        missing `rootlesskit-docker-proxy` is an engine up to 27.x whose binary went away, most often \
        an old daemon still running after an upgrade to 28 (moby#49519): restart it.",
};

/// A known regression: the releases it affects and what still works there.
struct Regression {
    first: (u32, u32, u32),
    last: (u32, u32, u32),
    reference: &'static str,
    fixed: &'static str,
    /// Publishing on 127.0.0.1 still works (the bug is in the wildcard path).
    loopback_works: bool,
    /// The only port driver with the bug; `None` when every driver has it.
    driver: Option<&'static str>,
}

const REGRESSIONS: &[Regression] = &[
    Regression {
        first: (20, 10, 6),
        last: (20, 10, 6),
        reference: "rootlesskit#250",
        fixed: "20.10.7",
        loopback_works: false,
        driver: None,
    },
    Regression {
        first: (28, 0, 0),
        last: (28, 0, 0),
        reference: "moby#49499",
        fixed: "28.0.1",
        loopback_works: false,
        driver: None,
    },
    // Measured on 29.1.1: with the slirp4netns port driver -p P:80 fails and -p 127.0.0.1:P:80
    // works; with the builtin driver both work.
    Regression {
        first: (29, 0, 0),
        last: (29, 1, 1),
        reference: "moby#51591",
        fixed: "29.1.2",
        loopback_works: true,
        driver: Some("slirp4netns"),
    },
];

impl Regression {
    fn range(&self) -> EngineRange {
        let v = |(a, b, c): (u32, u32, u32)| format!("{a}.{b}.{c}");
        EngineRange::new(Some(&v(self.first)), Some(&v(self.last)))
    }
}

impl Rule for RootlessRegression {
    fn doc(&self) -> &'static RuleDoc {
        &DOC
    }

    fn check(&self, cx: &Context<'_>) -> Vec<Finding> {
        let q = cx.query();
        let sign = cx.error.and_then(|e| e.rootless_sign.as_ref());
        let Some(docker) = cx.evidence.docker.as_ref().filter(|d| d.rootless) else {
            // No engine to ask (offline, or the API unreachable): the text's sign is all there is.
            return match (sign, &cx.evidence.docker) {
                (Some(sign), None) => from_sign(cx, sign).into_iter().collect(),
                _ => Vec::new(),
            };
        };
        let Ok(v) = EngineVersion::parse(&docker.version) else { return Vec::new() };
        let Some(Regression { reference, fixed, loopback_works, driver, .. }) =
            REGRESSIONS.iter().find(|r| r.range().contains(&v))
        else {
            return Vec::new();
        };
        let running = docker.rootless_port_driver.as_deref();
        if let (Some(bad), Some(running)) = (driver, running) {
            if *bad != running {
                // The bug lives in one driver; an engine on another one does not have it.
                return Vec::new();
            }
        }
        let holder_seen = cx.blocking_listeners().next().is_some();
        let bind_error = cx.error_stage() == Some(Stage::HostBind);
        let mut evidence = vec![EvidenceItem::new(
            "docker",
            format!("rootless Engine {} is affected by {reference} (fixed in {fixed})", docker.version),
        )];
        if let Some(bad) = driver {
            evidence.push(EvidenceItem::new(
                "rootlesskit",
                match running {
                    Some(r) => format!("rootlesskit runs with --port-driver={r}, the driver with the bug"),
                    None => format!("the port driver was not read; the bug is in the {bad} driver only"),
                },
            ));
        }
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

/// What a rootless sign in the error text says when the engine itself could not be asked.
fn from_sign(cx: &Context<'_>, sign: &RootlessSign) -> Option<Finding> {
    let q = cx.query();
    let mut evidence: Vec<EvidenceItem> = cx.error_evidence().into_iter().collect();
    let live_restore = remedy::live_restore_note(cx.live_restore());
    let (summary, confidence, remedies) = match sign.kind {
        RootlessSignKind::Slirp4netnsAddress if !sign.engine_versions.is_open() => {
            let r = REGRESSIONS.iter().find(|r| r.range() == sign.engine_versions)?;
            evidence.push(EvidenceItem::new(
                "error-text",
                format!(
                    "the daemon bound 10.0.2.100, the child address of rootlesskit's slirp4netns port driver, and the \
                     OS said it was in use: Engine {} binds it once per address family, so the second bind \
                     always fails ({}, fixed in {}). A host-network container listening on the port inside \
                     rootlesskit's namespace reads the same on any release.",
                    sign.engine_versions, r.reference, r.fixed
                ),
            ));
            (
                format!(
                    "the text is the rootless slirp4netns regression of Engine {} ({}, fixed in {})",
                    sign.engine_versions, r.reference, r.fixed
                ),
                Confidence::High,
                vec![
                    Remedy::fix(
                        Risk::Disruptive,
                        Action::SetRootlessPortDriver { driver: "builtin".into() },
                        format!("switches to rootlesskit's builtin port driver, which does not have the bug; the rootless daemon restarts, and {live_restore}"),
                    ),
                    Remedy::fix(
                        Risk::Disruptive,
                        Action::UpgradeEngine { to: r.fixed.to_owned() },
                        format!("installs a release with the fix; the daemon restarts, and {live_restore}"),
                    ),
                    remedy::bind_address(
                        q,
                        std::net::IpAddr::from([127, 0, 0, 1]),
                        "publishes on loopback only, which binds one family and so does not hit the bug: other hosts cannot reach the container",
                    ),
                ],
            )
        }
        RootlessSignKind::MissingRootlesskitDockerProxy => {
            evidence.push(EvidenceItem::new(
                "error-text",
                format!(
                    "the engine could not run rootlesskit-docker-proxy, which only Engine {} runs (28.0 talks to \
                     rootlesskit itself): the binary is gone, most often removed by an upgrade while the old \
                     daemon kept running (moby#49519), or moved after a manual install",
                    sign.engine_versions
                ),
            ));
            (
                "the rootless engine cannot start its port proxy: rootlesskit-docker-proxy is missing".to_owned(),
                Confidence::High,
                vec![Remedy::fix(
                    Risk::Disruptive,
                    Action::RestartDaemon { rootless: true },
                    format!(
                        "starts the installed engine: after an upgrade to 28 or later it no longer needs the binary; \
                         with an older engine reinstall the rootless extras of the same release first. {live_restore}"
                    ),
                )],
            )
        }
        // RootlessKit's port manager speaking says the engine is rootless; only a release in a
        // known regression makes it a suspect, and the text cannot say which release ran.
        _ => {
            let hits: Vec<&Regression> = REGRESSIONS
                .iter()
                .filter(|r| r.range().intersect(&sign.engine_versions).is_some() && !r.loopback_works)
                .collect();
            if hits.is_empty() {
                return None;
            }
            let refs: Vec<String> = hits
                .iter()
                .map(|r| format!("{} on {} (fixed in {})", r.reference, r.range(), r.fixed))
                .collect();
            evidence.push(EvidenceItem::new(
                "error-text",
                format!(
                    "a rootless engine; its wording fits releases with a port-driver bug: {}",
                    refs.join(", ")
                ),
            ));
            (
                "a rootless engine: if it is one of the releases with a port-driver bug, that is the cause"
                    .to_owned(),
                Confidence::Low,
                hits.iter()
                    .map(|r| {
                        Remedy::fix(
                            Risk::Disruptive,
                            Action::UpgradeEngine { to: r.fixed.to_owned() },
                            format!(
                                "installs a release with the fix; the daemon restarts, and {live_restore}"
                            ),
                        )
                    })
                    .collect(),
            )
        }
    };
    Some(Finding { code: DOC.code, cause: DOC.code.name().into(), summary, evidence, confidence, remedies })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regressions_cover_their_releases_and_prereleases() {
        let hit = |v: &str| {
            let v = EngineVersion::parse(v).expect("version");
            REGRESSIONS.iter().find(|r| r.range().contains(&v)).map(|r| r.reference)
        };
        assert_eq!(hit("29.0.0-rc.1"), Some("moby#51591"));
        assert_eq!(hit("29.1.1"), Some("moby#51591"));
        assert_eq!(hit("29.1.2"), None);
        assert_eq!(hit("28.0.0"), Some("moby#49499"));
        assert_eq!(hit("28.0.1"), None);
        assert_eq!(hit("20.10.6"), Some("rootlesskit#250"));
        assert_eq!(hit("20.10.24+dfsg1"), None);
    }
}
