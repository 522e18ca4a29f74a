//! The configuration's checks, one refusal per cause.

use super::*;

/// One table of every refusal and its words: long, and flat.
#[test]
fn bad_configurations_say_what_is_wrong() {
    use BenchConfigError as E;
    let base = BenchConfig::new("127.0.0.1:1".parse().unwrap());
    fn udp() -> BenchConfig {
        BenchConfig::new("udp://127.0.0.1:1".parse().unwrap())
    }
    type Change = Box<dyn Fn(BenchConfig) -> BenchConfig>;
    let cases: Vec<(Change, E)> = vec![
        (
            Box::new(|mut c| {
                c.connections(0);
                c
            }),
            E::NoConnections,
        ),
        (
            Box::new(|mut c| {
                c.size(0);
                c
            }),
            E::EmptyMessage,
        ),
        (
            Box::new(|mut c| {
                c.threads(0);
                c
            }),
            E::NoThreads,
        ),
        (
            Box::new(|mut c| {
                c.threads(crate::runtime::MAX_THREADS + 1);
                c
            }),
            E::TooManyThreads {
                max: crate::runtime::MAX_THREADS,
            },
        ),
        (
            Box::new(|mut c| {
                c.connections(MAX_CONNECTIONS + 1);
                c
            }),
            E::TooManyConnections {
                max: MAX_CONNECTIONS,
            },
        ),
        (
            Box::new(|mut c| {
                c.pipeline(0);
                c
            }),
            E::PipelineOutOfRange { max: MAX_PIPELINE },
        ),
        (
            Box::new(|mut c| {
                c.pipeline(MAX_PIPELINE + 1);
                c
            }),
            E::PipelineOutOfRange { max: MAX_PIPELINE },
        ),
        (
            Box::new(|mut c| {
                c.duration(Duration::ZERO);
                c
            }),
            E::ZeroDuration,
        ),
        (
            Box::new(|mut c| {
                c.timeout(Duration::ZERO);
                c
            }),
            E::ZeroTimeout,
        ),
        (
            Box::new(|mut c| {
                c.rate(Some(0.0));
                c
            }),
            E::RateNotPositive,
        ),
        (
            Box::new(|mut c| {
                c.rate(Some(f64::NAN));
                c
            }),
            E::RateNotPositive,
        ),
        (
            Box::new(|mut c| {
                c.mode(Mode::Stream).rate(10.0);
                c
            }),
            E::RateInStreamMode,
        ),
        (
            Box::new(|mut c| {
                c.mode(Mode::Churn).pipeline(2);
                c
            }),
            E::PipelineNeedsPingpong { mode: Mode::Churn },
        ),
        (
            Box::new(|_| {
                let mut c = BenchConfig::new("http://127.0.0.1:1/".parse().unwrap());
                c.mode(Mode::Stream);
                c
            }),
            E::HttpStreamMode {
                transport: Transport::Http,
            },
        ),
        (
            Box::new(|_| {
                let mut c = BenchConfig::new("https://127.0.0.1:1/".parse().unwrap());
                c.pipeline(2);
                c
            }),
            E::HttpPipelineNeedsH2 {
                transport: Transport::Https,
            },
        ),
        (
            Box::new(|_| {
                let mut c = udp();
                c.proxy(ProxySend::new(crate::proxy::Version::V1));
                c
            }),
            E::ProxyOverUdp,
        ),
        (
            Box::new(|_| {
                let mut c = udp();
                c.mode(Mode::Churn);
                c
            }),
            E::UdpNeedsPingpong { mode: Mode::Churn },
        ),
        (
            Box::new(|_| {
                let mut c = udp();
                c.pipeline(2);
                c
            }),
            E::PipelineOverUdp,
        ),
        (
            Box::new(|_| {
                let mut c = udp();
                c.size(65_508);
                c
            }),
            E::UdpSizeTooLarge {
                size: 65_508,
                max: 65_507,
            },
        ),
    ];
    for (change, want) in cases {
        assert_eq!(change(base.clone()).validate(), Err(want));
    }
    assert_eq!(base.validate(), Ok(()));
    let mut h2 = BenchConfig::new("http://127.0.0.1:1/".parse().unwrap());
    assert_eq!(h2.validate(), Ok(()));
    assert_eq!(h2.http2(true).pipeline(8).validate(), Ok(()));
    assert_eq!(h2.mode(Mode::Churn).pipeline(1).validate(), Ok(()));
    assert_eq!(udp().timeout, UDP_TIMEOUT);
    assert_eq!(udp().size(MAX_UDP_SIZE).validate(), Ok(()));
}

#[test]
fn the_library_speaks_of_values_not_flags() {
    let errors = [
        BenchConfigError::PipelineOutOfRange { max: MAX_PIPELINE },
        BenchConfigError::RateInStreamMode,
        BenchConfigError::UdpNeedsPingpong { mode: Mode::Stream },
        BenchConfigError::PipelineOverUdp,
        BenchConfigError::UdpSizeTooLarge {
            size: 70_000,
            max: MAX_UDP_SIZE,
        },
        BenchConfigError::TooFewFiles {
            connections: 1000,
            limit: 256,
        },
        BenchConfigError::HttpStreamMode {
            transport: Transport::Http,
        },
        BenchConfigError::HttpPipelineNeedsH2 {
            transport: Transport::Http,
        },
    ];
    for e in errors {
        let text = e.to_string();
        assert!(!text.contains("--") && !text.contains("-c "), "{text}");
    }
}
