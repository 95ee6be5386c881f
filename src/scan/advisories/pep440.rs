//! PEP 440 versions (PyPI): parsing with the spec's normalizations and its total order.
//! Written here because the crates that do this pull in far more than a comparison needs.
//!
//! `[N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]`, case-insensitive, with the permitted
//! spellings (`alpha`, `beta`, `c`, `pre`, `preview`, `rev`, `r`, `-N` as an implicit
//! post-release, `_`/`-`/`.` separators, optional numbers, a leading `v`).

use std::cmp::Ordering;

/// Equality is the spec's (`1.0 == 1.0.0`), not field by field.
#[derive(Debug, Clone)]
pub struct Pep440 {
    pub epoch: u64,
    pub release: Vec<u64>,
    /// (0 = a, 1 = b, 2 = rc, number)
    pub pre: Option<(u8, u64)>,
    pub post: Option<u64>,
    pub dev: Option<u64>,
    pub local: Vec<LocalPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalPart {
    Num(u64),
    Str(String),
}

impl Pep440 {
    pub fn parse(input: &str) -> Option<Pep440> {
        let s = input.trim().to_ascii_lowercase();
        let s = s.strip_prefix('v').unwrap_or(&s);
        let (s, local) = match s.split_once('+') {
            Some((v, l)) => (v, parse_local(l)?),
            None => (s, Vec::new()),
        };
        let mut p = Cursor {
            s: s.as_bytes(),
            i: 0,
        };
        let mut epoch = 0;
        let first = p.number()?;
        let mut release = vec![first];
        if p.eat(b'!') {
            epoch = first;
            release = vec![p.number()?];
        }
        while p.peek() == Some(b'.') && p.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            p.i += 1;
            release.push(p.number()?);
        }
        let mut pre = None;
        let mut post = None;
        let mut dev = None;
        // Pre-release.
        let save = p.i;
        p.separator();
        if let Some(kind) = p.word(&[
            ("alpha", 0),
            ("beta", 1),
            ("preview", 2),
            ("pre", 2),
            ("rc", 2),
            ("a", 0),
            ("b", 1),
            ("c", 2),
        ]) {
            p.separator();
            pre = Some((kind, p.number().unwrap_or(0)));
        } else {
            p.i = save;
        }
        // Post-release, explicit or the implicit `-N`.
        let save = p.i;
        if p.peek() == Some(b'-') && p.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            p.i += 1;
            post = Some(p.number()?);
        } else {
            p.separator();
            if p.word(&[("post", 0), ("rev", 0), ("r", 0)]).is_some() {
                p.separator();
                post = Some(p.number().unwrap_or(0));
            } else {
                p.i = save;
            }
        }
        // Development release.
        let save = p.i;
        p.separator();
        if p.word(&[("dev", 0)]).is_some() {
            p.separator();
            dev = Some(p.number().unwrap_or(0));
        } else {
            p.i = save;
        }
        if p.i != p.s.len() {
            return None;
        }
        Some(Pep440 {
            epoch,
            release,
            pre,
            post,
            dev,
            local,
        })
    }

    /// Release segments with trailing zeros removed: `1.0` == `1.0.0`.
    fn release_trimmed(&self) -> &[u64] {
        let mut end = self.release.len();
        while end > 1 && self.release[end - 1] == 0 {
            end -= 1;
        }
        &self.release[..end]
    }

    /// True for pre-releases and development releases.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }
}

/// The packaging library's sort key, spelled out: a dev release of a final sorts before its
/// pre-releases; no pre-release sorts after any; no post sorts before any; no dev after any.
impl Ord for Pep440 {
    fn cmp(&self, other: &Self) -> Ordering {
        fn pre_key(v: &Pep440) -> (i8, u8, u64) {
            match (v.pre, v.post, v.dev) {
                (None, None, Some(_)) => (-1, 0, 0),
                (Some((k, n)), _, _) => (0, k, n),
                (None, _, _) => (1, 0, 0),
            }
        }
        fn post_key(v: &Pep440) -> (i8, u64) {
            v.post.map_or((-1, 0), |n| (0, n))
        }
        fn dev_key(v: &Pep440) -> (i8, u64) {
            v.dev.map_or((1, 0), |n| (0, n))
        }
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| cmp_release(self.release_trimmed(), other.release_trimmed()))
            .then_with(|| pre_key(self).cmp(&pre_key(other)))
            .then_with(|| post_key(self).cmp(&post_key(other)))
            .then_with(|| dev_key(self).cmp(&dev_key(other)))
            .then_with(|| cmp_local(&self.local, &other.local))
    }
}

impl PartialEq for Pep440 {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pep440 {}

impl PartialOrd for Pep440 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn cmp_release(a: &[u64], b: &[u64]) -> Ordering {
    let n = a.len().max(b.len());
    for i in 0..n {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        match x.cmp(&y) {
            Ordering::Equal => continue,
            o => return o,
        }
    }
    Ordering::Equal
}

/// No local label sorts first; numeric parts beat string parts; then segment by segment,
/// a longer label winning a tie.
fn cmp_local(a: &[LocalPart], b: &[LocalPart]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (LocalPart::Num(m), LocalPart::Num(n)) => m.cmp(n),
            (LocalPart::Num(_), LocalPart::Str(_)) => Ordering::Greater,
            (LocalPart::Str(_), LocalPart::Num(_)) => Ordering::Less,
            (LocalPart::Str(m), LocalPart::Str(n)) => m.cmp(n),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn parse_local(l: &str) -> Option<Vec<LocalPart>> {
    let parts: Vec<LocalPart> = l
        .split(['.', '-', '_'])
        .map(|p| match p.parse::<u64>() {
            Ok(n) if p.bytes().all(|b| b.is_ascii_digit()) => Some(LocalPart::Num(n)),
            _ if !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                Some(LocalPart::Str(p.to_string()))
            }
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then_some(parts)
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn peek_at(&self, k: usize) -> Option<u8> {
        self.s.get(self.i + k).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn separator(&mut self) {
        if matches!(self.peek(), Some(b'.' | b'-' | b'_')) {
            self.i += 1;
        }
    }
    fn number(&mut self) -> Option<u64> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        if start == self.i {
            return None;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    /// The first of `words` (longest listed first) at the cursor.
    fn word(&mut self, words: &[(&str, u8)]) -> Option<u8> {
        for (w, v) in words {
            if self.s[self.i..].starts_with(w.as_bytes()) {
                self.i += w.len();
                return Some(*v);
            }
        }
        None
    }
}

/// PyPI project names compare after PEP 503 normalization.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut sep = false;
    for c in name.trim().chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
            continue;
        }
        if sep && !out.is_empty() {
            out.push('-');
        }
        sep = false;
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Pep440 {
        Pep440::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn the_specs_ordering_example() {
        // From PEP 440's "Summary of permitted suffixes and relative ordering".
        let ordered = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for w in ordered.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn epochs_dominate() {
        assert!(v("1!0.1") > v("2024.10"));
        assert!(v("0!9.9") < v("1!0.0"));
        assert_eq!(v("0!1.0"), v("1.0"));
    }

    #[test]
    fn normalizations() {
        assert_eq!(v("1.0"), v("1.0.0"));
        assert_eq!(v("1.0alpha1"), v("1.0a1"));
        assert_eq!(v("1.0-beta.2"), v("1.0b2"));
        assert_eq!(v("1.0c1"), v("1.0rc1"));
        assert_eq!(v("1.0.preview3"), v("1.0rc3"));
        assert_eq!(v("1.0-1"), v("1.0.post1"));
        assert_eq!(v("1.0rev2"), v("1.0.post2"));
        assert_eq!(v("1.0a"), v("1.0a0"));
        assert_eq!(v("V1.0.DEV"), v("1.0.dev0"));
        assert_eq!(v("1.0_post_3"), v("1.0.post3"));
        assert!(v("2.0rc1").is_prerelease() && !v("2.0.post1").is_prerelease());
    }

    #[test]
    fn junk_is_refused() {
        for bad in [
            "", "abc", "1.0+", "1.0.x", "1..0", "1.0 beta", "1!", "1.0+a b",
        ] {
            assert!(Pep440::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn pep503_names() {
        assert_eq!(normalize_name("Friendly_Bard"), "friendly-bard");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
        assert_eq!(normalize_name("A--B__c"), "a-b-c");
    }
}
