//! The cluster's root CA: creating it, loading it, and issuing node certificates.
//!
//! As swarmkit (`ca/certificates.go`): an ECDSA P-256 self-signed root with CN
//! `swarm-ca`, valid 20 years; node certificates take only the public key from the CSR,
//! everything else comes from the caller (CN = node ID, OU = role, O = cluster ID,
//! DNS SANs = role and node ID, plus `swarm-ca` on managers), are backdated one hour and
//! carry both server and client auth.

use std::fmt;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::role::CA_SAN;
use crate::{peer, pem, random, Error, Result, Role};

/// CN of the root certificate.
pub const ROOT_CN: &str = "swarm-ca";
/// Root CA validity: 20 years (swarmkit's `RootCAExpiration`).
pub const ROOT_CA_VALIDITY: Duration = Duration::from_secs(630_720_000);
/// Node certificate validity unless the cluster says otherwise: 90 days.
pub const DEFAULT_NODE_CERT_VALIDITY: Duration = Duration::from_secs(2160 * 3600);
/// Shorter validities than this are replaced by the default, as swarmkit does.
pub const MIN_NODE_CERT_VALIDITY: Duration = Duration::from_secs(3600);
/// Certificates start this long before now, for clocks that lag.
pub const CERT_BACKDATE: Duration = Duration::from_secs(3600);

/// A root CA bundle (one or more roots) and, on managers, the key that signs with the
/// first of them.
pub struct RootCa {
    /// Exactly the bytes served to joining nodes; the digest covers them.
    cert_pem: String,
    certs: Vec<CertificateDer<'static>>,
    signer: Option<Signer>,
    /// Appended to every leaf issued (PEM): during a root rotation, this root
    /// cross-signed by the old one, so that nodes that trust only the old root accept
    /// the new certificates.
    chain_pem: String,
}

struct Signer {
    /// The root as rcgen needs it to sign (its name and key identifier).
    issuer: rcgen::Certificate,
    key: KeyPair,
}

impl RootCa {
    /// A new self-signed root for a new cluster. `cluster_id` goes in the subject's O so
    /// that two clusters' roots are told apart by name too.
    pub fn generate(cluster_id: &str) -> Result<RootCa> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, ROOT_CN);
        if !cluster_id.is_empty() {
            dn.push(DnType::OrganizationName, cluster_id);
        }
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - CERT_BACKDATE;
        params.not_after = now + ROOT_CA_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        Ok(RootCa {
            cert_pem: cert.pem(),
            certs: vec![cert.der().clone()],
            signer: Some(Signer { issuer: cert, key }),
            chain_pem: String::new(),
        })
    }

    /// Loads a root bundle (PEM, one or more self-signed CA certificates) and, optionally,
    /// the PKCS#8 PEM key of its first certificate, which makes this CA able to issue.
    pub fn from_pem(cert_pem: &str, key_pem: Option<&str>) -> Result<RootCa> {
        let certs = pem::certs(cert_pem).map_err(|e| Error::InvalidRootCa(e.to_string()))?;
        for der in &certs {
            let (_, cert) =
                X509Certificate::from_der(der).map_err(|e| Error::InvalidRootCa(e.to_string()))?;
            if !cert.is_ca() {
                return Err(Error::InvalidRootCa(format!(
                    "{} is not a CA certificate",
                    cert.subject()
                )));
            }
            if cert.subject() != cert.issuer() {
                return Err(Error::InvalidRootCa(format!(
                    "{} is not self-signed",
                    cert.subject()
                )));
            }
        }
        let signer = match key_pem {
            None => None,
            Some(key_pem) => {
                let key =
                    KeyPair::from_pem(key_pem).map_err(|e| Error::InvalidKey(e.to_string()))?;
                if key.public_key_der() != peer::spki(&certs[0])? {
                    return Err(Error::KeyMismatch);
                }
                // rcgen signs with an issuer `Certificate`; rebuilding it from the parsed
                // root keeps its subject and key identifier, which is all a leaf refers to.
                let issuer = CertificateParams::from_ca_cert_der(&certs[0])?.self_signed(&key)?;
                Some(Signer { issuer, key })
            }
        };
        Ok(RootCa {
            cert_pem: cert_pem.to_string(),
            certs,
            signer,
            chain_pem: String::new(),
        })
    }

    /// `next`'s certificate signed by this root (same subject, key and key identifier):
    /// the intermediate that chains `next`'s leaves to this root during a rotation.
    pub fn cross_sign(&self, next: &RootCa) -> Result<String> {
        let signer = self.signer.as_ref().ok_or(Error::NoSigningKey)?;
        let next_key = &next.signer.as_ref().ok_or(Error::NoSigningKey)?.key;
        let params = CertificateParams::from_ca_cert_der(&next.certs[0])?;
        Ok(params
            .signed_by(next_key, &signer.issuer, &signer.key)?
            .pem())
    }

    /// Issues leaves with `chain_pem` (PEM intermediates) after them.
    pub fn with_chain(mut self, chain_pem: &str) -> RootCa {
        self.chain_pem = chain_pem.to_string();
        self
    }

    /// The first root's public key (SubjectPublicKeyInfo, DER): a node certificate's
    /// issuer key, as `TLSInfo.CertIssuerPublicKey` shows it.
    pub fn public_key_der(&self) -> Result<Vec<u8>> {
        peer::spki(&self.certs[0])
    }

    /// The first root's subject (DER), as `TLSInfo.CertIssuerSubject` shows it.
    pub fn subject_der(&self) -> Result<Vec<u8>> {
        let (_, cert) = X509Certificate::from_der(&self.certs[0])
            .map_err(|e| Error::InvalidRootCa(e.to_string()))?;
        Ok(cert.subject().as_raw().to_vec())
    }

    /// The root bundle, PEM, byte for byte what [`RootCa::digest`] covers.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The signing key, PKCS#8 PEM, when this CA has one.
    pub fn key_pem(&self) -> Option<String> {
        self.signer.as_ref().map(|s| s.key.serialize_pem())
    }

    /// The roots, DER.
    pub fn certs(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// Whether this CA can issue certificates (it has its key).
    pub fn can_sign(&self) -> bool {
        self.signer.is_some()
    }

    /// sha256 of the PEM bundle, as swarmkit computes it (`digest.FromBytes(rootCertBytes)`):
    /// the joining node hashes exactly what it was served.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.cert_pem.as_bytes()).into()
    }

    /// Signs a node certificate for the public key in `csr_pem` (whose signature must
    /// verify); nothing else from the CSR is used. Returns the leaf, PEM.
    pub fn issue(
        &self,
        csr_pem: &str,
        node_id: &str,
        role: Role,
        cluster_id: &str,
        validity: Duration,
    ) -> Result<String> {
        let signer = self.signer.as_ref().ok_or(Error::NoSigningKey)?;
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| Error::InvalidCsr(e.to_string()))?;
        if node_id.is_empty() || cluster_id.is_empty() {
            return Err(Error::InvalidCsr("empty node or cluster ID".into()));
        }
        let validity = if validity < MIN_NODE_CERT_VALIDITY {
            DEFAULT_NODE_CERT_VALIDITY
        } else {
            validity
        };

        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, node_id);
        dn.push(DnType::OrganizationalUnitName, role.as_ou());
        dn.push(DnType::OrganizationName, cluster_id);
        params.distinguished_name = dn;
        let mut sans = vec![role.as_ou(), node_id];
        if role == Role::Manager {
            sans.push(CA_SAN);
        }
        params.subject_alt_names = sans
            .into_iter()
            .map(|name| {
                name.try_into()
                    .map(SanType::DnsName)
                    .map_err(|_| Error::InvalidCsr(format!("{name:?} is not a DNS name")))
            })
            .collect::<Result<_>>()?;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - CERT_BACKDATE;
        params.not_after = now + validity;
        params.serial_number = Some(random_serial());

        let request = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        let cert = request.signed_by(&signer.issuer, &signer.key)?;
        Ok(cert.pem() + &self.chain_pem)
    }
}

impl fmt::Debug for RootCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RootCa")
            .field("digest", &crate::token::hex(&self.digest()))
            .field("roots", &self.certs.len())
            .field("can_sign", &self.can_sign())
            .finish()
    }
}

/// A positive random 128-bit serial: renewals reuse the key, so the serial cannot come
/// from it.
fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    random::fill(&mut bytes);
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}
