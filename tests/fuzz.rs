//! Bounded fuzzing on stable Rust: the properties of `tests/props` (the
//! ones the libFuzzer targets in `fuzz/` check without bound) over a fixed
//! number of generated cases, some shaped like real input, some raw bytes;
//! the repr compared with CPython's on a random sample; and every crash
//! input ever saved under `fuzz/regressions/` replayed.

mod props;

use std::path::Path;
use std::time::Duration;

use echoes::{Addr, PyBytes, Transport};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

/// Text shaped like addresses: every scheme (and one that is not), hosts
/// of the characters hosts may have and some they may not, odd ports.
const ADDR_LIKE: &str = "(tcp://|tls://|udp://|unix:|unix://|http://)?\
     (\\[[0-9a-f:.%]{0,10}\\]|[a-zA-Z0-9.:%_/ -]{0,12})(:[0-9+-]{0,7})?";

/// Text shaped like durations and sizes.
const UNIT_LIKE: &str =
    " ?[0-9]{0,14}(\\.[0-9]{0,6})? ?(ns|us|µs|ms|s|sec|m|min|h|hr|b|k|KiB|M|MB|GiB|x|e3)? ?";

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn addr_text_parses_or_is_rejected_and_round_trips(text in ADDR_LIKE) {
        props::addr(text.as_bytes());
    }

    #[test]
    fn addr_raw_bytes(data in proptest::collection::vec(any::<u8>(), 0..48)) {
        props::addr(&data);
    }

    /// An address built from parts shows as text that parses back to it.
    #[test]
    fn addr_built_from_parts_round_trips(
        scheme in prop_oneof![Just(Transport::Tcp), Just(Transport::Tls), Just(Transport::Udp)],
        host in prop_oneof![
            "[a-zA-Z0-9._%-]{1,12}",
            "[0-9a-f:]{2,12}",
            Just("unix".to_string()),
            Just("tcp".to_string()),
        ],
        port: u16,
    ) {
        let addr = Addr::Inet { transport: scheme, host, port };
        props::addr(addr.to_string().as_bytes());
        // A host that parses on its own (no `::` trouble) comes back as built.
        if let Ok(again) = addr.to_string().parse::<Addr>() {
            prop_assert_eq!(again, addr);
        }
    }

    #[test]
    fn unix_path_round_trips(path in "[^\0]{1,24}") {
        let addr = Addr::Unix(path.into());
        let shown = addr.to_string();
        prop_assert_eq!(shown.parse::<Addr>(), Ok(addr), "shown as {:?}", shown);
    }

    #[test]
    fn unit_text_parses_or_is_rejected_and_round_trips(text in UNIT_LIKE) {
        props::units(text.as_bytes());
    }

    #[test]
    fn unit_raw_bytes(data in proptest::collection::vec(any::<u8>(), 0..24)) {
        props::units(&data);
    }

    /// Every duration up to the parser's limit (a year) round-trips.
    #[test]
    fn any_duration_round_trips(nanos in 0u64..=366 * 86_400 * 1_000_000_000) {
        props::duration_round_trips(Duration::from_nanos(nanos));
    }

    #[test]
    fn any_size_round_trips(n: u64, k in 0u64..(1 << 44)) {
        props::units(n.to_string().as_bytes());
        prop_assert_eq!(echoes::units::parse_size(&format!("{k}KiB")), Ok(k << 10));
    }

    #[test]
    fn repr_is_printable_and_reads_back(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        props::pyrepr(&data);
    }

    /// Quote-heavy input, where choosing the quote matters.
    #[test]
    fn repr_of_quotes_and_escapes(data in proptest::collection::vec(
        prop_oneof![Just(b'\''), Just(b'"'), Just(b'\\'), Just(b'\n'), any::<u8>()], 0..32)) {
        props::pyrepr(&data);
    }
}

/// 500 random byte strings, repr'd by us and by CPython: identical.
#[test]
fn repr_matches_cpython_on_a_random_sample() {
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(
        prop_oneof![
            3 => any::<u8>(),
            1 => prop_oneof![Just(b'\''), Just(b'"'), Just(b'\\')],
        ],
        0..64,
    );
    let sample: Vec<Vec<u8>> = (0..500)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    let want = echoes::pyrepr::cpython_reprs(&sample);
    for (data, want) in sample.iter().zip(want.lines()) {
        assert_eq!(PyBytes(data).to_string(), want, "input {data:?}");
    }
    assert_eq!(want.lines().count(), sample.len());
}

/// Every input a fuzzer ever crashed on, kept in `fuzz/regressions/TARGET/`,
/// still passes its target's properties.
#[test]
fn saved_fuzz_crashes_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    type Check = fn(&[u8]);
    let targets: [(&str, Check); 3] = [
        ("addr", props::addr),
        ("units", props::units),
        ("pyrepr", props::pyrepr),
    ];
    let mut replayed = 0;
    for (target, check) in targets {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{} fails again", path.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} saved fuzz inputs");
}
