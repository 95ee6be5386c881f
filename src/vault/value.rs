//! [`SecretValue`]: plaintext that cleans up after itself and never prints.

use std::fmt;

use zeroize::Zeroizing;

/// A secret in clear: wiped from memory on drop, `[redacted]` in every `Debug`/`Display`,
/// and deliberately not `Serialize`, so it cannot end up in a response or a log by accident.
/// Read it with [`SecretValue::expose`], at the last possible moment.
#[derive(Clone)]
pub struct SecretValue(Zeroizing<String>);

impl SecretValue {
    pub fn new(value: String) -> Self {
        SecretValue(Zeroizing::new(value))
    }

    /// Take ownership of decrypted bytes; invalid UTF-8 is wiped before it is reported.
    pub(crate) fn from_utf8(bytes: Zeroizing<Vec<u8>>) -> Option<Self> {
        let mut bytes = bytes;
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(s) => Some(SecretValue::new(s)),
            Err(e) => {
                drop(Zeroizing::new(e.into_bytes()));
                None
            }
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Byte equality, for comparing configurations; not meant for authentication checks.
impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

/// Request bodies deserialize straight into a `SecretValue`, so the parsed copy is wiped too.
/// Only strings are accepted, and serde's error for anything else names the type, not the
/// content.
impl<'de> serde::Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretValue::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_content() {
        let v = SecretValue::new("hunter2-hunter2".into());
        assert_eq!(format!("{v}"), "[redacted]");
        assert_eq!(format!("{v:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&v)), "Some([redacted])");
        assert_eq!(v.expose(), "hunter2-hunter2");
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert!(SecretValue::from_utf8(Zeroizing::new(vec![0xff, 0xfe])).is_none());
        let ok = SecretValue::from_utf8(Zeroizing::new(b"abc".to_vec())).unwrap();
        assert_eq!(ok.expose(), "abc");
    }
}
