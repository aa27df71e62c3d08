//! PEM in and out: certificate bundles and PKCS#8 keys, through rustls' pki-types.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

/// Every certificate in a PEM bundle, in order; an empty bundle is an error.
pub(crate) fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::InvalidCertificate(format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::InvalidCertificate("no certificate in PEM".into()));
    }
    Ok(certs)
}

pub(crate) fn private_key(pem: &str) -> Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| Error::InvalidKey(e.to_string()))
}
