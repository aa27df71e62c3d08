//! Sizes and CPU counts as the docker CLI parses them.
//!
//! `--limit-memory 512M` follows go-units' `RAMInBytes` (binary multiples, an optional
//! `i`/`b` suffix); `--limit-cpu 0.5` is a decimal turned into NanoCPUs exactly.

use anyhow::{bail, Result};

/// go-units `RAMInBytes`: `512m`, `1g`, `1.5GiB`, `100` (bytes).
pub fn ram_in_bytes(s: &str) -> Result<i64> {
    let bad = || anyhow::anyhow!("invalid size: '{s}'");
    let t = s.trim_end_matches(['b', 'B']);
    let t = t.trim_end_matches(['i', 'I']);
    let (num, unit) = match t.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => (&t[..t.len() - 1], Some(c.to_ascii_lowercase())),
        _ => (t, None),
    };
    let num = num.strip_suffix(' ').unwrap_or(num);
    if num.is_empty() || !num.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad());
    }
    let value: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match unit {
        None => 1.0,
        Some('k') => 1024.0,
        Some('m') => 1024f64.powi(2),
        Some('g') => 1024f64.powi(3),
        Some('t') => 1024f64.powi(4),
        Some('p') => 1024f64.powi(5),
        Some(_) => return Err(bad()),
    };
    Ok((value * mult) as i64)
}

/// Docker's `NanoCPUs` option: a decimal CPU count, exact to 1e-9.
pub fn nano_cpus(s: &str) -> Result<i64> {
    let bad = || {
        anyhow::anyhow!("invalid argument \"{s}\" for \"--cpus\" flag: failed to parse {s} as a rational number")
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if !int.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.trim_end_matches('0').len() > 9 {
        bail!("value is too precise");
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut frac9 = frac.trim_end_matches('0').to_string();
    while frac9.len() < 9 {
        frac9.push('0');
    }
    let frac: i64 = frac9.parse().map_err(|_| bad())?;
    Ok(int * 1_000_000_000 + frac)
}

/// go-units `BytesSize`: `64MiB`, `23.54GiB` (binary, 4 significant digits).
pub fn bytes_size(n: f64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = n;
    let mut i = 0;
    while size >= 1024.0 && i < UNITS.len() - 1 {
        size /= 1024.0;
        i += 1;
    }
    format!("{}{}", format_g4(size), UNITS[i])
}

/// Go's `%.4g` for the magnitudes sizes take (below 10000).
fn format_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let decimals = (4 - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_sizes_like_go_units() {
        assert_eq!(ram_in_bytes("512M").unwrap(), 536_870_912);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1_073_741_824);
        assert_eq!(ram_in_bytes("64MiB").unwrap(), 67_108_864);
        assert_eq!(ram_in_bytes("1.5k").unwrap(), 1536);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert_eq!(ram_in_bytes("100b").unwrap(), 100);
        assert!(ram_in_bytes("abc").is_err());
        assert!(ram_in_bytes("12x").is_err());
    }

    #[test]
    fn cpus_exact() {
        assert_eq!(nano_cpus("0.5").unwrap(), 500_000_000);
        assert_eq!(nano_cpus("0.25").unwrap(), 250_000_000);
        assert_eq!(nano_cpus("2").unwrap(), 2_000_000_000);
        assert!(nano_cpus("0.0000000001").is_err());
        assert!(nano_cpus("x").is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(bytes_size(67_108_864.0), "64MiB");
        assert_eq!(bytes_size(25_275_486_208.0), "23.54GiB");
        assert_eq!(bytes_size(1_073_741_824.0), "1GiB");
        assert_eq!(bytes_size(100.0), "100B");
    }
}
