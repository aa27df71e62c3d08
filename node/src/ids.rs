//! Object IDs in Docker's form: 25 lowercase base-36 characters, random.

use std::io::Read;

/// A new random ID (128 bits from the kernel, base 36, 25 characters).
pub fn new_id() -> String {
    let mut buf = [0u8; 16];
    // /dev/urandom never fails on Linux once the system is up; fall back to time + pid.
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        buf = (t ^ ((std::process::id() as u128) << 64)).to_le_bytes();
    }
    let mut n = u128::from_le_bytes(buf);
    let mut out = Vec::with_capacity(25);
    for _ in 0..25 {
        let d = (n % 36) as u8;
        n /= 36;
        out.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
    }
    String::from_utf8(out).expect("ascii")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_25_base36_and_distinct() {
        let a = super::new_id();
        let b = super::new_id();
        assert_eq!(a.len(), 25);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_ne!(a, b);
    }
}
