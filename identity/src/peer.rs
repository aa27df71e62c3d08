//! What a certificate says about its node: CN = node ID, OU = role, O = cluster ID.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use crate::{Error, Result, Role};

/// The identity read from a (verified) node certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub node_id: String,
    pub role: Role,
    pub cluster_id: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl PeerIdentity {
    /// Reads node ID, role and cluster ID from a DER certificate. It does not verify the
    /// certificate: the TLS layer did that before anyone asks.
    pub fn from_der(der: &[u8]) -> Result<PeerIdentity> {
        let (_, cert) =
            X509Certificate::from_der(der).map_err(|e| Error::InvalidCertificate(e.to_string()))?;
        let subject = cert.subject();
        let first = |attrs: Vec<&x509_parser::x509::AttributeTypeAndValue<'_>>,
                     what: &str|
         -> Result<String> {
            attrs
                .first()
                .and_then(|a| a.as_str().ok())
                .map(str::to_string)
                .ok_or_else(|| Error::InvalidCertificate(format!("no {what} in the subject")))
        };
        let node_id = first(subject.iter_common_name().collect(), "CN (node ID)")?;
        let role = first(subject.iter_organizational_unit().collect(), "OU (role)")?;
        let cluster_id = first(subject.iter_organization().collect(), "O (cluster ID)")?;
        let validity = cert.validity();
        Ok(PeerIdentity {
            node_id,
            role: role.parse()?,
            cluster_id,
            not_before: system_time(validity.not_before.timestamp()),
            not_after: system_time(validity.not_after.timestamp()),
        })
    }
}

fn system_time(unix: i64) -> SystemTime {
    if unix >= 0 {
        UNIX_EPOCH + Duration::from_secs(unix as u64)
    } else {
        UNIX_EPOCH - Duration::from_secs(unix.unsigned_abs())
    }
}

/// The SubjectPublicKeyInfo of a DER certificate, to match it with a private key.
pub(crate) fn spki(der: &[u8]) -> Result<Vec<u8>> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| Error::InvalidCertificate(e.to_string()))?;
    Ok(cert.public_key().raw.to_vec())
}
