//! Unit tests of the `tls` module.

use super::*;

#[test]
fn fingerprints_print_like_openssl_and_parse_back() {
    let f = Fingerprint::of(b"hello");
    let s = f.to_string();
    assert_eq!(s.len(), 32 * 3 - 1);
    assert!(s.starts_with("2C:F2:4D:BA:5F:B0:A3:0E"), "{s}");
    assert_eq!(s.parse::<Fingerprint>(), Ok(f));
    assert_eq!(
        s.replace(':', "").to_lowercase().parse::<Fingerprint>(),
        Ok(f)
    );
    assert!("abc".parse::<Fingerprint>().is_err());
    assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
}

#[test]
fn self_signed_config_builds() {
    let settings = TlsServerSettings {
        cert: CertSource::SelfSigned,
        client_ca: None,
    };
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    assert!(server_config(&settings, &names).is_ok());
}

#[test]
fn missing_and_garbage_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, b"not a certificate").unwrap();
    let settings = |cert: &Path, key: &Path| TlsServerSettings {
        cert: CertSource::Files {
            cert: cert.into(),
            key: key.into(),
        },
        client_ca: None,
    };
    let missing = dir.path().join("missing.pem");
    let e = server_config(&settings(&missing, &garbage), &[]).unwrap_err();
    assert!(e.to_string().starts_with("cannot read certificate"), "{e}");
    let e = server_config(&settings(&garbage, &garbage), &[]).unwrap_err();
    assert!(e.to_string().contains("no PEM certificate"), "{e}");
}
