//! Docker Engine versions: one type to parse, order and compare them, and the ranges of releases
//! that an error wording or a known bug belongs to.
//!
//! Engine versions are not semantic versions: `19.03.15` has a leading zero, Debian appends
//! `+dfsg1` or `~deb11u1`, a tag reads `v29.1.1`, and a bound is often a whole series (`28` for
//! every 28.x). The semver crate rejects several of these, so the parsing here is our own; the
//! order of pre-releases follows semver's rules (`29.0.0-rc.1` < `29.0.0-rc.2` < `29.0.0`).
//!
//! A version written with fewer than three numbers is a series when it bounds a range from above
//! (`max: 28` is the last 28.x) and its first release when it bounds it from below (`min: 28` is
//! 28.0.0). A pre-release of a release counts as that release in a range: `29.0.0-rc.1` prints
//! 29.0.0's wordings and carries its bugs.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One Engine version or series: `28.5.2`, `20.10.24+dfsg1`, `29.0.0-rc.1`, `v29.1.1`, `28`.
#[derive(Debug, Clone)]
pub struct EngineVersion {
    major: u32,
    minor: u32,
    patch: u32,
    /// How many numbers were written (1 to 3): `28` is 1, `20.10` is 2.
    parts: u8,
    /// The pre-release identifiers after `-`, without the dash (`rc.1`); empty for a release.
    pre: String,
    /// Whatever follows the pre-release, with its leading `+` or `~` (`+dfsg1`); ignored by ranges.
    suffix: String,
    /// The numbers as written, so `19.03.15` prints with its zero.
    written: String,
}

/// Why a text is not an Engine version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is not a Docker Engine version: expected numbers like 28.5.2, 20.10.24+dfsg1 or 29.0.0-rc.1"
)]
pub struct VersionError {
    pub text: String,
}

impl FromStr for EngineVersion {
    type Err = VersionError;

    /// Lenient the way Engine version strings need: the first number is required; a second or
    /// third part that is not a number reads as 0 (`28.x` is 28.0.0), and parts past the third
    /// are ignored, so every string the rules' version check accepted parses to the same release.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || VersionError { text: s.to_owned() };
        let t = s.trim().trim_start_matches('v');
        let core_end = t.find(['+', '-', '~']).unwrap_or(t.len());
        let (core, tail) = t.split_at(core_end);
        let mut nums = core.split('.');
        let major: u32 = nums.next().and_then(|p| p.parse().ok()).ok_or_else(fail)?;
        let rest: Vec<&str> = nums.take(2).collect();
        let num = |i: usize| rest.get(i).and_then(|p| p.parse::<u32>().ok()).unwrap_or(0);
        let parts = 1 + rest.len() as u8;
        let (pre, suffix) = match tail.strip_prefix('-') {
            Some(after) => {
                let end = after.find(['+', '~']).unwrap_or(after.len());
                (after[..end].to_owned(), after[end..].to_owned())
            }
            None => (String::new(), tail.to_owned()),
        };
        let written = core.split('.').take(3).collect::<Vec<_>>().join(".");
        Ok(Self { major, minor: num(0), patch: num(1), parts, pre, suffix, written })
    }
}

impl EngineVersion {
    /// Parse a version; see `FromStr` for what is accepted.
    pub fn parse(s: &str) -> Result<Self, VersionError> {
        s.parse()
    }

    /// (major, minor, patch), missing parts as 0: what ranges and known-bug tables compare.
    pub fn release(&self) -> (u32, u32, u32) {
        (self.major, self.minor, self.patch)
    }

    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    /// Whether this version lies in `series`: the numbers the series writes are equal
    /// (`28.5.2` is in `28` and `28.5`, not in `28.50`; `20.10.24+dfsg1` is in `20.10.24`).
    pub fn in_series(&self, series: &EngineVersion) -> bool {
        self.head(series.parts) == series.head(series.parts)
    }

    /// Whether an engine that reports this version is the one a catalogue entry names: in its
    /// series, and with its pre-release and suffix when the entry writes them
    /// (`20.10.24+dfsg1` is `20.10.24`; `29.0.0` is not `29.0.0-rc.1`).
    pub fn is_release_of(&self, wanted: &EngineVersion) -> bool {
        self.in_series(wanted)
            && (wanted.pre.is_empty() || wanted.pre == self.pre)
            && (wanted.suffix.is_empty() || wanted.suffix == self.suffix)
    }

    /// The first `n` numbers, missing ones as 0.
    fn head(&self, n: u8) -> Vec<u32> {
        [self.major, self.minor, self.patch].into_iter().take(usize::from(n)).collect()
    }

    /// Compare as the lower bound of a range would: releases only, missing parts as 0.
    fn cmp_release(&self, other: &Self) -> Ordering {
        self.release().cmp(&other.release())
    }

    /// Compare this release with a series: only the series' own numbers count
    /// (`28.5.2` is within `28`, so neither above nor below it).
    fn cmp_series(&self, series: &Self) -> Ordering {
        self.head(series.parts).cmp(&series.head(series.parts))
    }

    /// Order two upper bounds: a shorter series that prefixes a longer one is the larger bound
    /// (`28` ends after `28.0.1`).
    fn cmp_upper(&self, other: &Self) -> Ordering {
        let n = self.parts.min(other.parts);
        self.head(n).cmp(&other.head(n)).then(self.parts.cmp(&other.parts).reverse())
    }
}

/// Semver's pre-release order: a release sorts after its pre-releases; identifiers compare
/// numerically when both are numbers, numbers before words, and a longer list after its prefix.
fn cmp_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut x = a.split('.');
    let mut y = b.split('.');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let o = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => p.cmp(q),
                };
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
}

impl Ord for EngineVersion {
    /// Release, then pre-release (semver's order), then the suffix and the number of parts written,
    /// so the order is total: `28` < `28.0.0` only because it writes less.
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_release(other)
            .then_with(|| cmp_pre(&self.pre, &other.pre))
            .then_with(|| self.suffix.cmp(&other.suffix))
            .then_with(|| self.parts.cmp(&other.parts))
    }
}

impl PartialOrd for EngineVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for EngineVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for EngineVersion {}

impl fmt::Display for EngineVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        f.write_str(&self.suffix)
    }
}

impl Serialize for EngineVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EngineVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Engine versions that share a wording or a bug (inclusive bounds; `None` = open).
///
/// A bound names a release (`28.0.1`) or a whole series (`28` is every 28.x, `20.10.1` is that one
/// release): `min: 28.0.1, max: 28` reads "28.0.1 up to the last 28.x".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineRange {
    pub min: Option<EngineVersion>,
    pub max: Option<EngineVersion>,
}

impl EngineRange {
    /// A range from bounds written as text.
    ///
    /// # Panics
    /// When a bound is not a version: bounds are written in the source, so that is a bug.
    pub fn new(min: Option<&str>, max: Option<&str>) -> Self {
        let bound =
            |s: &str| EngineVersion::parse(s).unwrap_or_else(|e| panic!("built-in version bound: {e}"));
        Self { min: min.map(bound), max: max.map(bound) }
    }

    /// Every version.
    pub fn any() -> Self {
        Self::default()
    }

    pub fn is_open(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    /// Whether a version lies in the range (a pre-release counts as its release).
    pub fn contains(&self, v: &EngineVersion) -> bool {
        let above_min = self.min.as_ref().is_none_or(|m| v.cmp_release(m).is_ge());
        let below_max = self.max.as_ref().is_none_or(|m| v.cmp_series(m).is_le());
        above_min && below_max
    }

    /// The same for a version as an engine reports it. One that does not parse cannot be ruled
    /// out, so it is admitted.
    pub fn admits(&self, reported: &str) -> bool {
        EngineVersion::parse(reported).ok().is_none_or(|v| self.contains(&v))
    }

    /// The versions both ranges allow; `None` when they have none in common.
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        let min = match (&self.min, &other.min) {
            (Some(a), Some(b)) => Some(if a.cmp_release(b).is_ge() { a } else { b }.clone()),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        let max = match (&self.max, &other.max) {
            (Some(a), Some(b)) => Some(if a.cmp_upper(b).is_le() { a } else { b }.clone()),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        if let (Some(lo), Some(hi)) = (&min, &max) {
            if lo.cmp_series(hi).is_gt() {
                return None;
            }
        }
        Some(Self { min, max })
    }
}

impl fmt::Display for EngineRange {
    /// `28.0.1–28.x`, `…–20.10.1`, `29.0.0–…`; a bare major is a whole release line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = |b: &Option<EngineVersion>| match b {
            None => "…".to_owned(),
            Some(v) if v.parts == 1 && v.pre.is_empty() => format!("{v}.x"),
            Some(v) => v.to_string(),
        };
        write!(f, "{}–{}", bound(&self.min), bound(&self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn v(s: &str) -> EngineVersion {
        EngineVersion::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[rstest]
    #[case("28.5.2", (28, 5, 2), false, "28.5.2")]
    #[case("20.10.24+dfsg1", (20, 10, 24), false, "20.10.24+dfsg1")]
    #[case("29.0.0-rc.1", (29, 0, 0), true, "29.0.0-rc.1")]
    #[case("v29.1.1", (29, 1, 1), false, "29.1.1")]
    #[case("19.03.15", (19, 3, 15), false, "19.03.15")]
    #[case("28", (28, 0, 0), false, "28")]
    #[case("20.10", (20, 10, 0), false, "20.10")]
    #[case("20.10.5+dfsg1~deb11u1", (20, 10, 5), false, "20.10.5+dfsg1~deb11u1")]
    #[case(" 24.0.7\n", (24, 0, 7), false, "24.0.7")]
    fn parses(#[case] s: &str, #[case] release: (u32, u32, u32), #[case] pre: bool, #[case] shown: &str) {
        let got = v(s);
        assert_eq!(got.release(), release, "{s}");
        assert_eq!(got.is_prerelease(), pre, "{s}");
        assert_eq!(got.to_string(), shown, "{s}");
    }

    /// The releases the rules' former rootless version check gave for these strings (checked
    /// against it on 800,000 generated strings before it was replaced), and the strings it refused.
    #[rstest]
    #[case("20.10.24+dfsg1", Some((20, 10, 24)))]
    #[case("28.5.2", Some((28, 5, 2)))]
    #[case("29.0.0-rc.1", Some((29, 0, 0)))]
    #[case("garbage", None)]
    #[case("v29.1.1", Some((29, 1, 1)))]
    #[case("28", Some((28, 0, 0)))]
    #[case("28.x.1", Some((28, 0, 1)))]
    #[case("28.5.2.1", Some((28, 5, 2)))]
    #[case("29.1~beta", Some((29, 1, 0)))]
    #[case("", None)]
    #[case("-28.5.2", None)]
    #[case("dev", None)]
    fn release_matches_the_rootless_check(#[case] s: &str, #[case] want: Option<(u32, u32, u32)>) {
        assert_eq!(EngineVersion::parse(s).ok().map(|v| v.release()), want, "{s:?}");
    }

    #[test]
    fn bad_versions_name_the_text() {
        let e = EngineVersion::parse("latest").unwrap_err();
        assert!(e.to_string().contains("\"latest\" is not a Docker Engine version"), "{e}");
    }

    #[test]
    fn order_is_total_and_follows_semver_for_prereleases() {
        let mut list: Vec<EngineVersion> = [
            "29.0.0",
            "29.0.0-rc.10",
            "20.10.24+dfsg1",
            "29.0.0-rc.2",
            "28.5.2",
            "19.03.15",
            "29.0.0-beta.1",
        ]
        .iter()
        .map(|s| v(s))
        .collect();
        list.sort();
        let shown: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "19.03.15",
                "20.10.24+dfsg1",
                "28.5.2",
                "29.0.0-beta.1",
                "29.0.0-rc.2",
                "29.0.0-rc.10",
                "29.0.0"
            ]
        );
        assert!(v("29.0.0-rc.1") < v("29.0.0-rc.1.1"));
        assert!(v("1.0.0-1") < v("1.0.0-alpha"));
        assert_eq!(v("19.03.15"), v("19.3.15"));
        assert_ne!(v("28"), v("28.0.0"));
    }

    #[rstest]
    #[case("28.5.2", "28", true)]
    #[case("28.5.2", "28.5", true)]
    #[case("28.5.2", "28.50", false)]
    #[case("28.5.2", "2", false)]
    #[case("20.10.24+dfsg1", "20.10.24", true)]
    #[case("20.10.24+dfsg1", "20.1", false)]
    #[case("20.10.245", "20.10.24", false)]
    #[case("29.0.0-rc.1", "29.0.0", true)]
    fn in_series(#[case] version: &str, #[case] line: &str, #[case] inside: bool) {
        assert_eq!(v(version).in_series(&v(line)), inside, "{version} in {line}");
    }

    #[test]
    fn a_catalogue_entry_that_writes_a_prerelease_or_suffix_needs_it() {
        assert!(v("20.10.24+dfsg1").is_release_of(&v("20.10.24")));
        assert!(v("20.10.24+dfsg1").is_release_of(&v("20.10.24+dfsg1")));
        assert!(!v("20.10.24+dfsg2").is_release_of(&v("20.10.24+dfsg1")));
        assert!(!v("29.0.0").is_release_of(&v("29.0.0-rc.1")));
        assert!(!v("26.1.5").is_release_of(&v("20.10.24")));
    }

    #[test]
    fn serde_is_a_string() {
        let json = serde_json::to_string(&EngineRange::new(Some("28.0.1"), Some("28"))).unwrap();
        assert_eq!(json, r#"{"min":"28.0.1","max":"28"}"#);
        let back: EngineRange = serde_json::from_str(&json).unwrap();
        assert_eq!(back, EngineRange::new(Some("28.0.1"), Some("28")));
        let bad = serde_json::from_str::<EngineVersion>(r#""latest""#).unwrap_err();
        assert!(bad.to_string().contains("not a Docker Engine version"), "{bad}");
    }

    #[rstest]
    #[case("20.10.24+dfsg1", true)]
    #[case("20.10.2", true)]
    #[case("26.1.5", true)]
    #[case("20.10.1", false)]
    #[case("27.0.0", false)]
    #[case("v21.0.0", true)]
    #[case("not-a-version", true)]
    fn range_contains(#[case] version: &str, #[case] inside: bool) {
        let r = EngineRange::new(Some("20.10.2"), Some("26"));
        assert_eq!(r.admits(version), inside, "{version}");
    }

    #[test]
    fn series_and_release_bounds() {
        assert!(EngineRange::new(Some("28.0.1"), Some("28")).contains(&v("28.5.2")));
        assert!(!EngineRange::new(Some("28.0.1"), Some("28")).contains(&v("28.0.0")));
        assert!(EngineRange::new(None, Some("20.10.1")).contains(&v("19.03.15")));
        assert!(!EngineRange::new(None, Some("20.10.1")).contains(&v("20.10.2")));
        assert!(EngineRange::default().contains(&v("1.13.1")));
        // A pre-release prints its release's wording.
        assert!(EngineRange::new(Some("29.0.0"), None).contains(&v("29.0.0-rc.1")));
    }

    #[test]
    fn intersection_keeps_the_tightest_bounds_and_drops_contradictions() {
        let a = EngineRange::new(Some("28.0.0"), Some("28"));
        let b = EngineRange::new(Some("28.0.1"), None);
        assert_eq!(a.intersect(&b), Some(EngineRange::new(Some("28.0.1"), Some("28"))));
        let c = EngineRange::new(None, Some("26"));
        assert_eq!(a.intersect(&c), None);
        assert_eq!(
            EngineRange::new(None, Some("26")).intersect(&EngineRange::new(None, Some("20.10.1"))),
            Some(EngineRange::new(None, Some("20.10.1")))
        );
        assert_eq!(
            EngineRange::new(None, Some("28")).intersect(&EngineRange::new(None, Some("28.0.1"))),
            Some(EngineRange::new(None, Some("28.0.1")))
        );
    }

    #[test]
    fn ranges_print_series_as_release_lines() {
        assert_eq!(EngineRange::new(Some("28.0.1"), Some("28")).to_string(), "28.0.1–28.x");
        assert_eq!(EngineRange::new(None, Some("20.10.1")).to_string(), "…–20.10.1");
        assert_eq!(EngineRange::new(Some("29.0.0"), None).to_string(), "29.0.0–…");
    }
}
