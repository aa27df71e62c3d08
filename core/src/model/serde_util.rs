//! Serde helpers shared by the model: Go's `omitempty` test, `null` read as the default,
//! timestamps in Go's RFC3339Nano form, and `string_enum!` for Docker's string enums.
//!
//! The model mirrors Go's JSON tags so that what a Go client (the docker CLI) sends comes
//! back unchanged: a Go pointer is an `Option` skipped when `None`; a Go value with
//! `omitempty` is a plain field skipped when it equals its default (Go never sends it
//! then); a Go value without `omitempty` is always written.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serializer};

/// Go's `omitempty` for scalars: skip the field when it holds the zero value.
pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Reads `null` as the default value, as Go does for maps and slices.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Writes a float as Go does: integral values without a fraction (`0`, not `0.0`).
pub(crate) fn go_float<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        s.serialize_i64(*v as i64)
    } else {
        s.serialize_f64(*v)
    }
}

/// Formats a time as Go's `time.RFC3339Nano`: UTC, trailing zeros of the fraction dropped.
pub fn format_rfc3339_nano(t: &DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // "2024-01-02T03:04:05.120000000Z" -> "2024-01-02T03:04:05.12Z"
    match s.find('.') {
        Some(dot) => {
            let frac = s[dot + 1..s.len() - 1].trim_end_matches('0');
            if frac.is_empty() {
                format!("{}Z", &s[..dot])
            } else {
                format!("{}.{}Z", &s[..dot], frac)
            }
        }
        None => s,
    }
}

/// `#[serde(with = "rfc3339_nano")]` for a `DateTime<Utc>`.
pub(crate) mod rfc3339_nano {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339_nano(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        match s {
            None => Ok(DateTime::<Utc>::default()),
            Some(s) => DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom),
        }
    }
}

/// `#[serde(with = "rfc3339_nano_opt")]` for an `Option<DateTime<Utc>>`.
pub(crate) mod rfc3339_nano_opt {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_rfc3339_nano(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

/// A Docker string enum. Values this version does not know are kept in `Other` so that
/// they round-trip and validation can reject them with Docker's message.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, kept as it was sent.
            Other(String),
        }

        impl $name {
            /// Every value Docker defines, in Docker's spelling.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            /// Docker's spelling of the value.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(s) => s,
                }
            }

            /// Parses Docker's spelling; anything else becomes `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $( $text => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }

            /// False for `Other`.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}
pub(crate) use string_enum;

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn rfc3339_nano_trims_trailing_zeros_like_go() {
        let t = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_rfc3339_nano(&t), "2024-01-02T03:04:05Z");
        let t = t + chrono::Duration::nanoseconds(120_000_000);
        assert_eq!(format_rfc3339_nano(&t), "2024-01-02T03:04:05.12Z");
        let t = t + chrono::Duration::nanoseconds(3);
        assert_eq!(format_rfc3339_nano(&t), "2024-01-02T03:04:05.120000003Z");
    }
}
