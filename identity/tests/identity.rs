//! Root CA, certificates, join tokens and the on-disk identity, without the network.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime};

use swarm_identity::{
    Error, JoinToken, NodeIdentity, NodeKey, PeerIdentity, Role, RootCa, DEFAULT_NODE_CERT_VALIDITY,
};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

fn identity(root: &RootCa, node_id: &str, role: Role, validity: Duration) -> NodeIdentity {
    let key = NodeKey::generate().unwrap();
    let cert = root
        .issue(
            &key.csr_pem().unwrap(),
            node_id,
            role,
            "cluster-a",
            validity,
        )
        .unwrap();
    NodeIdentity::new(cert, key.key_pem(), root.cert_pem().to_string()).unwrap()
}

fn der(pem: &str) -> Vec<u8> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    p.contents
}

#[test]
fn root_ca_is_a_p256_swarm_ca_valid_20_years() {
    let root = RootCa::generate("cluster-a").unwrap();
    let der = der(root.cert_pem());
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    assert!(cert.is_ca());
    assert_eq!(
        cert.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "swarm-ca"
    );
    assert_eq!(cert.subject(), cert.issuer());
    // id-ecPublicKey with the prime256v1 curve.
    assert_eq!(
        cert.public_key().algorithm.algorithm.to_id_string(),
        "1.2.840.10045.2.1"
    );
    let params = cert.public_key().algorithm.parameters.as_ref().unwrap();
    assert_eq!(
        params.as_oid().unwrap().to_id_string(),
        "1.2.840.10045.3.1.7"
    );
    let years = (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp())
        / (365 * 24 * 3600);
    assert_eq!(years, 20);
}

#[test]
fn issued_certificates_carry_node_id_role_cluster_and_sans() {
    let root = RootCa::generate("cluster-a").unwrap();
    for (role, ou, extra_san) in [
        (Role::Manager, "swarm-manager", Some("swarm-ca")),
        (Role::Worker, "swarm-worker", None),
    ] {
        let id = identity(&root, "node1abc", role, DEFAULT_NODE_CERT_VALIDITY);
        assert_eq!((id.node_id.as_str(), id.role), ("node1abc", role));
        assert_eq!(id.cluster_id, "cluster-a");

        let der = der(&id.cert_pem);
        let peer = PeerIdentity::from_der(&der).unwrap();
        assert_eq!(peer.node_id, "node1abc");
        assert_eq!(peer.role, role);
        assert_eq!(peer.role.as_ou(), ou);
        assert_eq!(peer.cluster_id, "cluster-a");

        let (_, cert) = X509Certificate::from_der(&der).unwrap();
        assert!(!cert.is_ca());
        let sans: Vec<String> = cert
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|n| match n {
                GeneralName::DNSName(s) => s.to_string(),
                other => panic!("unexpected SAN {other:?}"),
            })
            .collect();
        let mut want = vec![ou.to_string(), "node1abc".to_string()];
        want.extend(extra_san.map(str::to_string));
        assert_eq!(sans, want);
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        // Backdated one hour; 90 days from now.
        let life = id.not_after.duration_since(id.not_before).unwrap();
        assert_eq!(life, DEFAULT_NODE_CERT_VALIDITY + Duration::from_secs(3600));
    }
}

#[test]
fn only_the_csr_public_key_is_used_and_its_signature_must_hold() {
    let root = RootCa::generate("cluster-a").unwrap();
    let mut csr = NodeKey::generate().unwrap().csr_pem().unwrap();
    // Flip a base64 character inside the body: the CSR no longer parses or verifies.
    let at = csr.len() / 2;
    let flipped = if &csr[at..at + 1] == "A" { "B" } else { "A" };
    csr.replace_range(at..at + 1, flipped);
    let err = root
        .issue(
            &csr,
            "n1",
            Role::Worker,
            "cluster-a",
            DEFAULT_NODE_CERT_VALIDITY,
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCsr(_)), "{err}");
}

#[test]
fn a_root_without_its_key_cannot_issue_and_a_wrong_key_is_refused() {
    let root = RootCa::generate("cluster-a").unwrap();
    let public = RootCa::from_pem(root.cert_pem(), None).unwrap();
    assert!(!public.can_sign());
    assert_eq!(public.digest(), root.digest());
    let csr = NodeKey::generate().unwrap().csr_pem().unwrap();
    assert!(matches!(
        public.issue(&csr, "n1", Role::Worker, "c", DEFAULT_NODE_CERT_VALIDITY),
        Err(Error::NoSigningKey)
    ));
    let other = RootCa::generate("cluster-b").unwrap();
    let wrong_key = other.key_pem().unwrap();
    assert!(matches!(
        RootCa::from_pem(root.cert_pem(), Some(&wrong_key)),
        Err(Error::KeyMismatch)
    ));
    // A leaf is not a root.
    let leaf = identity(&root, "n1", Role::Worker, DEFAULT_NODE_CERT_VALIDITY);
    assert!(matches!(
        RootCa::from_pem(&leaf.cert_pem, None),
        Err(Error::InvalidRootCa(_))
    ));
}

#[test]
fn token_format_is_dockers() {
    let root = RootCa::generate("cluster-a").unwrap();
    let token = JoinToken::generate(&root).to_string();
    let parts: Vec<&str> = token.split('-').collect();
    assert_eq!(parts.len(), 4, "{token}");
    assert_eq!(&parts[..2], ["SWMTKN", "1"]);
    assert_eq!(parts[2].len(), 50);
    assert_eq!(parts[3].len(), 25);
    assert!(parts[2..].iter().all(|p| p
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())));

    let parsed = JoinToken::parse(&token).unwrap();
    assert_eq!(parsed.to_string(), token);
    assert_eq!(parsed.version(), 1);
    assert_eq!(parsed.root_digest(), root.digest());
    assert!(parsed.ca_digest_matches(&root));
    // Two tokens for one CA share the digest, never the secret.
    let other = JoinToken::generate(&root).to_string();
    assert_eq!(other[..59], token[..59]);
    assert_ne!(other, token);
    // The Debug form hides the secret.
    assert!(!format!("{parsed:?}").contains(parts[3]));
}

#[test]
fn a_known_digest_encodes_as_go_does() {
    // sha256("") = e3b0c442...; its base 36 as big.Int.Text(36) prints it, zero-padded.
    let token =
        "SWMTKN-1-0000000000000000000000000000000000000000000000000-0000000000000000000000001";
    assert!(JoinToken::parse(token).is_err(), "49-char digest");
    let digest36 = "5oaq0bjhj6un82wg98mgigso5q7qlhc63je4gw7ivixqqhkd3p";
    let token = format!("SWMTKN-1-{digest36}-0000000000000000000000001");
    let parsed = JoinToken::parse(&token).unwrap();
    assert_eq!(
        parsed.root_digest_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(parsed.to_string(), token);
}

#[test]
fn malformed_tokens_are_invalid_join_token() {
    let root = RootCa::generate("cluster-a").unwrap();
    let good = JoinToken::generate(&root).to_string();
    let (digest, secret) = (&good[9..59], &good[60..]);
    let bad = [
        String::new(),
        "SWMTKN".into(),
        format!("SWMTKN-1-{digest}"),
        format!("SWMTKX-1-{digest}-{secret}"),
        format!("SWMTKN-3-{digest}-{secret}"),
        format!("SWMTKN-1-{digest}-{secret}-x"),
        format!("SWMTKN-1-{}-{secret}", &digest[1..]),
        format!("SWMTKN-1-{digest}-{}", &secret[1..]),
        format!("SWMTKN-1-{digest}-{secret}0"),
        format!("SWMTKN-1-{}!-{secret}", &digest[1..]),
        format!("SWMTKN-1-{digest}-{}_", &secret[1..]),
        format!("SWMTKN-2-7-{digest}-{secret}"),
        format!("SWMTKN-2-{digest}-{secret}"),
        // Larger than 2^256.
        format!("SWMTKN-1-{}-{secret}", "z".repeat(50)),
    ];
    for token in bad {
        let err = JoinToken::parse(&token).unwrap_err();
        assert_eq!(err.to_string(), "invalid join token", "{token:?}");
    }
    // swarmkit's version 2 (FIPS) form parses.
    let v2 = JoinToken::parse(&format!("SWMTKN-2-1-{digest}-{secret}")).unwrap();
    assert!(v2.fips());
    assert_eq!(v2.to_string(), format!("SWMTKN-2-1-{digest}-{secret}"));
}

#[test]
fn a_token_for_another_ca_does_not_match_and_its_root_is_refused() {
    let a = RootCa::generate("cluster-a").unwrap();
    let b = RootCa::generate("cluster-b").unwrap();
    let token = JoinToken::parse(&JoinToken::generate(&a).to_string()).unwrap();
    assert!(token.ca_digest_matches(&a));
    assert!(!token.ca_digest_matches(&b));

    // The joiner's check on a served root: only A's exact bundle is trusted.
    let trusted = token.verify_root(a.cert_pem()).unwrap();
    assert_eq!(trusted.digest(), a.digest());
    let err = token.verify_root(b.cert_pem()).unwrap_err();
    assert!(matches!(err, Error::RootDigestMismatch { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "remote CA does not match fingerprint. Expected: {}",
            token.root_digest_hex()
        )
    );
    // A bundle with A's root plus an extra root is not A's bundle.
    let mixed = format!("{}{}", a.cert_pem(), b.cert_pem());
    assert!(token.verify_root(&mixed).is_err());
}

#[test]
fn managers_verify_offered_tokens() {
    let root = RootCa::generate("cluster-a").unwrap();
    let worker = JoinToken::generate(&root);
    let manager = JoinToken::generate(&root);
    assert!(worker.verify(&worker.to_string()));
    assert!(!worker.verify(&manager.to_string()));
    assert!(!worker.verify("SWMTKN-1-nonsense"));
    let other_ca = JoinToken::generate(&RootCa::generate("b").unwrap()).to_string();
    let spliced = format!("{}{}", &other_ca[..60], &worker.to_string()[60..]);
    assert!(!worker.verify(&spliced));
}

#[test]
fn save_and_load_round_trip_with_modes() {
    let root = RootCa::generate("cluster-a").unwrap();
    let id = identity(&root, "node1", Role::Manager, DEFAULT_NODE_CERT_VALIDITY);
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certificates");
    assert!(!NodeIdentity::exists(&certs));
    id.save(&certs).unwrap();
    assert!(NodeIdentity::exists(&certs));
    let mode = |f: &str| {
        std::fs::metadata(certs.join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("swarm-node.key"), 0o600);
    assert_eq!(mode("swarm-node.crt") & 0o077 & 0o022, 0);
    assert_eq!(mode("swarm-root-ca.crt") & 0o022, 0);
    assert_eq!(NodeIdentity::load(&certs).unwrap(), id);
    // No temporary files left behind.
    let names: Vec<_> = std::fs::read_dir(&certs)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");

    // Renewal overwrites in place; a key that does not match the cert is refused on load.
    let renewed = identity(&root, "node1", Role::Worker, DEFAULT_NODE_CERT_VALIDITY);
    renewed.save(&certs).unwrap();
    assert_eq!(NodeIdentity::load(&certs).unwrap().role, Role::Worker);
    std::fs::write(certs.join("swarm-node.key"), id.key_pem.as_bytes()).unwrap();
    assert!(matches!(
        NodeIdentity::load(&certs),
        Err(Error::KeyMismatch)
    ));
}

#[test]
fn renewal_is_due_past_half_of_the_validity() {
    let root = RootCa::generate("cluster-a").unwrap();
    let id = identity(&root, "n1", Role::Worker, Duration::from_secs(10 * 3600));
    let now = SystemTime::now();
    assert!(!id.needs_renewal(now));
    // Valid from now-1h to now+10h: half-way is now+4.5h.
    assert!(!id.needs_renewal(now + Duration::from_secs(4 * 3600)));
    assert!(id.needs_renewal(now + Duration::from_secs(5 * 3600)));
    assert!(id.needs_renewal(id.not_after));
    // A validity shorter than the minimum gets the default (as swarmkit).
    let short = identity(&root, "n2", Role::Worker, Duration::from_secs(60));
    assert!(short.not_after > now + Duration::from_secs(80 * 24 * 3600));
}
