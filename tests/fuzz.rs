//! Bounded fuzzing on stable Rust: the properties of
//! `tests/support/props.rs` (the ones the libFuzzer targets in `fuzz/`
//! check without bound) over a fixed number of generated cases, some
//! shaped like real input, some raw bytes;
//! the repr compared with CPython's on a random sample; and every crash
//! input ever saved under `fuzz/regressions/` replayed.

mod support;

use std::path::Path;
use std::time::Duration;

use echoes::fuzzing::PyBytes;
use echoes::{Addr, Transport, proxy};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use support::props;

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

/// Bytes shaped like PROXY headers: a signature (or most of one), then v1
/// text of the characters a line has, or v2 bytes with a valid
/// version/family most of the time and a length near what follows.
fn proxy_like() -> impl Strategy<Value = Vec<u8>> {
    let v1 =
        "(PROXY |PROXY|PROX)(TCP4|TCP6|UNKNOWN|UDP4|)?[ 0-9a-f.:\\r\\n]{0,60}(\\r\\n)?[a-z]{0,4}"
            .prop_map(String::into_bytes);
    let v2 = (
        prop_oneof![Just(0x20u8), Just(0x21u8), any::<u8>()],
        prop_oneof![
            Just(0x00u8),
            Just(0x11),
            Just(0x12),
            Just(0x21),
            Just(0x22),
            Just(0x31),
            any::<u8>()
        ],
        proptest::collection::vec(any::<u8>(), 0..300),
        0usize..300,
    )
        .prop_map(|(ver, fam, body, len)| {
            let mut v = proxy::V2_SIGNATURE.to_vec();
            v.extend_from_slice(&[ver, fam]);
            v.extend_from_slice(&(len as u16).to_be_bytes());
            v.extend_from_slice(&body);
            v
        });
    prop_oneof![v1, v2]
}

/// Any header this crate can describe, v1 or v2.
fn any_header() -> impl Strategy<Value = proxy::ProxyHeader> {
    use proxy::{Addresses, Command, Protocol, ProxyHeader, Tlvs, Version};
    // Both ends in one family: mixed ones are written as IPv6, on purpose.
    let v4 = any::<[u8; 4]>().prop_map(std::net::IpAddr::from);
    let v6 = any::<[u8; 16]>().prop_map(std::net::IpAddr::from);
    let ends = prop_oneof![(v4.clone(), v4), (v6.clone(), v6)];
    let pair = (ends, any::<u16>(), any::<u16>()).prop_map(|((a, b), p, q)| {
        (
            std::net::SocketAddr::new(a, p),
            std::net::SocketAddr::new(b, q),
        )
    });
    let path = "[a-z/]{0,40}".prop_map(std::path::PathBuf::from);
    let protocol = prop_oneof![Just(Protocol::Stream), Just(Protocol::Datagram)];
    let addresses = prop_oneof![
        Just(Addresses::Unknown),
        (protocol.clone(), pair).prop_map(|(protocol, (source, destination))| {
            Addresses::Inet {
                protocol,
                source,
                destination,
            }
        }),
        (protocol, path.clone(), path).prop_map(|(protocol, source, destination)| {
            Addresses::Unix {
                protocol,
                source,
                destination,
            }
        }),
    ];
    let text = "[ -~]{0,20}";
    let tlvs = (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
        proptest::option::of(text),
        proptest::option::of(Just(0u32)),
        proptest::option::of(text),
        proptest::collection::vec(
            (0xe0u8..=0xef, proptest::collection::vec(any::<u8>(), 0..16))
                .prop_filter("not AWS's", |(k, v)| *k != 0xea || v.first() != Some(&1)),
            0..3,
        ),
    )
        .prop_map(|(alpn, authority, crc32c, aws_vpce_id, other)| Tlvs {
            alpn,
            authority,
            crc32c,
            aws_vpce_id,
            other,
            ..Tlvs::default()
        });
    (
        prop_oneof![Just(Version::V1), Just(Version::V2)],
        addresses,
        tlvs,
    )
        .prop_map(|(version, addresses, tlvs)| match version {
            Version::V1 => ProxyHeader {
                version,
                command: Command::Proxy,
                addresses: match addresses {
                    Addresses::Inet {
                        source,
                        destination,
                        ..
                    } => Addresses::Inet {
                        protocol: Protocol::Stream,
                        source,
                        destination,
                    },
                    _ => Addresses::Unknown,
                },
                tlvs: Tlvs::default(),
                len: 0,
            },
            Version::V2 => ProxyHeader {
                version,
                command: Command::Proxy,
                addresses,
                tlvs,
                len: 0,
            },
        })
}

proptest! {
    #![proptest_config(cases(3000))]

    #[test]
    fn proxy_raw_bytes(data in proptest::collection::vec(any::<u8>(), 0..128)) {
        props::proxy(&data);
    }

    #[test]
    fn proxy_header_shaped_bytes(data in proxy_like()) {
        props::proxy(&data);
    }

    /// Every header encodes to bytes that parse back to it, and those bytes
    /// pass the parser's properties, cut anywhere.
    #[test]
    fn proxy_headers_round_trip(header in any_header(), extra in proptest::collection::vec(any::<u8>(), 0..8)) {
        props::round_trips(&header);
        if let Ok(mut wire) = proxy::encode(&header) {
            wire.extend_from_slice(&extra);
            props::proxy(&wire);
        }
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
    let want = cpython_reprs(&sample);
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
    let targets: [(&str, Check); 4] = [
        ("addr", props::addr),
        ("units", props::units),
        ("pyrepr", props::pyrepr),
        ("proxy", props::proxy),
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

/// Compares against the real CPython on every byte value and a few
/// quote mixes.
#[test]
fn matches_cpython_on_every_byte() {
    let mut inputs: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b, b'a']).collect();
    inputs.push((0..=255u8).collect());
    inputs.push(b"'\"'".to_vec());
    inputs.push(b"x'y".to_vec());
    let want = cpython_reprs(&inputs);
    let got: String = inputs
        .iter()
        .map(|i| PyBytes(i).to_string() + "\n")
        .collect();
    assert_eq!(got, want);
}

/// CPython's `repr()` of each of `inputs`, a line each, from a `python3`
/// child process: for the tests that hold [`PyBytes`] to the real thing,
/// which fail when python3 cannot be run.
fn cpython_reprs(inputs: &[Vec<u8>]) -> String {
    let script =
        "import sys\nfor line in sys.stdin:\n    print(repr(bytes.fromhex(line.strip())))\n";
    let hex: String = inputs
        .iter()
        .map(|i| i.iter().map(|b| format!("{b:02x}")).collect::<String>() + "\n")
        .collect();
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(hex.as_bytes())?;
            child.wait_with_output()
        });
    let out = out.expect("python3 is needed to compare with CPython");
    assert!(out.status.success(), "python3 failed");
    String::from_utf8(out.stdout).expect("python prints ASCII")
}
