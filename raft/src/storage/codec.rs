//! How values are turned into bytes on disk, and sealed there.
//!
//! JSON, because the core's objects keep unknown fields as `serde_json::Value` and flattened
//! maps, which non-self-describing formats (bincode, postcard) cannot decode.
//!
//! With a data key every record is sealed with XChaCha20-Poly1305 under a fresh random
//! nonce, bound to where it lives (the associated data names the record: `vote`,
//! `log:<index>`, `snapshot data`, ...), so a record moved to another slot fails to open:
//!
//! ```text
//! sealed record:  [ 0x01 version ][ 24-byte nonce ][ ciphertext + 16-byte tag ]
//! ```
//!
//! Without a key records are the plain JSON (or the state machine's snapshot bytes).
//! Each file keeps a key check record (the sealed [`KEY_CHECK`] text) so that opening with
//! a wrong key, with no key, or with a key over unencrypted data fails at once and clearly.

use std::sync::Arc;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::DataKey;
use crate::error::StorageError;

/// The first byte of a sealed record: the record format's version.
const SEALED_V1: u8 = 0x01;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + NONCE_LEN;
const TAG_LEN: usize = 16;
/// The plaintext of the key check record of each file.
pub(crate) const KEY_CHECK: &[u8] = b"swarm-raft data key check v1";

/// Encodes and decodes the records of one node's files, sealing them when it has a key.
#[derive(Clone, Default)]
pub struct Codec {
    cipher: Option<Arc<XChaCha20Poly1305>>,
}

impl Codec {
    pub fn new(key: Option<&DataKey>) -> Self {
        Self {
            cipher: key.map(|k| Arc::new(XChaCha20Poly1305::new(k.bytes().into()))),
        }
    }

    pub fn is_sealed(&self) -> bool {
        self.cipher.is_some()
    }

    /// JSON of `value`, sealed under `aad` when there is a key.
    pub fn encode<T: Serialize>(
        &self,
        what: &'static str,
        aad: &[u8],
        value: &T,
    ) -> Result<Vec<u8>, StorageError> {
        let json =
            serde_json::to_vec(value).map_err(|source| StorageError::Encode { what, source })?;
        if self.cipher.is_none() {
            return Ok(json);
        }
        self.seal(what, aad, &json)
    }

    pub fn decode<T: DeserializeOwned>(
        &self,
        what: &'static str,
        aad: &[u8],
        bytes: &[u8],
    ) -> Result<T, StorageError> {
        let plain = self.open(what, aad, bytes)?;
        serde_json::from_slice(&plain).map_err(|source| StorageError::Decode { what, source })
    }

    /// Seals `plain` (a copy without a key).
    pub fn seal(
        &self,
        what: &'static str,
        aad: &[u8],
        plain: &[u8],
    ) -> Result<Vec<u8>, StorageError> {
        let Some(cipher) = &self.cipher else {
            return Ok(plain.to_vec());
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plain,
                    aad: &aad_of(aad),
                },
            )
            .map_err(|_| StorageError::Seal { what })?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a record written by [`Codec::seal`] with the same key and `aad`.
    pub fn open(
        &self,
        what: &'static str,
        aad: &[u8],
        bytes: &[u8],
    ) -> Result<Vec<u8>, StorageError> {
        let Some(cipher) = &self.cipher else {
            return Ok(bytes.to_vec());
        };
        match bytes.first() {
            Some(&SEALED_V1) if bytes.len() >= HEADER_LEN + TAG_LEN => {}
            Some(&SEALED_V1) => return Err(StorageError::Unseal { what }),
            Some(&v) => return Err(StorageError::UnknownRecord { what, version: v }),
            None => return Err(StorageError::Unseal { what }),
        }
        let nonce = XNonce::from_slice(&bytes[1..HEADER_LEN]);
        cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &bytes[HEADER_LEN..],
                    aad: &aad_of(aad),
                },
            )
            .map_err(|_| StorageError::Unseal { what })
    }
}

/// The associated data: the record format's version and the record's name.
fn aad_of(name: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + name.len());
    aad.push(SEALED_V1);
    aad.extend_from_slice(name);
    aad
}

/// The associated data of the log entry at `index`.
pub fn log_aad(index: u64) -> Vec<u8> {
    format!("log:{index}").into_bytes()
}
