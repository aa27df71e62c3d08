//! The managers' unlock key (autolock): `SWMKEY-1-<base64 of 32 random bytes>`, as
//! swarmkit's `encryption.HumanReadableKey` writes it. While autolock is on, each manager
//! keeps its TLS key and Raft data key sealed under it on disk.

use std::fmt;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

use crate::{Error, Result};

const PREFIX: &str = "SWMKEY-1-";

#[derive(Clone, PartialEq, Eq)]
pub struct UnlockKey([u8; 32]);

impl UnlockKey {
    pub fn generate() -> UnlockKey {
        let mut key = [0u8; 32];
        crate::random::fill(&mut key);
        UnlockKey(key)
    }

    /// Parses Docker's form; anything else is `invalid key string` (swarmkit's words).
    pub fn parse(s: &str) -> Result<UnlockKey> {
        let bytes = s
            .trim()
            .strip_prefix(PREFIX)
            .and_then(|b| STANDARD_NO_PAD.decode(b).ok())
            .ok_or(Error::InvalidUnlockKey)?;
        Ok(UnlockKey(
            bytes.try_into().map_err(|_| Error::InvalidUnlockKey)?,
        ))
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for UnlockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", STANDARD_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for UnlockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnlockKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_dockers_form() {
        let k = UnlockKey::generate();
        let s = k.to_string();
        assert!(s.starts_with("SWMKEY-1-") && s.len() == 9 + 43, "{s}");
        assert_eq!(UnlockKey::parse(&s).unwrap(), k);
        // A key Docker printed (docs.docker.com) parses.
        UnlockKey::parse("SWMKEY-1-+MrE8NgAyKj5r3NcR4FiQMdgu+7W72urH0EZeSmP/0Y").unwrap();
        for bad in [
            "",
            "SWMKEY-1-",
            "SWMKEY-2-+MrE8NgAyKj5r3NcR4FiQMdgu+7W72urH0EZeSmP/0Y",
            "SWMKEY-1-abc",
        ] {
            assert_eq!(
                UnlockKey::parse(bad).unwrap_err().to_string(),
                "invalid key string",
                "{bad:?}"
            );
        }
    }
}
