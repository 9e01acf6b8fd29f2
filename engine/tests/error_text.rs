//! The daemon error-text classifier over recorded and composed fixtures.
//!
//! Fixtures live in `tests/fixtures/errors/<engine>-<case>.txt`. Their leading `#` lines are the
//! header: where the text came from (recorded on this project's host, recorded by a lab run, or
//! composed from moby's format strings or a public report), and `# expect:` lines saying what it
//! must classify as, written from that source rather than from the classifier's output. Everything
//! after the header is the text, byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use portwhy::parse::error::{classify, DaemonError, ErrorTextError};
use portwhy::version::EngineRange;
use rstest::rstest;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/errors")
}

/// A fixture split into its header lines and its text.
struct Fixture {
    name: String,
    header: Vec<String>,
    text: String,
}

fn load(path: &Path) -> Fixture {
    let raw =
        fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    let mut lines = raw.split_inclusive('\n').peekable();
    let mut header = Vec::new();
    while let Some(l) = lines.next_if(|l| l.starts_with('#')) {
        header.push(l.trim_end_matches(['\n', '\r']).to_owned());
    }
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
    Fixture { name, header, text: lines.collect() }
}

fn fixture(name: &str) -> String {
    load(&fixture_dir().join(format!("{name}.txt"))).text
}

fn all_fixtures() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(fixture_dir())
        .expect("tests/fixtures/errors exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    out.sort();
    out
}

impl Fixture {
    /// The `key=value` pairs of every `# expect:` line.
    fn expectations(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for line in &self.header {
            let Some(rest) = line.strip_prefix("# expect:") else { continue };
            for pair in rest.split_whitespace() {
                let (k, v) = pair
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: `{pair}` in an expect line is not key=value", self.name));
                assert!(
                    out.insert(k.to_owned(), v.to_owned()).is_none(),
                    "{}: `{k}` is expected twice",
                    self.name
                );
            }
        }
        out
    }

    /// The `# <key>: value` header line, if any.
    fn line(&self, key: &str) -> Option<&str> {
        self.header.iter().find_map(|l| l.strip_prefix(&format!("# {key}: ")))
    }

    fn provenance(&self) -> Provenance {
        let first = self.header.first().map(String::as_str).unwrap_or_default();
        if first.starts_with("# Recorded on this project's host: ") {
            Provenance::Host
        } else if first.starts_with("# recorded: ") {
            Provenance::Lab
        } else if first.starts_with("# Composed, not recorded: ") {
            Provenance::Composed
        } else {
            panic!(
                "{}: the header must open with where the text came from (`# Recorded on this project's host: `, \
                 `# recorded: <scenario>/<engine>/<backend> in the lab run <id>` or `# Composed, not recorded: `)",
                self.name
            )
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Provenance {
    Host,
    Lab,
    Composed,
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// A serde enum's kebab name, `-` for none.
fn name_of<T: serde::Serialize>(v: Option<T>) -> String {
    match v {
        None => "-".to_owned(),
        Some(v) => {
            serde_json::to_value(v).ok().and_then(|j| j.as_str().map(str::to_owned)).unwrap_or_default()
        }
    }
}

/// `28.0.1..28`, `..26`, `29.0.0..`, `..`.
fn range_of(r: &EngineRange) -> String {
    let b =
        |v: &Option<portwhy::version::EngineVersion>| v.as_ref().map(ToString::to_string).unwrap_or_default();
    format!("{}..{}", b(&r.min), b(&r.max))
}

/// The classification in the notation of the expect lines.
fn observed(got: &DaemonError) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    m.insert("stage", got.stage.as_str().to_owned());
    m.insert("host_ip", got.host_ip.clone().unwrap_or_else(|| "-".to_owned()));
    m.insert("host_port", got.host_port.map_or_else(|| "-".to_owned(), |p| p.to_string()));
    m.insert("proto", got.proto.to_string());
    m.insert("proto_stated", yes_no(got.proto_stated).to_owned());
    m.insert("rootless", yes_no(got.rootless).to_owned());
    m.insert("container", got.container.clone().unwrap_or_else(|| "-".to_owned()));
    m.insert("recognised", yes_no(got.is_recognised()).to_owned());
    m.insert("reporter", name_of(got.reporter));
    m.insert("bind_error", name_of(got.bind_error));
    m.insert("engines", range_of(&got.engine_versions));
    m.insert("platform", name_of(got.platform));
    m.insert(
        "rootless_sign",
        got.rootless_sign.as_ref().map_or_else(
            || "-".to_owned(),
            |s| format!("{}@{}", name_of(Some(s.kind)), range_of(&s.engine_versions)),
        ),
    );
    m.insert(
        "firewall",
        got.firewall_error.as_ref().map_or_else(
            || "-".to_owned(),
            |f| {
                format!(
                    "{}:{}/{}",
                    name_of(Some(f.kind)),
                    f.table.as_deref().unwrap_or("-"),
                    f.chain.as_deref().unwrap_or("-")
                )
            },
        ),
    );
    m
}

/// Keys every fixture states; the rest are asserted when stated.
const REQUIRED: &[&str] = &["stage", "host_ip", "host_port", "proto", "rootless", "container", "recognised"];
/// Keys that read "none" when a fixture does not state them: no Linux text names Windows, and a
/// rootless sign or a firewall reason is only there when the header says so.
const NONE_UNLESS_STATED: &[&str] = &["platform", "rootless_sign", "firewall"];

/// Every fixture classifies as its header says, and its JSON is snapshotted.
#[rstest]
fn classifies_as_its_header_says(#[files("tests/fixtures/errors/*.txt")] path: PathBuf) {
    let fx = load(&path);
    let name = fx.name.as_str();
    fx.provenance();
    let want = fx.expectations();
    for key in REQUIRED {
        assert!(want.contains_key(*key), "{name}: the header has no `{key}=` in its expect lines");
    }
    let got = classify(&fx.text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let seen = observed(&got);
    for (key, value) in &want {
        let Some(actual) = seen.get(key.as_str()) else {
            panic!("{name}: unknown expect key `{key}` (known: {:?})", seen.keys().collect::<Vec<_>>())
        };
        // A rootless sign may be stated without its releases.
        let actual = match (key.as_str(), value.contains('@')) {
            ("rootless_sign", false) => actual.split('@').next().unwrap_or_default(),
            _ => actual.as_str(),
        };
        assert_eq!(actual, value, "{name}: {key} of {:?}", got.text);
    }
    for key in NONE_UNLESS_STATED {
        if !want.contains_key(*key) {
            assert_eq!(seen[key], "-", "{name}: {key} is set but the header does not expect it");
        }
    }
    insta::with_settings!({
        info => &fx.text,
        description => format!("classify(tests/fixtures/errors/{name}.txt)"),
        omit_expression => true,
    }, {
        insta::assert_json_snapshot!(name, got);
    });
}

/// A recorded text admits the engine that printed it; a bounded range from 20.10.24 ends before
/// the daemon bound sockets itself.
#[test]
fn recorded_texts_admit_the_engine_that_printed_them() {
    let mut recorded = 0;
    for path in all_fixtures() {
        let fx = load(&path);
        if fx.provenance() == Provenance::Composed {
            continue;
        }
        let engine = fx
            .line("engine")
            .unwrap_or_else(|| panic!("{}: a recorded fixture names its `# engine: `", fx.name));
        let got = classify(&fx.text).unwrap();
        assert!(got.engine_versions.admits(engine), "{}: {engine} outside {}", fx.name, got.engine_versions);
        if engine.starts_with("20.10.24") && got.engine_versions.max.is_some() {
            assert!(!got.engine_versions.admits("28.5.2"), "{}: {}", fx.name, got.engine_versions);
        }
        recorded += 1;
    }
    assert!(recorded >= 35, "only {recorded} recorded fixtures");
}

/// The cells of a lab run whose trigger printed an error, kept beside the fixtures: the runner's
/// results.json is re-recorded by later runs, and the fixtures must keep their source.
fn lab_run(id: &str) -> serde_json::Value {
    let path = fixture_dir().join(format!("lab-run-{id}.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {}: {e}; a lab-recorded fixture needs its run's cells there", path.display())
    });
    let run: serde_json::Value = serde_json::from_str(&text).expect("the lab run extract is JSON");
    assert_eq!(run["run_id"].as_str(), Some(id), "{} names another run", path.display());
    run
}

fn cell<'a>(
    run: &'a serde_json::Value,
    scenario: &str,
    engine: &str,
    backend: &str,
) -> Option<&'a serde_json::Value> {
    run["cells"]
        .as_array()?
        .iter()
        .find(|c| c["scenario"] == scenario && c["engine"] == engine && c["backend"] == backend)
}

/// A fixture that says a lab run recorded it holds that cell's `trigger.error`, byte for byte.
#[test]
fn lab_recorded_fixtures_are_the_runs_texts() {
    let mut checked = 0;
    for path in all_fixtures() {
        let fx = load(&path);
        if fx.provenance() != Provenance::Lab {
            continue;
        }
        let line = fx.line("recorded").unwrap_or_default();
        let (at, rest) = line.split_once(" in the lab run ").unwrap_or_else(|| panic!("{}: {line}", fx.name));
        let id = rest.split_whitespace().next().unwrap_or_default();
        let [scenario, engine, backend] = at.split('/').collect::<Vec<_>>()[..] else {
            panic!("{}: `{at}` is not <scenario>/<engine>/<backend>", fx.name)
        };
        let run = lab_run(id);
        let found = cell(&run, scenario, engine, backend)
            .unwrap_or_else(|| panic!("{}: run {id} has no failed cell {at}", fx.name));
        assert_eq!(
            found["trigger"]["error"].as_str(),
            Some(fx.text.as_str()),
            "{}: text differs from {at}",
            fx.name
        );
        assert_eq!(fx.line("engine"), Some(engine), "{}: engine line", fx.name);
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} lab-recorded fixtures");
}

#[test]
fn allocator_wording_does_not_state_the_protocol() {
    // Recorded: a UDP conflict in the allocator reads exactly like a TCP one.
    let udp = classify(&fixture("20.10.24-allocated-udp")).unwrap();
    let tcp = classify(&fixture("20.10.24-allocated")).unwrap();
    assert!(!udp.proto_stated && !tcp.proto_stated);
    assert!(classify(&fixture("20.10.24-host-bind-udp4")).unwrap().proto_stated);
}

#[test]
fn text_is_the_daemon_message_without_cli_noise() {
    let got = classify(&fixture("20.10.24-cli20-tty-allocated")).unwrap();
    assert_eq!(
        got.text,
        "driver failed programming external connectivity on endpoint pw-h1-c20-tty \
         (76c063b104093ed19fcab9f7a94a41871955e581fec752f4f49170167a075096): \
         Bind for 0.0.0.0:18090 failed: port is already allocated"
    );
    assert_eq!(
        got.endpoint_id.as_deref(),
        Some("76c063b104093ed19fcab9f7a94a41871955e581fec752f4f49170167a075096")
    );
    // A `docker start` tail pasted onto the same line is not part of the daemon's message.
    let start = classify(&fixture("28.5-start-single-line")).unwrap();
    assert!(start.text.ends_with("/tcp: address already in use"), "{}", start.text);
    let fw = classify(&fixture("28.5-firewall-dnat")).unwrap();
    assert!(fw.text.starts_with("failed to set up container networking: "), "{}", fw.text);
    assert!(fw.text.ends_with("by that name. (exit status 1))"), "{}", fw.text);
}

#[test]
fn the_fixture_directory_is_there() {
    assert!(all_fixtures().len() >= 60, "the fixture directory went missing");
}

#[rstest]
#[case("")]
#[case("   \n\t \r\n")]
fn blank_text_is_an_error(#[case] text: &str) {
    assert_eq!(classify(text), Err(ErrorTextError::Empty));
}

/// Tiny deterministic generator so the mangling below is the same on every run.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn check_total(input: &str, origin: &str) {
    match classify(input) {
        Err(ErrorTextError::Empty) => {
            assert!(input.trim().is_empty(), "{origin}: non-blank input called empty")
        }
        Ok(e) => {
            assert!(!input.trim().is_empty(), "{origin}: blank input accepted");
            assert!(!e.text.is_empty(), "{origin}: empty text for {input:?}");
            assert!(e.host_port != Some(0), "{origin}: port 0 is no port");
        }
    }
}

/// classify never panics: every prefix and suffix of every fixture (cut at each character), and
/// deterministic byte-level mangling of each.
#[test]
fn never_panics_on_truncated_or_mangled_fixtures() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut inputs = 0usize;
    for path in all_fixtures() {
        let text = load(&path).text;
        let name = path.display().to_string();
        for (i, _) in text.char_indices() {
            check_total(&text[..i], &format!("{name} prefix {i}"));
            check_total(&text[i..], &format!("{name} suffix {i}"));
            inputs += 2;
        }
        for round in 0..200 {
            let mut bytes = text.clone().into_bytes();
            for _ in 0..1 + rng.next() % 8 {
                if bytes.is_empty() {
                    break;
                }
                let at = (rng.next() % bytes.len() as u64) as usize;
                match rng.next() % 4 {
                    0 => bytes[at] = (rng.next() % 256) as u8,
                    1 => {
                        bytes.remove(at);
                    }
                    2 => bytes.insert(at, b":[]/.0123456789"[(rng.next() % 15) as usize]),
                    _ => bytes.truncate(at),
                }
            }
            check_total(&String::from_utf8_lossy(&bytes), &format!("{name} mangled round {round}"));
            inputs += 1;
        }
    }
    assert!(inputs > 10_000, "only {inputs} inputs were tried");
}
