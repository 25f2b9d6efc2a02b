//! Kubernetes resource quantities: `100m`, `0.5`, `2`, `64Mi`, `1Gi`, `500M`, `1e3`.
//!
//! A [`Quantity`] keeps the text the user wrote (so canonical JSON shows what
//! was applied) and its exact value in nano-units, computed with integer math.
//! Suffixes: binary `Ki Mi Gi Ti Pi Ei`, decimal `n u m k M G T P E`, and decimal
//! exponents `e3`/`E-2`. Negative and malformed quantities are errors; values
//! that do not fit are errors, never silently wrapped.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const NANOS_PER_UNIT: u128 = 1_000_000_000;
const NANOS_PER_MILLI: u128 = 1_000_000;

/// Why a quantity was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not a number with an optional suffix.
    #[error(
        "quantity {0:?} is not valid: expected a number with an optional suffix, \
         such as 100m, 0.5, 2, 64Mi, 1Gi, 500M or 1e3"
    )]
    Malformed(String),
    /// Below zero.
    #[error("quantity {0:?} must not be negative")]
    Negative(String),
    /// Too large to represent (or to return in the requested unit).
    #[error("quantity {0:?} is too large")]
    Overflow(String),
}

/// A non-negative resource quantity such as `250m` CPU or `64Mi` memory.
///
/// Equality and ordering compare values (`1Gi == 1024Mi`); serialization writes
/// the original text.
#[derive(Clone)]
pub struct Quantity {
    text: String,
    nanos: u128,
}

impl Quantity {
    /// Parses a quantity string.
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        Ok(Quantity {
            text: s.to_string(),
            nanos: parse_nanos(s)?,
        })
    }

    /// A quantity of `millis` thousandths (`1500` → `1500m`, `2000` → `2`).
    pub fn from_millis(millis: u64) -> Quantity {
        let text = if millis.is_multiple_of(1000) {
            (millis / 1000).to_string()
        } else {
            format!("{millis}m")
        };
        Quantity {
            text,
            nanos: u128::from(millis) * NANOS_PER_MILLI,
        }
    }

    /// A whole number of units, written with the largest exact binary suffix
    /// (`4294967296` → `4Gi`); meant for bytes.
    pub fn from_bytes(bytes: u64) -> Quantity {
        const SUFFIXES: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        let mut text = bytes.to_string();
        if bytes != 0 {
            for (i, suffix) in SUFFIXES.iter().enumerate().rev() {
                let unit = 1u64 << (10 * (i + 1));
                if bytes.is_multiple_of(unit) {
                    text = format!("{}{suffix}", bytes / unit);
                    break;
                }
            }
        }
        Quantity {
            text,
            nanos: u128::from(bytes) * NANOS_PER_UNIT,
        }
    }

    /// A whole number of units, written as a plain number.
    pub fn from_value(value: u64) -> Quantity {
        Quantity {
            text: value.to_string(),
            nanos: u128::from(value) * NANOS_PER_UNIT,
        }
    }

    /// The text as written (`"64Mi"`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The exact value in nano-units (values finer than 1n are rounded up).
    pub fn as_nanos(&self) -> u128 {
        self.nanos
    }

    /// The value in thousandths, rounded up (`0.5` → 500; `1n` → 1): CPU millicores.
    pub fn to_millis(&self) -> Result<u64, QuantityError> {
        u64::try_from(self.nanos.div_ceil(NANOS_PER_MILLI))
            .map_err(|_| QuantityError::Overflow(self.text.clone()))
    }

    /// The value in whole units, rounded up (`1.5Gi` → 1610612736; `100m` → 1).
    pub fn value(&self) -> Result<u64, QuantityError> {
        u64::try_from(self.nanos.div_ceil(NANOS_PER_UNIT))
            .map_err(|_| QuantityError::Overflow(self.text.clone()))
    }

    /// The value in bytes (same as [`Quantity::value`]); for memory and storage.
    pub fn to_bytes(&self) -> Result<u64, QuantityError> {
        self.value()
    }

    /// Whether the value is zero.
    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }
}

/// Parses `s` into nano-units.
fn parse_nanos(s: &str) -> Result<u128, QuantityError> {
    let malformed = || QuantityError::Malformed(s.to_string());
    let overflow = || QuantityError::Overflow(s.to_string());

    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(num_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if frac_part.contains('.') || (int_part.is_empty() && frac_part.is_empty()) {
        return Err(malformed());
    }

    // value = digits * 10^(exp10) * 2^(exp2), digits without the decimal point.
    let (dec_exp, exp2): (i64, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        _ => {
            let exp = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))
                .ok_or_else(malformed)?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            match exp.parse::<i32>() {
                Ok(e) => (i64::from(e), 0),
                // Absurdly small exponents round up to 1n below; large ones overflow.
                Err(_) if exp.starts_with('-') => (-1000, 0),
                Err(_) => (i64::from(i32::MAX), 0),
            }
        }
    };

    let all_digits = format!("{int_part}{frac_part}");
    let significant = all_digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    if negative {
        return Err(QuantityError::Negative(s.to_string()));
    }
    if significant.len() > 38 {
        return Err(overflow());
    }
    let digits: u128 = significant.parse().map_err(|_| malformed())?;
    let frac_len = i64::try_from(frac_part.len()).map_err(|_| malformed())?;
    let exp10 = dec_exp + 9 - frac_len;

    let scaled = digits.checked_mul(1u128 << exp2).ok_or_else(overflow)?;
    if exp10 >= 0 {
        let pow = u32::try_from(exp10)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
            .ok_or_else(overflow)?;
        scaled.checked_mul(pow).ok_or_else(overflow)
    } else {
        match u32::try_from(-exp10)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
        {
            Some(den) => Ok(scaled.div_ceil(den)),
            // Smaller than one nano-unit but not zero: round up, as Kubernetes does.
            None => Ok(1),
        }
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Quantity::parse(s)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Quantity({:?})", self.text)
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct QuantityVisitor;

        impl Visitor<'_> for QuantityVisitor {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity such as 500m, 2 or 64Mi")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity::from_value(v))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Quantity, E> {
                if !v.is_finite() {
                    return Err(E::custom(QuantityError::Malformed(v.to_string())));
                }
                // Rust prints f64 without exponents: 0.5 → "0.5", 2.0 → "2".
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }
        }

        deserializer.deserialize_any(QuantityVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn cpu_quantities_in_millis() {
        assert_eq!(q("100m").to_millis().unwrap(), 100);
        assert_eq!(q("0.5").to_millis().unwrap(), 500);
        assert_eq!(q("2").to_millis().unwrap(), 2000);
        assert_eq!(q(".25").to_millis().unwrap(), 250);
        assert_eq!(q("1.").to_millis().unwrap(), 1000);
        assert_eq!(q("+3").to_millis().unwrap(), 3000);
        assert_eq!(q("1e3").to_millis().unwrap(), 1_000_000);
        assert_eq!(q("1E-3").to_millis().unwrap(), 1);
        // Finer than a milli rounds up, as Kubernetes' MilliValue does.
        assert_eq!(q("1n").to_millis().unwrap(), 1);
        assert_eq!(q("1500u").to_millis().unwrap(), 2);
        assert_eq!(q("0").to_millis().unwrap(), 0);
        assert_eq!(q("0.0001m").as_nanos(), 100);
    }

    #[test]
    fn memory_quantities_in_bytes() {
        assert_eq!(q("64Mi").to_bytes().unwrap(), 64 * 1024 * 1024);
        assert_eq!(q("1Gi").to_bytes().unwrap(), 1 << 30);
        assert_eq!(q("1.5Gi").to_bytes().unwrap(), 3 << 29);
        assert_eq!(q("500M").to_bytes().unwrap(), 500_000_000);
        assert_eq!(q("1k").value().unwrap(), 1000);
        assert_eq!(q("1Ki").value().unwrap(), 1024);
        assert_eq!(q("2Ti").value().unwrap(), 2 << 40);
        assert_eq!(q("1Pi").value().unwrap(), 1 << 50);
        assert_eq!(q("3Ei").value().unwrap(), 3 << 60);
        assert_eq!(q("7E").value().unwrap(), 7_000_000_000_000_000_000);
        assert_eq!(q("2G").value().unwrap(), 2_000_000_000);
        assert_eq!(q("4T").value().unwrap(), 4_000_000_000_000);
        assert_eq!(q("5P").value().unwrap(), 5_000_000_000_000_000);
        assert_eq!(q("12e6").value().unwrap(), 12_000_000);
        assert_eq!(q("1.5e+2").value().unwrap(), 150);
        // Fractions of a byte round up.
        assert_eq!(q("100m").value().unwrap(), 1);
    }

    #[test]
    fn rejects_malformed_and_negative() {
        for bad in [
            "", "abc", "1.2.3", ".", "Mi", "1mi", "1KB", "1 Gi", " 1", "1e", "1e+", "1ee3", "1Gii",
            "0x10", "--1", "1-",
        ] {
            let e = Quantity::parse(bad).unwrap_err();
            assert_eq!(e, QuantityError::Malformed(bad.to_string()), "{bad:?}");
        }
        assert_eq!(
            Quantity::parse("-1").unwrap_err().to_string(),
            "quantity \"-1\" must not be negative"
        );
        assert!(matches!(
            Quantity::parse("-100m"),
            Err(QuantityError::Negative(_))
        ));
        assert!(q("-0").is_zero());
        assert!(
            Quantity::parse("abc")
                .unwrap_err()
                .to_string()
                .contains("such as 100m")
        );
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert!(matches!(
            Quantity::parse("1e100"),
            Err(QuantityError::Overflow(_))
        ));
        assert!(matches!(
            Quantity::parse("1e99999999999"),
            Err(QuantityError::Overflow(_))
        ));
        assert!(matches!(
            Quantity::parse(&"9".repeat(40)),
            Err(QuantityError::Overflow(_))
        ));
        // Parses, but does not fit the requested unit.
        let big = q("100Ei");
        assert!(matches!(big.value(), Err(QuantityError::Overflow(_))));
        assert!(matches!(
            q("1E").to_millis(),
            Err(QuantityError::Overflow(_))
        ));
        assert_eq!(q("1E").value().unwrap(), 1_000_000_000_000_000_000);
        // Tiny values round up to one nano-unit; zero stays zero.
        assert_eq!(q("1e-99999999999").as_nanos(), 1);
        assert_eq!(q("0e999").as_nanos(), 0);
    }

    #[test]
    fn compares_by_value_and_keeps_text() {
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("0.5"), q("500m"));
        assert!(q("100m") < q("1"));
        assert!(q("1G") < q("1Gi"));
        assert_eq!(q("1024Mi").to_string(), "1024Mi");
        assert_eq!(format!("{:?}", q("2")), "Quantity(\"2\")");
    }

    #[test]
    fn constructors_pick_readable_text() {
        assert_eq!(Quantity::from_millis(1500).as_str(), "1500m");
        assert_eq!(Quantity::from_millis(2000).as_str(), "2");
        assert_eq!(Quantity::from_bytes(4 << 30).as_str(), "4Gi");
        assert_eq!(Quantity::from_bytes(1536).as_str(), "1536");
        assert_eq!(Quantity::from_bytes(3 << 19).as_str(), "1536Ki");
        assert_eq!(Quantity::from_bytes(0).as_str(), "0");
        assert_eq!(Quantity::from_value(7).to_millis().unwrap(), 7000);
        assert_eq!(Quantity::from_bytes(4 << 30), q("4Gi"));
    }

    #[test]
    fn serde_keeps_strings_and_accepts_numbers() {
        let v: Quantity = serde_json::from_value(serde_json::json!("64Mi")).unwrap();
        assert_eq!(serde_json::to_value(&v).unwrap(), serde_json::json!("64Mi"));
        let n: Quantity = serde_json::from_value(serde_json::json!(2)).unwrap();
        assert_eq!(n.as_str(), "2");
        assert_eq!(n.to_millis().unwrap(), 2000);
        let f: Quantity = serde_json::from_value(serde_json::json!(0.5)).unwrap();
        assert_eq!(f.as_str(), "0.5");
        assert_eq!(f.to_millis().unwrap(), 500);
        let e = serde_json::from_value::<Quantity>(serde_json::json!(-1)).unwrap_err();
        assert!(e.to_string().contains("must not be negative"), "{e}");
        let e = serde_json::from_value::<Quantity>(serde_json::json!(true)).unwrap_err();
        assert!(e.to_string().contains("a quantity such as"), "{e}");
        let e = serde_json::from_value::<Quantity>(serde_json::json!("1Q")).unwrap_err();
        assert!(e.to_string().contains("\"1Q\" is not valid"), "{e}");
    }
}
