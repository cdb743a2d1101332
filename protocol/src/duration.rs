//! Human-readable durations (`"90s"`, `"1m"`, `"1h30m"`, `"500ms"`) used in
//! the worker configuration and the VideoCounter resource.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration written as a sum of `<integer><unit>` terms, units `ms`, `s`, `m`, `h`, `d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    pub const fn from_secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    pub const fn from_mins(m: u64) -> Self {
        Self(Duration::from_secs(m * 60))
    }

    pub fn as_millis(&self) -> u64 {
        self.0.as_millis() as u64
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDurationError(String);

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseDurationError {}

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl FromStr for HumanDuration {
    type Err = ParseDurationError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            ParseDurationError(format!(
                "invalid duration {text:?}: {why} (expected e.g. \"500ms\", \"30s\", \"1m\", \"1h30m\")"
            ))
        };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad("empty"));
        }
        let mut total: u64 = 0;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad("a number must come before each unit"));
            }
            let value: u64 = rest[..digits].parse().map_err(|_| bad("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            let factor = UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, f)| *f)
                .ok_or_else(|| bad(&format!("unknown unit {unit:?}")))?;
            total = value
                .checked_mul(factor)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| bad("too large"))?;
            rest = &rest[unit_len..];
        }
        Ok(Self(Duration::from_millis(total)))
    }
}

impl fmt::Display for HumanDuration {
    /// Canonical form: the largest units first, zero terms left out (`0s` for zero).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (name, factor) in UNITS {
            if ms >= factor {
                write!(f, "{}{}", ms / factor, name)?;
                ms %= factor;
            }
        }
        Ok(())
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u64 {
        text.parse::<HumanDuration>().unwrap().as_millis()
    }

    #[test]
    fn parses_single_and_combined_units() {
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("30s"), 30_000);
        assert_eq!(ms("1m"), 60_000);
        assert_eq!(ms("1h30m"), 5_400_000);
        assert_eq!(ms("2d"), 172_800_000);
        assert_eq!(ms("1m30s250ms"), 90_250);
    }

    #[test]
    fn rejects_bad_text_with_a_reason() {
        for bad in ["", "m", "10", "10x", "1.5m", "-1m", "99999999999999999999d"] {
            let err = bad.parse::<HumanDuration>().unwrap_err().to_string();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn displays_canonically_and_round_trips() {
        for (text, canonical) in [
            ("90s", "1m30s"),
            ("60m", "1h"),
            ("0ms", "0s"),
            ("1500ms", "1s500ms"),
        ] {
            let d: HumanDuration = text.parse().unwrap();
            assert_eq!(d.to_string(), canonical);
            assert_eq!(canonical.parse::<HumanDuration>().unwrap(), d);
        }
    }
}
