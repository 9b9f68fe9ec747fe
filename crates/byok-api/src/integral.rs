//! Integers as JSON Schema has them: `2` and `2.0` are the same integer (the OpenAPI document
//! says `"type": "integer"`, and a client may well send `2.0`), in a JSON body or a query string.
//! A fraction, a value out of range or anything else is refused. serde's own integer types
//! refuse `2.0`, hence these `deserialize_with` helpers.

use serde::de::{self, Deserializer, Visitor};

/// Reads an integer; from text (`"7"`) only when `text` (query strings are all text; in a JSON
/// body a string is not an integer).
struct Integral {
    text: bool,
}

impl Visitor<'_> for Integral {
    type Value = i128;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(i128::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(i128::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
        // Only floats that are whole numbers and small enough to be exact.
        if v.fract() == 0.0 && v.abs() < 9_007_199_254_740_992.0 {
            Ok(v as i128)
        } else {
            Err(E::invalid_value(de::Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
        if !self.text {
            return Err(E::invalid_type(de::Unexpected::Str(v), &self));
        }
        match v.parse::<i128>() {
            Ok(n) => Ok(n),
            Err(_) => v.parse::<f64>().map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self)).and_then(|f| self.visit_f64(f)),
        }
    }
}

fn integral<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D, text: bool) -> Result<T, D::Error> {
    let n = d.deserialize_any(Integral { text })?;
    T::try_from(n).map_err(|_| de::Error::custom(format!("{n} is out of range")))
}

/// A `u32` in a JSON body, from `7` or `7.0`.
pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    integral(d, false)
}

/// An `i64` in a JSON body, from `7` or `7.0`.
pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    integral(d, false)
}

/// An `i64` in a query string, from `7` or `7.0`.
pub fn query_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    integral(d, true)
}

/// An optional `u32`: absent or `null` is `None`.
pub fn option_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    struct Maybe;
    impl<'de> Visitor<'de> for Maybe {
        type Value = Option<u32>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an integer or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<u32>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<u32>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<u32>, D::Error> {
            u32(d).map(Some)
        }
    }
    d.deserialize_option(Maybe)
}

#[cfg(test)]
mod tests {
    #[derive(Debug, serde::Deserialize)]
    struct Body {
        #[serde(deserialize_with = "super::u32")]
        n: u32,
        #[serde(default, deserialize_with = "super::option_u32")]
        m: Option<u32>,
    }

    #[test]
    fn whole_floats_are_integers_and_nothing_else_is() {
        let n = |text: &str| serde_json::from_str::<Body>(text).map(|b| (b.n, b.m)).map_err(|e| e.to_string());
        assert_eq!(n(r#"{"n": 7}"#), Ok((7, None)));
        assert_eq!(n(r#"{"n": 7.0, "m": 2.0}"#), Ok((7, Some(2))));
        assert_eq!(n(r#"{"n": 7, "m": null}"#), Ok((7, None)));
        for bad in
            [r#"{"n": "7"}"#, r#"{"n": 7.5}"#, r#"{"n": -1}"#, r#"{"n": 4294967296}"#, r#"{"n": "x"}"#, r#"{"n": true}"#, r#"{"n": 1e300}"#]
        {
            assert!(n(bad).is_err(), "{bad}");
        }
        #[derive(Debug, serde::Deserialize)]
        struct Query {
            #[serde(deserialize_with = "super::query_i64")]
            after: i64,
        }
        let q = |text: &str| serde_urlencoded::from_str::<Query>(text).map(|q| q.after).ok();
        assert_eq!((q("after=5"), q("after=5.0"), q("after=-2"), q("after=x"), q("after=5.5")), (Some(5), Some(5), Some(-2), None, None));
    }
}
