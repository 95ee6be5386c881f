//! Byte-level help for the multiplexer's hot path: find where a JSON-RPC message's
//! top-level `id` (and whether it has a `method`) sits, so the id can be swapped in place
//! instead of parsing the whole message into a `serde_json::Value` and writing it out
//! again. Anything unusual (duplicate keys, not an object) answers `None` and the caller
//! takes the general path.

use std::ops::Range;

/// Where the top-level keys the multiplexer cares about are.
#[derive(Debug, Default, PartialEq)]
pub struct Head {
    /// The byte range of the `id` value.
    pub id: Option<Range<usize>>,
    pub has_method: bool,
}

/// Scan the top level of a JSON object. Does not validate the nested values beyond
/// balancing brackets and strings: callers validate separately where it matters.
pub fn head(b: &[u8]) -> Option<Head> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    let mut out = Head::default();
    loop {
        i = skip_ws(b, i);
        match b.get(i)? {
            b'}' => return Some(out),
            b'"' => {}
            _ => return None,
        }
        let key_start = i + 1;
        i = skip_string(b, i)?;
        let key = &b[key_start..i - 1];
        i = skip_ws(b, i);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(b, i + 1);
        let start = i;
        i = skip_value(b, i)?;
        match key {
            b"id" => {
                if out.id.is_some() {
                    return None;
                }
                out.id = Some(start..i);
            }
            b"method" => {
                if out.has_method {
                    return None;
                }
                out.has_method = true;
            }
            _ => {}
        }
        i = skip_ws(b, i);
        match b.get(i)? {
            b',' => i += 1,
            b'}' => return Some(out),
            _ => return None,
        }
    }
}

/// `b` with `range` replaced by `with`.
pub fn splice(b: &[u8], range: Range<usize>, with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() - range.len() + with.len() + 1);
    out.extend_from_slice(&b[..range.start]);
    out.extend_from_slice(with);
    out.extend_from_slice(&b[range.end..]);
    out
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// `b[i]` is the opening quote; the index after the closing one.
fn skip_string(b: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// The index after the value starting at `b[i]`.
fn skip_value(b: &[u8], mut i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match b.get(i)? {
                    b'"' => {
                        i = skip_string(b, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let start = i;
            while let Some(c) = b.get(i) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                i += 1;
            }
            (i > start).then_some(i)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_top_level_id_only() {
        let m = br#"{"jsonrpc":"2.0","result":{"id":7,"s":"a\"}\\","l":[1,{"id":2}]}, "id" : 42 }"#;
        let h = head(m).unwrap();
        assert!(!h.has_method);
        assert_eq!(&m[h.id.clone().unwrap()], b"42");
        let out = splice(m, h.id.unwrap(), br#""abc""#);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], "abc");
        assert_eq!(v["result"]["id"], 7);
        assert_eq!(v["result"]["l"][1]["id"], 2);
    }

    #[test]
    fn methods_strings_and_odd_input() {
        let h = head(br#"{"method":"x","id":"a,b}"}"#).unwrap();
        assert!(h.has_method);
        assert_eq!(h.id, Some(19..25));
        assert_eq!(head(br#"{"method":"x"}"#).unwrap().id, None);
        assert_eq!(head(b"{}"), Some(Head::default()));
        // Duplicates and non-objects go the general way.
        assert_eq!(head(br#"{"id":1,"id":2}"#), None);
        assert_eq!(head(b"[1]"), None);
        assert_eq!(head(br#"{"id":1"#), None);
        assert_eq!(head(br#"{"id":"#), None);
        assert_eq!(head(br#"{"a":{"b":[}"#), None);
    }
}
