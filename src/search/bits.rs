//! A plain fixed-size bitset over a segment's doc ids.
//!
//! Match sets are kept as bitsets so that filters, totals and facet counts become word-wise
//! AND + popcount: at 100k documents that is ~1.6k words per operation, independent of how
//! many documents match.

#[derive(Clone, Debug, Default)]
pub(crate) struct Bits {
    words: Vec<u64>,
}

impl Bits {
    pub(crate) fn empty(max_doc: u32) -> Bits {
        Bits {
            words: vec![0; (max_doc as usize).div_ceil(64)],
        }
    }

    pub(crate) fn full(max_doc: u32) -> Bits {
        let mut words = vec![u64::MAX; (max_doc as usize).div_ceil(64)];
        let rem = max_doc % 64;
        if rem != 0 {
            if let Some(last) = words.last_mut() {
                *last = (1u64 << rem) - 1;
            }
        }
        Bits { words }
    }

    pub(crate) fn from_docs(max_doc: u32, docs: &[u32]) -> Bits {
        let mut b = Bits::empty(max_doc);
        for &d in docs {
            b.insert(d);
        }
        b
    }

    #[inline]
    pub(crate) fn insert(&mut self, doc: u32) {
        if let Some(w) = self.words.get_mut((doc >> 6) as usize) {
            *w |= 1u64 << (doc & 63);
        }
    }

    #[inline]
    pub(crate) fn contains(&self, doc: u32) -> bool {
        self.words
            .get((doc >> 6) as usize)
            .is_some_and(|w| w & (1u64 << (doc & 63)) != 0)
    }

    pub(crate) fn and(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= *b;
        }
        // A shorter operand means absent bits, which are zero.
        let n = other.words.len().min(self.words.len());
        for a in &mut self.words[n..] {
            *a = 0;
        }
    }

    pub(crate) fn and_not(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !*b;
        }
    }

    /// Keeps only documents whose score is positive.
    pub(crate) fn retain_positive(&mut self, scores: &[f32]) {
        let covered = scores.len().div_ceil(64);
        for (w, chunk) in self.words.iter_mut().zip(scores.chunks(64)) {
            if *w == 0 {
                continue;
            }
            let mut mask = 0u64;
            for (j, &s) in chunk.iter().enumerate() {
                mask |= u64::from(s > 0.0) << j;
            }
            *w &= mask;
        }
        for w in self.words.iter_mut().skip(covered) {
            *w = 0;
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub(crate) fn count_and(&self, other: &Bits) -> u64 {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| u64::from((a & b).count_ones()))
            .sum()
    }

    pub(crate) fn num_words(&self) -> usize {
        self.words.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            let base = (i as u32) << 6;
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let t = w.trailing_zeros();
                w &= w - 1;
                Some(base + t)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Bits;

    #[test]
    fn basics() {
        let mut a = Bits::empty(130);
        for d in [0, 63, 64, 129, 10_000] {
            a.insert(d);
        }
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 63, 64, 129]);
        assert!(a.contains(129) && !a.contains(130) && !a.contains(u32::MAX));
        let full = Bits::full(130);
        assert_eq!(full.count(), 130);
        assert_eq!(full.count_and(&a), 4);
        let mut b = full.clone();
        b.and_not(&a);
        assert_eq!(b.count(), 126);
        b.and(&Bits::from_docs(130, &[1, 63]));
        assert_eq!(b.iter().collect::<Vec<_>>(), [1]);
        assert_eq!(Bits::full(128).count(), 128);
        let mut c = Bits::full(130);
        let mut scores = vec![0.0f32; 100];
        scores[3] = 1.0;
        scores[70] = 0.5;
        c.retain_positive(&scores);
        assert_eq!(c.iter().collect::<Vec<_>>(), [3, 70]);
        assert_eq!(Bits::full(0).count(), 0);
    }
}
