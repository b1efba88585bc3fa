//! Handler versions: 1 to 4 dot-separated non-negative integers, compared numerically part by
//! part, with missing parts counting as zero (`1.0` == `1.0.0.0`).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::error::PackageError;

/// The most parts a version may have.
const MAX_PARTS: usize = 4;

#[derive(Clone, Debug)]
pub struct Version {
    /// The parts as written (without leading zeros), so `2.1` is shown as `2.1`.
    parts: Vec<u64>,
}

impl Version {
    /// The four parts, missing ones as zero: what equality and ordering are defined on.
    fn padded(&self) -> [u64; MAX_PARTS] {
        let mut padded = [0; MAX_PARTS];
        for (slot, part) in padded.iter_mut().zip(&self.parts) {
            *slot = *part;
        }
        padded
    }

    /// A text that sorts like the version and is equal for equal versions (`1.0` and `1.0.0.0`):
    /// stores use it for ordering and for their uniqueness constraint.
    pub fn sort_key(&self) -> String {
        self.padded()
            .iter()
            .map(|part| format!("{part:020}"))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The major part, which names the contract generation (`runtime_version`).
    pub fn major(&self) -> u64 {
        self.padded()[0]
    }
}

impl FromStr for Version {
    type Err = PackageError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || PackageError::InvalidVersion {
            text: text.to_string(),
        };
        let parts = text
            .split('.')
            .map(|part| {
                // `u64::from_str` accepts a leading `+`; versions are digits only.
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid());
                }
                part.parse::<u64>().map_err(|_| invalid())
            })
            .collect::<Result<Vec<_>, _>>()?;
        if parts.len() > MAX_PARTS {
            return Err(invalid());
        }
        Ok(Version { parts })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self
            .parts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(".");
        f.write_str(&text)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.padded() == other.padded()
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.padded().cmp(&other.padded())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        text.parse().unwrap()
    }

    #[test]
    fn parts_compare_numerically() {
        assert!(v("1.0.0.10") > v("1.0.0.9"));
        assert!(v("2") > v("1.9.9.9"));
        assert!(v("1.10") > v("1.9"));
        assert!(v("0.0.0.1") > v("0"));
    }

    #[test]
    fn missing_parts_are_zero() {
        assert_eq!(v("1.0"), v("1.0.0.0"));
        assert_eq!(v("1"), v("1.0.0"));
        assert_eq!(v("1.0").sort_key(), v("1.0.0.0").sort_key());
        assert_eq!(v("01.2").to_string(), "1.2");
    }

    #[test]
    fn sort_key_orders_like_versions() {
        let mut versions = ["1.0.0.10", "1.0.0.9", "10", "9.9", "1.2"].map(v);
        versions.sort();
        let mut keys = versions.iter().map(Version::sort_key).collect::<Vec<_>>();
        let sorted = keys.clone();
        keys.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn malformed_versions_are_rejected() {
        for bad in [
            "",
            ".",
            "1.",
            ".1",
            "1..2",
            "1.2.3.4.5",
            "-1",
            "+1",
            "1.a",
            "v1",
            "1 .2",
            "99999999999999999999999",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
        assert!(v("18446744073709551615").major() == u64::MAX);
    }
}
