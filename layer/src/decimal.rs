//! Integers written in JSON as decimal strings: `#[serde(with = "crate::decimal")]`.
//!
//! JSON numbers above 2^53 lose precision in most readers (JavaScript, jq, anything
//! that parses numbers as doubles), and nanosecond sums, Unix timestamps in
//! nanoseconds and sums of squares pass it. Written as `"12345678901234567890"`, they
//! reach every reader exactly. Reading accepts the string, and also a plain JSON
//! integer, as long as it fits the type.

use std::fmt::Display;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;

/// Writes `value` as a decimal string.
pub(crate) fn serialize<T: Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// Reads a decimal string (or a JSON integer) into `T`.
pub(crate) fn deserialize<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: FromStr + TryFrom<u64> + TryFrom<i64>,
    D: Deserializer<'de>,
{
    struct Decimal<T>(std::marker::PhantomData<T>);

    impl<T: FromStr + TryFrom<u64> + TryFrom<i64>> Visitor<'_> for Decimal<T> {
        type Value = T;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer as a decimal string")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            // `FromStr` of the integer types takes a leading `+`; JSON writers do not
            // write one, and a reader should not guess at such a value.
            match v.strip_prefix('+') {
                None => v
                    .parse()
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self)),
                Some(_) => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
            }
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            T::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }
    }

    d.deserialize_any(Decimal(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Sums {
        #[serde(with = "super")]
        big: u128,
        #[serde(with = "super")]
        signed: i128,
        #[serde(with = "super")]
        small: u64,
    }

    #[test]
    fn big_integers_round_trip_as_strings() {
        let sums = Sums {
            big: u128::MAX,
            signed: -(1 << 100),
            small: (1 << 53) + 1,
        };
        let json = serde_json::to_string(&sums).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"big":"{}","signed":"{}","small":"9007199254740993"}}"#,
                u128::MAX,
                -(1i128 << 100)
            )
        );
        assert_eq!(serde_json::from_str::<Sums>(&json).unwrap(), sums);
    }

    #[test]
    fn plain_integers_are_read_and_bad_values_refused() {
        let read = |json: &str| serde_json::from_str::<Sums>(json);
        assert_eq!(
            read(r#"{"big": 5, "signed": -3, "small": 7}"#).unwrap(),
            Sums {
                big: 5,
                signed: -3,
                small: 7
            }
        );
        for bad in [
            r#"{"big": "5x", "signed": "0", "small": "0"}"#,
            r#"{"big": "+5", "signed": "0", "small": "0"}"#,
            r#"{"big": "5", "signed": "0", "small": -1}"#,
            r#"{"big": "5", "signed": "0", "small": "18446744073709551616"}"#,
            r#"{"big": 1.5, "signed": "0", "small": "0"}"#,
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
    }
}
