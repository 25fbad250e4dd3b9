//! Deserialising "a list of numbers, or numbers by name", with serde's own
//! error messages (an untagged enum would only say "did not match").

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};

struct DenseOrNamed<T> {
    dense: fn(Vec<f64>) -> T,
    named: fn(BTreeMap<String, f64>) -> T,
    marker: PhantomData<T>,
}

impl<'de, T> Visitor<'de> for DenseOrNamed<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of numbers in schema order, or an object of numbers by feature name")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            values.push(v);
        }
        Ok((self.dense)(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut values = BTreeMap::new();
        while let Some((name, value)) = map.next_entry::<String, f64>()? {
            if values.insert(name.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format_args!("feature `{name}` is given twice")));
            }
        }
        Ok((self.named)(values))
    }
}

/// Deserialises a JSON array into `dense`, a JSON object into `named`.
pub(crate) fn dense_or_named<'de, D: Deserializer<'de>, T>(
    deserializer: D,
    dense: fn(Vec<f64>) -> T,
    named: fn(BTreeMap<String, f64>) -> T,
) -> Result<T, D::Error> {
    deserializer.deserialize_any(DenseOrNamed { dense, named, marker: PhantomData })
}
