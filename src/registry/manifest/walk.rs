//! Hand-walking a parsed document: serde stops at the first error, but publishers need
//! every problem at once, each with the path the official registry would print.

use serde_json::{Map, Value};

use super::Issue;

pub(crate) struct Ctx {
    pub issues: Vec<Issue>,
    /// YAML turns unquoted `1.10` or `yes` into numbers and booleans; saying so saves a
    /// round of head-scratching when a string was expected.
    pub yaml: bool,
}

impl Ctx {
    pub fn new(yaml: bool) -> Self {
        Ctx {
            issues: Vec::new(),
            yaml,
        }
    }

    pub fn err(&mut self, path: &str, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.to_string(),
            message: message.into(),
        });
    }

    fn expected(&mut self, path: &str, what: &str, got: &Value) {
        let mut msg = format!("expected {what} (got {})", kind(got));
        if self.yaml && what == "a string" && matches!(got, Value::Number(_) | Value::Bool(_)) {
            msg.push_str("; quote the value in YAML");
        }
        self.err(path, msg);
    }
}

pub(crate) fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else {
        format!("{base}.{key}")
    }
}

pub(crate) fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// Shortens a user value for quoting in a message, so one huge value cannot bloat the report.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 80;
    if char_len(s) <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{:?}…", head)
    }
}

/// Length and content checks every string gets. Returns false if it reported anything.
pub(crate) fn check_str(ctx: &mut Ctx, path: &str, s: &str, max: usize, allow_empty: bool) -> bool {
    let n = char_len(s);
    if n == 0 && !allow_empty {
        ctx.err(path, "must not be empty");
        return false;
    }
    if n > max {
        ctx.err(path, format!("must be at most {max} characters (got {n})"));
        return false;
    }
    // NUL breaks C-string consumers (process arguments, environment, many databases).
    if s.contains('\0') {
        ctx.err(path, "must not contain NUL characters");
        return false;
    }
    true
}

pub(crate) fn as_object<'a>(
    ctx: &mut Ctx,
    v: &'a Value,
    path: &str,
) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            ctx.expected(path, "an object", other);
            None
        }
    }
}

/// A string list element, or any other string value that is not a field of an object.
pub(crate) fn as_str(ctx: &mut Ctx, v: &Value, path: &str, max: usize) -> Option<String> {
    match v {
        Value::String(s) => check_str(ctx, path, s, max, false).then(|| s.clone()),
        other => {
            ctx.expected(path, "a string", other);
            None
        }
    }
}

/// An object in the document, with the keys it may have already checked.
pub(crate) struct Obj<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

impl<'a> Obj<'a> {
    /// Checks `v` is an object and reports every key not in `allowed`.
    pub fn new(ctx: &mut Ctx, v: &'a Value, path: &str, allowed: &[&str]) -> Option<Self> {
        let map = as_object(ctx, v, path)?;
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                let message = if key == "<<" {
                    "YAML merge keys (<<) are not supported".to_string()
                } else {
                    let hint = suggest(key, allowed)
                        .map(|s| format!(" (did you mean {s}?)"))
                        .unwrap_or_default();
                    format!("unknown field{hint}")
                };
                ctx.err(&join(path, key), message);
            }
        }
        Some(Obj {
            map,
            path: path.to_string(),
        })
    }

    pub fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    fn string(
        &self,
        ctx: &mut Ctx,
        key: &str,
        max: usize,
        required: bool,
        allow_empty: bool,
    ) -> Option<String> {
        match self.map.get(key) {
            None => {
                if required {
                    ctx.err(&self.at(key), "is required");
                }
                None
            }
            Some(Value::String(s)) => {
                check_str(ctx, &self.at(key), s, max, allow_empty).then(|| s.clone())
            }
            Some(other) => {
                ctx.expected(&self.at(key), "a string", other);
                None
            }
        }
    }

    /// A required, non-empty string.
    pub fn req_str(&self, ctx: &mut Ctx, key: &str, max: usize) -> Option<String> {
        self.string(ctx, key, max, true, false)
    }

    /// An optional string that must not be empty when present.
    pub fn opt_str(&self, ctx: &mut Ctx, key: &str, max: usize) -> Option<String> {
        self.string(ctx, key, max, false, false)
    }

    /// An optional string where "" is meaningful (descriptions, defaults).
    pub fn opt_text(&self, ctx: &mut Ctx, key: &str, max: usize) -> Option<String> {
        self.string(ctx, key, max, false, true)
    }

    pub fn opt_bool(&self, ctx: &mut Ctx, key: &str) -> Option<bool> {
        match self.map.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                ctx.expected(&self.at(key), "a boolean", other);
                None
            }
        }
    }

    /// An optional array; past `max` items the rest are reported once and not looked at.
    pub fn opt_array(&self, ctx: &mut Ctx, key: &str, max: usize) -> Option<&'a [Value]> {
        match self.map.get(key)? {
            Value::Array(items) => {
                if items.len() > max {
                    ctx.err(
                        &self.at(key),
                        format!("must have at most {max} items (got {})", items.len()),
                    );
                }
                items.get(..max).or(Some(items.as_slice()))
            }
            other => {
                ctx.expected(&self.at(key), "an array", other);
                None
            }
        }
    }

    /// An optional list of strings.
    pub fn opt_str_list(
        &self,
        ctx: &mut Ctx,
        key: &str,
        max_items: usize,
        max_len: usize,
    ) -> Vec<String> {
        let path = self.at(key);
        let Some(items) = self.opt_array(ctx, key, max_items) else {
            return Vec::new();
        };
        items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| as_str(ctx, v, &index(&path, i), max_len))
            .collect()
    }

    pub fn opt_object(&self, ctx: &mut Ctx, key: &str) -> Option<&'a Map<String, Value>> {
        let v = self.map.get(key)?;
        as_object(ctx, v, &self.at(key))
    }
}

/// Guesses the key an author meant: the camelCase spelling of a snake_case key, or a case
/// mismatch. Old (2025-07-09) server.json and hand-written YAML hit both.
fn suggest<'b>(key: &str, allowed: &[&'b str]) -> Option<&'b str> {
    let mut camel = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' || c == '-' {
            upper = true;
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(key) || a.eq_ignore_ascii_case(&camel))
        .copied()
}
