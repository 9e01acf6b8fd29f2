//! The lint rules: one file each, a documented rule with a stable code and a pure check over the
//! merged model.

mod duplicate_host_port;
mod duplicate_in_service;
mod host_network_ports;
mod overlapping_address;
mod overlapping_range;
mod privileged_port;
mod scaled_fixed_port;
mod unresolved_variable;

use super::finding::LintFinding;
use super::model::Model;
use super::rule::{LintRule, LintRuleDoc};

/// Every lint rule, in code order.
pub(crate) fn all() -> &'static [&'static dyn LintRule] {
    &[
        &duplicate_host_port::DuplicateHostPort,
        &overlapping_address::OverlappingAddress,
        &overlapping_range::OverlappingRange,
        &duplicate_in_service::DuplicateInService,
        &unresolved_variable::UnresolvedVariable,
        &scaled_fixed_port::ScaledFixedPort,
        &privileged_port::PrivilegedPort,
        &host_network_ports::HostNetworkPorts,
    ]
}

/// Every rule's findings, rule by rule.
pub(crate) fn check(model: &Model) -> Vec<LintFinding> {
    all().iter().flat_map(|r| r.check(model)).collect()
}

/// Every lint rule's documentation, in code order.
pub fn rule_docs() -> Vec<&'static LintRuleDoc> {
    all().iter().map(|r| r.doc()).collect()
}

/// A rule by code (`PWL001`, any case) or name (`duplicate-host-port`).
pub fn find_rule(code: &str) -> Option<&'static LintRuleDoc> {
    all().iter().map(|r| r.doc()).find(|d| d.code.eq_ignore_ascii_case(code) || d.name == code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lint::collision::{collisions, declared_groups};
    use crate::lint::merge::ComposeSource;

    /// PWL001–PWL004 split the colliding pairs between them: each pair is reported exactly once.
    #[test]
    fn each_colliding_pair_has_one_rule() {
        let text = "services:\n  a:\n    ports: [\"8080:80\", \"8080:81\", \"9000-9001:90\"]\n  \
                    b:\n    ports: [\"8080:80\", \"127.0.0.1:8080:80\", \"9000:90\", \"7000-7002:70-72\"]\n  \
                    c:\n    ports: [\"7001:70\"]\n";
        let sources = [ComposeSource { name: "c.yaml".into(), text: text.into() }];
        let model = Model::merge(&sources, &|_: &str| None).expect("merges");
        let groups = declared_groups(&model);
        let pairs = collisions(&groups).len();
        let pair_findings: usize = all()[..4].iter().map(|r| r.check(&model).len()).sum();
        // a: 8080 twice; a and b on 8080 four ways; b on 8080 and 127.0.0.1:8080; 9000; 7001.
        assert_eq!(pairs, 8);
        assert_eq!(pair_findings, pairs);
    }
}
