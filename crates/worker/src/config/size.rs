//! A size setting (`--max-transcript-size 256MiB`): bytes, read with a binary or decimal unit
//! and shown in the largest binary unit that fits, so a message names it as the operator wrote
//! it.

use std::fmt;
use std::str::FromStr;

/// A number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

const UNITS: [(&str, u64); 10] = [
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
    ("B", 1),
];

impl FromStr for ByteSize {
    type Err = String;

    /// `1048576`, `512KiB`, `256MiB`, `1GiB` (also `K`/`M`/`G`, binary, and `KB`/`MB`/`GB`,
    /// decimal); case-insensitive, a space before the unit allowed.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (digits, unit) = (&t[..split], t[split..].trim());
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a size (e.g. 256MiB, 1GiB, 1048576)"))?;
        let scale = if unit.is_empty() {
            1
        } else {
            UNITS
                .iter()
                .find(|(u, _)| u.eq_ignore_ascii_case(unit))
                .map(|(_, scale)| *scale)
                .ok_or_else(|| format!("unknown unit {unit:?} (B, KiB, MiB, GiB, KB, MB, GB)"))?
        };
        n.checked_mul(scale)
            .map(Self)
            .ok_or_else(|| format!("{s:?} is too large"))
    }
}

/// `--max-transcript-size`: a size of at least 1 MiB (below that, ordinary sessions would fail).
pub(super) fn parse_session_cap(s: &str) -> Result<ByteSize, String> {
    let size: ByteSize = s.parse()?;
    if size.0 < 1 << 20 {
        return Err(format!(
            "{size} is below 1 MiB: ordinary sessions hold more"
        ));
    }
    Ok(size)
}

impl fmt::Display for ByteSize {
    /// `256 MiB`, `19.1 MiB`, `512 bytes`: the largest binary unit it reaches.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, scale) in &UNITS[..3] {
            if self.0 >= *scale {
                if self.0.is_multiple_of(*scale) {
                    return write!(f, "{} {unit}", self.0 / scale);
                }
                #[expect(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
                return write!(f, "{:.1} {unit}", self.0 as f64 / *scale as f64);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn sizes_read_with_their_units_and_show_in_the_largest() {
        for (text, bytes) in [
            ("256MiB", 256 << 20),
            ("256 mib", 256 << 20),
            ("1GiB", 1 << 30),
            ("1G", 1 << 30),
            ("512KiB", 512 << 10),
            ("10MB", 10_000_000),
            ("1048576", 1 << 20),
            ("7B", 7),
        ] {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in [
            "",
            "MiB",
            "1.5MiB",
            "12 parsecs",
            "-1",
            "99999999999999999999GiB",
        ] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?} was read");
        }
        assert_eq!(ByteSize(256 << 20).to_string(), "256 MiB");
        assert_eq!(ByteSize(20_000_000).to_string(), "19.1 MiB");
        assert_eq!(ByteSize(1536).to_string(), "1.5 KiB");
        assert_eq!(ByteSize(512).to_string(), "512 bytes");
    }
}
