//! Minimal edits of JSON-with-comments documents that keep everything they do not touch:
//! comments, key order, indentation, trailing commas. A small parser records each value's
//! byte span; an edit splices new text into those spans.

use serde_json::Value;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JsoncError {
    #[error("not valid JSON at byte {0}: {1}")]
    Syntax(usize, &'static str),
    #[error("{0} is not a JSON object")]
    NotObject(String),
}

#[derive(Debug)]
struct Node {
    start: usize,
    end: usize,
    members: Option<Vec<Member>>,
}

#[derive(Debug)]
struct Member {
    key: String,
    key_start: usize,
    value: Node,
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, what: &'static str) -> JsoncError {
        JsoncError::Syntax(self.i, what)
    }

    fn ws(&mut self) -> Result<(), JsoncError> {
        loop {
            match self.s.get(self.i) {
                Some(b' ' | b'\t' | b'\n' | b'\r') => self.i += 1,
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'/') => {
                    while self.i < self.s.len() && self.s[self.i] != b'\n' {
                        self.i += 1;
                    }
                }
                Some(b'/') if self.s.get(self.i + 1) == Some(&b'*') => {
                    self.i += 2;
                    loop {
                        if self.i + 1 >= self.s.len() {
                            return Err(self.err("unterminated comment"));
                        }
                        if self.s[self.i] == b'*' && self.s[self.i + 1] == b'/' {
                            self.i += 2;
                            break;
                        }
                        self.i += 1;
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn string(&mut self) -> Result<String, JsoncError> {
        let start = self.i;
        self.i += 1;
        loop {
            match self.s.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'\\') => self.i += 2,
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(_) => self.i += 1,
            }
        }
        let raw = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("bad UTF-8"))?;
        serde_json::from_str(raw).map_err(|_| JsoncError::Syntax(start, "bad string"))
    }

    fn value(&mut self) -> Result<Node, JsoncError> {
        self.ws()?;
        let start = self.i;
        match self.s.get(self.i) {
            None => Err(self.err("expected a value")),
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                loop {
                    self.ws()?;
                    match self.s.get(self.i) {
                        Some(b'}') => {
                            self.i += 1;
                            break;
                        }
                        Some(b'"') => {
                            let key_start = self.i;
                            let key = self.string()?;
                            self.ws()?;
                            if self.s.get(self.i) != Some(&b':') {
                                return Err(self.err("expected ':'"));
                            }
                            self.i += 1;
                            let value = self.value()?;
                            members.push(Member {
                                key,
                                key_start,
                                value,
                            });
                            self.ws()?;
                            match self.s.get(self.i) {
                                Some(b',') => self.i += 1,
                                Some(b'}') => {}
                                _ => return Err(self.err("expected ',' or '}'")),
                            }
                        }
                        _ => return Err(self.err("expected a key or '}'")),
                    }
                }
                Ok(Node {
                    start,
                    end: self.i,
                    members: Some(members),
                })
            }
            Some(b'[') => {
                self.i += 1;
                loop {
                    self.ws()?;
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        break;
                    }
                    self.value()?;
                    self.ws()?;
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {}
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
                Ok(Node {
                    start,
                    end: self.i,
                    members: None,
                })
            }
            Some(b'"') => {
                self.string()?;
                Ok(Node {
                    start,
                    end: self.i,
                    members: None,
                })
            }
            Some(_) => {
                while let Some(c) = self.s.get(self.i) {
                    if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r' | b'/') {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    return Err(self.err("expected a value"));
                }
                Ok(Node {
                    start,
                    end: self.i,
                    members: None,
                })
            }
        }
    }
}

fn parse(text: &str) -> Result<Node, JsoncError> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let root = p.value()?;
    p.ws()?;
    if p.i != text.len() {
        return Err(p.err("unexpected text after the document"));
    }
    if root.members.is_none() {
        return Err(JsoncError::NotObject("the document".into()));
    }
    Ok(root)
}

/// The leading whitespace of the line holding byte `pos`.
fn line_indent(text: &str, pos: usize) -> String {
    let line_start = text[..pos].rfind('\n').map(|i| i + 1).unwrap_or(0);
    text[line_start..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// The document's indent unit, guessed from the root's first member; two spaces otherwise.
fn indent_unit(text: &str, root: &Node) -> String {
    if let Some(m) = root.members.as_ref().and_then(|m| m.first()) {
        let ind = line_indent(text, m.key_start);
        let on_own_line = text[..m.key_start]
            .trim_end_matches([' ', '\t'])
            .ends_with('\n');
        if !ind.is_empty() && on_own_line {
            return ind;
        }
    }
    "  ".into()
}

/// Pretty-print `v` as it would appear at indentation `ind`.
pub fn render(v: &Value, ind: &str, unit: &str) -> String {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let inner = format!("{ind}{unit}");
            let items: Vec<String> = m
                .iter()
                .map(|(k, x)| {
                    format!(
                        "{inner}{}: {}",
                        Value::String(k.clone()),
                        render(x, &inner, unit)
                    )
                })
                .collect();
            format!("{{\n{}\n{ind}}}", items.join(",\n"))
        }
        Value::Array(a) if !a.is_empty() => {
            let inner = format!("{ind}{unit}");
            let items: Vec<String> = a
                .iter()
                .map(|x| format!("{inner}{}", render(x, &inner, unit)))
                .collect();
            format!("[\n{}\n{ind}]", items.join(",\n"))
        }
        other => other.to_string(),
    }
}

fn find<'a>(node: &'a Node, key: &str) -> Option<&'a Member> {
    node.members.as_ref()?.iter().find(|m| m.key == key)
}

fn splice(text: &str, start: usize, end: usize, with: &str) -> String {
    format!("{}{with}{}", &text[..start], &text[end..])
}

/// Insert member `key: value` into object `obj`.
fn insert(text: &str, obj: &Node, key: &str, value: &Value, unit: &str) -> String {
    let members = obj.members.as_deref().unwrap_or_default();
    match members.last() {
        Some(last) => {
            let ind = line_indent(text, members[0].key_start);
            let item = format!(
                ",\n{ind}{}: {}",
                Value::String(key.into()),
                render(value, &ind, unit)
            );
            splice(text, last.value.end, last.value.end, &item)
        }
        None => {
            let outer = line_indent(text, obj.start);
            let ind = format!("{outer}{unit}");
            let item = format!(
                "\n{ind}{}: {}",
                Value::String(key.into()),
                render(value, &ind, unit)
            );
            let interior = &text[obj.start + 1..obj.end - 1];
            if interior.trim().is_empty() {
                splice(
                    text,
                    obj.start + 1,
                    obj.end - 1,
                    &format!("{item}\n{outer}"),
                )
            } else {
                // Only comments inside: keep them, add after.
                splice(text, obj.end - 1, obj.end - 1, &format!("{item}\n{outer}"))
            }
        }
    }
}

/// Set `path… . key` to `value`, creating the objects on the path as needed. A blank
/// document is taken for `{}`.
pub fn set(text: &str, path: &[&str], key: &str, value: &Value) -> Result<String, JsoncError> {
    let text = if text.trim().is_empty() {
        "{}\n".to_string()
    } else {
        text.to_string()
    };
    let root = parse(&text)?;
    let unit = indent_unit(&text, &root);
    let mut node = &root;
    for (i, p) in path.iter().enumerate() {
        match find(node, p) {
            Some(m) if m.value.members.is_some() => node = &m.value,
            Some(_) => return Err(JsoncError::NotObject(path[..=i].join("."))),
            None => {
                // Build the rest of the path as one new value.
                let mut v = serde_json::json!({ key: value });
                for q in path[i + 1..].iter().rev() {
                    v = serde_json::json!({ *q: v });
                }
                return Ok(insert(&text, node, p, &v, &unit));
            }
        }
    }
    Ok(match find(node, key) {
        Some(m) => {
            let ind = line_indent(&text, m.key_start);
            splice(
                &text,
                m.value.start,
                m.value.end,
                &render(value, &ind, &unit),
            )
        }
        None => insert(&text, node, key, value, &unit),
    })
}

/// Remove `path… . key`; returns the new text and whether it was there.
pub fn remove(text: &str, path: &[&str], key: &str) -> Result<(String, bool), JsoncError> {
    if text.trim().is_empty() {
        return Ok((text.to_string(), false));
    }
    let root = parse(text)?;
    let mut node = &root;
    for p in path {
        match find(node, p) {
            Some(m) if m.value.members.is_some() => node = &m.value,
            _ => return Ok((text.to_string(), false)),
        }
    }
    let members = node.members.as_deref().unwrap_or_default();
    let Some(idx) = members.iter().position(|m| m.key == key) else {
        return Ok((text.to_string(), false));
    };
    let out = if members.len() == 1 {
        splice(text, node.start + 1, node.end - 1, "")
    } else if idx > 0 {
        splice(text, members[idx - 1].value.end, members[idx].value.end, "")
    } else {
        splice(text, members[0].key_start, members[1].key_start, "")
    };
    Ok((out, true))
}

/// The value at `path… . key`, for reading back (tests, `--print`).
pub fn get(text: &str, path: &[&str], key: &str) -> Result<Option<String>, JsoncError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let root = parse(text)?;
    let mut node = &root;
    for p in path {
        match find(node, p) {
            Some(m) => node = &m.value,
            None => return Ok(None),
        }
    }
    Ok(find(node, key).map(|m| text[m.value.start..m.value.end].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_then_remove_round_trips() {
        let orig = "{\n  // keep me\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\"}, /* and me */\n  },\n}\n";
        let v = json!({"url": "http://h/mcp"});
        let once = set(orig, &["mcpServers"], "b", &v).unwrap();
        assert!(
            once.contains("// keep me") && once.contains("/* and me */"),
            "{once}"
        );
        assert_eq!(set(&once, &["mcpServers"], "b", &v).unwrap(), once);
        let (back, had) = remove(&once, &["mcpServers"], "b").unwrap();
        assert!(had);
        assert_eq!(back, orig);
    }

    #[test]
    fn creates_missing_path_and_rejects_non_objects() {
        let out = set("", &["servers"], "x", &json!(1)).unwrap();
        assert_eq!(out, "{\n  \"servers\": {\n    \"x\": 1\n  }\n}\n");
        assert!(set("[1]", &[], "x", &json!(1)).is_err());
        assert!(set("{\"servers\": 3}", &["servers"], "x", &json!(1)).is_err());
        assert!(set("{\"a\": ", &[], "x", &json!(1)).is_err());
    }
}
