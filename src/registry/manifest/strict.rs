//! Reading a document into a `serde_json::Value`, refusing duplicate keys.
//!
//! `serde_json::Value` keeps the last of two equal keys, so `{"name":"a","name":"b"}`
//! would silently mean "b"; a registry should not guess which one the author meant.
//! Both parsers bound nesting depth (128), so deep documents error instead of
//! overflowing the stack; YAML flow nesting is also capped before parsing, for speed.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::limits;

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-compatible value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("number {v} is not representable in JSON")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }

    // serde_yaml_ng hands tagged values (`!custom x`) over as enums.
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Value, A::Error> {
        Err(de::Error::custom("YAML tags like !name are not supported"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

pub(crate) fn from_json(body: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<StrictValue>(body)
        .map(|v| v.0)
        .map_err(|e| format!("invalid JSON: {e}"))
}

pub(crate) fn from_yaml(body: &[u8]) -> Result<Value, String> {
    if flow_depth(body) > limits::MAX_YAML_FLOW_DEPTH {
        return Err(format!(
            "invalid YAML: [ ] and {{ }} are nested more than {} levels deep",
            limits::MAX_YAML_FLOW_DEPTH
        ));
    }
    serde_yaml_ng::from_slice::<StrictValue>(body)
        .map(|v| v.0)
        .map_err(|e| format!("invalid YAML: {e}"))
}

/// Deepest bracket nesting, ignoring quoting: brackets inside strings can only make this
/// overestimate, and nobody writes dozens of unbalanced `[` in a description.
fn flow_depth(body: &[u8]) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in body {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}
