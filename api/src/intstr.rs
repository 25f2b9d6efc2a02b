//! `IntOrString`: fields such as `targetPort: 8080` / `targetPort: http` and
//! `maxSurge: 1` / `maxSurge: 25%` that take either an integer or a string.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An integer or a string, serialized as whichever it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    /// `8080`, `1`
    Int(i32),
    /// `http`, `25%`
    String(String),
}

impl IntOrString {
    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i32> {
        match self {
            IntOrString::Int(i) => Some(*i),
            IntOrString::String(_) => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            IntOrString::Int(_) => None,
            IntOrString::String(s) => Some(s),
        }
    }

    /// The percentage of a `"25%"` value; `None` for integers and other strings.
    pub fn percent(&self) -> Option<i32> {
        self.as_str()?.strip_suffix('%')?.parse().ok()
    }

    /// Resolves an int-or-percent against `total` (Kubernetes'
    /// `GetScaledValueFromIntOrPercent`): integers as they are, percentages of
    /// `total` rounded up or down.
    pub fn scaled_value(&self, total: i32, round_up: bool) -> Result<i32, String> {
        match self {
            IntOrString::Int(i) => Ok(*i),
            IntOrString::String(s) => {
                let p = self.percent().ok_or_else(|| {
                    format!("invalid value {s:?}: must be an integer or a percentage")
                })?;
                let product = i64::from(p) * i64::from(total);
                let v = if round_up {
                    product.div_euclid(100) + i64::from(product.rem_euclid(100) != 0)
                } else {
                    product.div_euclid(100)
                };
                i32::try_from(v).map_err(|_| format!("{s:?} of {total} is out of range"))
            }
        }
    }
}

impl From<i32> for IntOrString {
    fn from(i: i32) -> Self {
        IntOrString::Int(i)
    }
}

impl From<&str> for IntOrString {
    fn from(s: &str) -> Self {
        IntOrString::String(s.to_string())
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrString::Int(i) => serializer.serialize_i32(*i),
            IntOrString::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;

        impl Visitor<'_> for V {
            type Value = IntOrString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("{v} is out of range for a 32-bit integer")))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
                i32::try_from(v)
                    .map(IntOrString::Int)
                    .map_err(|_| E::custom(format!("{v} is out of range for a 32-bit integer")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<IntOrString, E> {
                if v.fract() == 0.0 && v >= f64::from(i32::MIN) && v <= f64::from(i32::MAX) {
                    // Integral and in range, so the conversion is exact.
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(IntOrString::Int(v as i32))
                } else {
                    Err(E::custom(format!("{v}: expected an integer or a string")))
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
                Ok(IntOrString::String(v.to_string()))
            }
        }

        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_ints_and_strings_and_serializes_back() {
        let i: IntOrString = serde_json::from_value(json!(8080)).unwrap();
        assert_eq!(i, IntOrString::Int(8080));
        assert_eq!(serde_json::to_value(&i).unwrap(), json!(8080));
        let s: IntOrString = serde_json::from_value(json!("http")).unwrap();
        assert_eq!(s.as_str(), Some("http"));
        assert_eq!(serde_json::to_value(&s).unwrap(), json!("http"));
        assert!(serde_json::from_value::<IntOrString>(json!(1.5)).is_err());
        assert!(serde_json::from_value::<IntOrString>(json!(5_000_000_000u64)).is_err());
        assert!(serde_json::from_value::<IntOrString>(json!(true)).is_err());
    }

    #[test]
    fn scales_percentages() {
        let p = IntOrString::from("25%");
        assert_eq!(p.percent(), Some(25));
        assert_eq!(p.scaled_value(10, true).unwrap(), 3);
        assert_eq!(p.scaled_value(10, false).unwrap(), 2);
        assert_eq!(p.scaled_value(4, true).unwrap(), 1);
        assert_eq!(IntOrString::Int(2).scaled_value(10, true).unwrap(), 2);
        assert!(IntOrString::from("x").scaled_value(10, true).is_err());
        assert_eq!(IntOrString::from("http").to_string(), "http");
    }
}
