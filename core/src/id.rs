//! Object IDs as swarmkit makes them: 128 random bits written as 25 lowercase base-36
//! characters. Randomness is an input ([`IdGen`]) so that the core stays deterministic:
//! the daemon seeds [`SeededIds`] from the OS, tests use a fixed seed or [`SequentialIds`].

/// Length of an ID: 36^25 > 2^128, so every u128 fits.
pub const ID_LEN: usize = 25;

/// A source of new object IDs.
pub trait IdGen {
    fn next_id(&mut self) -> String;
}

impl<F: FnMut() -> String> IdGen for F {
    fn next_id(&mut self) -> String {
        self()
    }
}

/// Writes `n` as 25 base-36 digits, zero-padded (swarmkit's `identity.NewID` format).
pub fn format_id(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; ID_LEN];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n % 36) as usize];
        n /= 36;
    }
    out.iter().map(|&b| b as char).collect()
}

/// Whether `s` looks like an ID we make (25 lowercase base-36 characters).
pub fn is_id(s: &str) -> bool {
    s.len() == ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// Pseudo-random IDs from a 64-bit seed (splitmix64). Not for secrets: for object IDs,
/// where uniqueness is all that matters.
#[derive(Debug, Clone)]
pub struct SeededIds {
    state: u64,
}

impl SeededIds {
    pub fn new(seed: u64) -> Self {
        SeededIds { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl IdGen for SeededIds {
    fn next_id(&mut self) -> String {
        let hi = self.next_u64() as u128;
        let lo = self.next_u64() as u128;
        format_id((hi << 64) | lo)
    }
}

/// `000...001`, `000...002`, ...: IDs whose order is their creation order, for tests.
#[derive(Debug, Clone, Default)]
pub struct SequentialIds {
    next: u128,
}

impl IdGen for SequentialIds {
    fn next_id(&mut self) -> String {
        self.next += 1;
        format_id(self.next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_25_base36_chars() {
        assert_eq!(format_id(0), "0000000000000000000000000");
        assert_eq!(format_id(35), "000000000000000000000000z");
        assert_eq!(format_id(36), "0000000000000000000000010");
        assert_eq!(format_id(u128::MAX), "f5lxx1zz5pnorynqglhzmsp33");
        let mut ids = SeededIds::new(7);
        let a = ids.next_id();
        let b = ids.next_id();
        assert!(is_id(&a) && is_id(&b));
        assert_ne!(a, b);
        // Same seed, same IDs.
        assert_eq!(SeededIds::new(7).next_id(), a);
    }

    #[test]
    fn sequential_and_closure_generators() {
        let mut seq = SequentialIds::default();
        assert_eq!(seq.next_id(), "0000000000000000000000001");
        assert_eq!(seq.next_id(), "0000000000000000000000002");
        let mut n = 0;
        let mut gen = || {
            n += 1;
            format!("id{n}")
        };
        assert_eq!(gen.next_id(), "id1");
        assert!(!is_id("ABC"));
    }
}
