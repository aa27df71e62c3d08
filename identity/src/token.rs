//! Join tokens, in Docker's format (swarmkit `ca/config.go`):
//!
//! ```text
//! SWMTKN-1-<sha256 of the root CA bundle, base 36, zero-padded to 50>-<16 random bytes, base 36, zero-padded to 25>
//! ```
//!
//! The digest lets a joining node check the root CA a manager hands it before trusting it
//! (no trust on first use); the secret is what a manager checks before issuing a
//! certificate. Managers compare offered tokens in constant time.

use std::fmt;

use subtle::ConstantTimeEq;

use crate::{random, Error, Result, RootCa};

const PREFIX: &str = "SWMTKN";
/// ceil(log36(2^256)): a sha256 digest in base 36.
const DIGEST_LEN: usize = 50;
/// ceil(log36(2^128)): the 16-byte secret in base 36.
const SECRET_LEN: usize = 25;
const SECRET_BYTES: usize = 16;

/// A parsed (or freshly generated) join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    version: u8,
    fips: bool,
    /// sha256 of the root CA bundle.
    root_digest: [u8; 32],
    secret: String,
}

impl JoinToken {
    /// A new token for this cluster's root CA, with a fresh random secret.
    pub fn generate(root: &RootCa) -> JoinToken {
        let mut secret = [0u8; SECRET_BYTES];
        random::fill(&mut secret);
        JoinToken {
            version: 1,
            fips: false,
            root_digest: root.digest(),
            secret: base36_encode(&secret, SECRET_LEN),
        }
    }

    /// Parses `SWMTKN-1-<digest>-<secret>` (and swarmkit's `SWMTKN-2-<0|1>-...` FIPS form).
    /// Any malformed token is `Error::InvalidJoinToken`, as Docker says it.
    pub fn parse(token: &str) -> Result<JoinToken> {
        let parts: Vec<&str> = token.split('-').collect();
        if parts.len() < 4 || parts[0] != PREFIX {
            return Err(Error::InvalidJoinToken);
        }
        let (version, fips) = match (parts[1], parts.len()) {
            ("1", 4) => (1, false),
            ("2", 5) if parts[2] == "0" || parts[2] == "1" => (2, parts[2] == "1"),
            _ => return Err(Error::InvalidJoinToken),
        };
        let secret = parts[parts.len() - 1];
        let digest = parts[parts.len() - 2];
        if digest.len() != DIGEST_LEN || secret.len() != SECRET_LEN {
            return Err(Error::InvalidJoinToken);
        }
        // swarmkit ignores a bad digest here and fails later on the digest check; we
        // refuse it now, and refuse a secret that is not base 36 either.
        let root_digest: [u8; 32] = base36_decode(digest, 32)
            .ok_or(Error::InvalidJoinToken)?
            .try_into()
            .expect("decoded to 32 bytes");
        if base36_decode(secret, SECRET_BYTES + 1).is_none() {
            return Err(Error::InvalidJoinToken);
        }
        Ok(JoinToken {
            version,
            fips,
            root_digest,
            secret: secret.to_ascii_lowercase(),
        })
    }

    /// Token format version (1, or 2 for swarmkit's FIPS-aware form).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether a version-2 token says the cluster mandates FIPS.
    pub fn fips(&self) -> bool {
        self.fips
    }

    /// The sha256 digest of the root CA bundle this token names.
    pub fn root_digest(&self) -> [u8; 32] {
        self.root_digest
    }

    /// The digest as swarmkit prints it: lowercase hex.
    pub fn root_digest_hex(&self) -> String {
        hex(&self.root_digest)
    }

    /// Whether `root` is the CA this token was made for. Public data: not constant time.
    pub fn ca_digest_matches(&self, root: &RootCa) -> bool {
        self.root_digest == root.digest()
    }

    /// For a joining node: turns the root CA bundle a manager served (fetched without
    /// trusting anyone) into a trusted [`RootCa`], only if it hashes to the token's digest.
    pub fn verify_root(&self, served_pem: &str) -> Result<RootCa> {
        let root = RootCa::from_pem(served_pem, None)?;
        if !self.ca_digest_matches(&root) {
            return Err(Error::RootDigestMismatch {
                expected: self.root_digest_hex(),
            });
        }
        Ok(root)
    }

    /// For a manager: whether `offered` is this very token, compared in constant time
    /// (the secret is what authorizes a join). A token that does not parse never matches.
    pub fn verify(&self, offered: &str) -> bool {
        let Ok(offered) = JoinToken::parse(offered) else {
            return false;
        };
        let same_secret = self.secret.as_bytes().ct_eq(offered.secret.as_bytes());
        let same_digest = self.root_digest.ct_eq(&offered.root_digest);
        bool::from(same_secret & same_digest)
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest = base36_encode(&self.root_digest, DIGEST_LEN);
        match self.version {
            2 => write!(
                f,
                "{PREFIX}-2-{}-{digest}-{}",
                u8::from(self.fips),
                self.secret
            ),
            _ => write!(f, "{PREFIX}-1-{digest}-{}", self.secret),
        }
    }
}

impl fmt::Debug for JoinToken {
    /// Never prints the secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("version", &self.version)
            .field("root_digest", &self.root_digest_hex())
            .field("secret", &"<redacted>")
            .finish()
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Big-endian bytes as a base-36 number (digits then lowercase letters, as Go's
/// `big.Int.Text(36)`), left-padded with zeros to `width`.
fn base36_encode(bytes: &[u8], width: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = bytes.to_vec();
    let mut out = Vec::new();
    while n.iter().any(|&b| b != 0) {
        // Long division of n by 36; the remainder is the next digit.
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 36) as u8;
            rem = cur % 36;
        }
        out.push(DIGITS[rem as usize]);
    }
    while out.len() < width {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

/// A base-36 number (either case, as Go accepts it) as `len` big-endian bytes; `None` if a
/// character is not a base-36 digit or the value does not fit.
fn base36_decode(s: &str, len: usize) -> Option<Vec<u8>> {
    let mut n = vec![0u8; len];
    for c in s.chars() {
        let digit = c.to_digit(36)?;
        // n = n * 36 + digit
        let mut carry = digit;
        for b in n.iter_mut().rev() {
            let cur = u32::from(*b) * 36 + carry;
            *b = (cur & 0xff) as u8;
            carry = cur >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_matches_go_big_int_text() {
        // 2^128 - 1 in base 36 is 25 digits: f5lxx1zz5pnorynqglhzmsp33.
        assert_eq!(base36_encode(&[0xff; 16], 25), "f5lxx1zz5pnorynqglhzmsp33");
        assert_eq!(base36_encode(&[0, 0, 1, 0], 5), "00074");
        assert_eq!(base36_encode(&[0; 4], 3), "000");
        assert_eq!(
            base36_decode("f5lxx1zz5pnorynqglhzmsp33", 16).unwrap(),
            [0xff; 16]
        );
        assert_eq!(base36_decode("74", 4).unwrap(), [0, 0, 1, 0]);
        assert_eq!(base36_decode("AbC", 4), base36_decode("abc", 4));
        // 2^128 does not fit in 16 bytes.
        assert!(base36_decode("f5lxx1zz5pnorynqglhzmsp34", 16).is_none());
        assert!(base36_decode("12-", 4).is_none());
    }

    #[test]
    fn every_digest_round_trips() {
        for fill in [0x00u8, 0x01, 0x7f, 0xff] {
            let mut d = [fill; 32];
            d[0] = fill.wrapping_add(3);
            let s = base36_encode(&d, DIGEST_LEN);
            assert_eq!(s.len(), DIGEST_LEN);
            assert_eq!(base36_decode(&s, 32).unwrap(), d);
        }
    }
}
