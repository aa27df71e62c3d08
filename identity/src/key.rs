//! A node's private key and the CSR it sends to a manager.

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, KeyPair, PKCS_ECDSA_P256_SHA256};

use crate::{Error, Result};

/// An ECDSA P-256 key that never leaves its node.
pub struct NodeKey {
    key: KeyPair,
}

impl NodeKey {
    pub fn generate() -> Result<NodeKey> {
        Ok(NodeKey {
            key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
        })
    }

    /// Loads a PKCS#8 PEM key (`swarm-node.key`).
    pub fn from_pem(pem: &str) -> Result<NodeKey> {
        let key = KeyPair::from_pem(pem).map_err(|e| Error::InvalidKey(e.to_string()))?;
        Ok(NodeKey { key })
    }

    /// PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// SubjectPublicKeyInfo, DER.
    pub fn public_key_der(&self) -> Vec<u8> {
        self.key.public_key_der()
    }

    /// A CSR for this key. Its subject is empty: the CA decides the names.
    pub fn csr_pem(&self) -> Result<String> {
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        Ok(params.serialize_request(&self.key)?.pem()?)
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NodeKey(<redacted>)")
    }
}
