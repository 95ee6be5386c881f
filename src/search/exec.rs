//! Query execution per segment.
//!
//! Totals and facet counts need every matching document, top-k ranking does not need much
//! more. So:
//! 1. status/secrets/facet filters are ANDed from precomputed bitsets;
//! 2. with text, BM25 scores are accumulated term-at-a-time into a dense per-document array
//!    (documents with a positive score are the text matches), then the top k of the match
//!    set are picked from it; without text, documents are walked in popularity order;
//! 3. totals are popcounts; facet counts are popcounts against per-value bitsets for
//!    frequent values, and walks over rare values' documents only when such a value could
//!    still reach a top 20 (`finish_facets`).
//!
//! Term-at-a-time beats tantivy's document-at-a-time union here: queries expand to dozens of
//! (field, term) lists, and with a per-document popularity multiplier block-max WAND prunes
//! little, so it would score nearly every document through a heap of cursors anyway.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tantivy::schema::IndexRecordOption;
use tantivy::{DocId, SegmentReader};

use super::SearchError;
use super::bits::Bits;
use super::query::Scored;
use super::segdata::{FacetKind, SegData};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Exact-name match first, then score × popularity boost, then name.
    Relevance,
    /// Popularity, then name.
    Popularity,
    /// `updated_at` (newest first), then name.
    Updated,
}

/// Ordered so that "better" is greater. Within a segment names compare by dictionary rank.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub exact: bool,
    /// Score bits (scores are non-negative so bit order is numeric order) or popularity.
    pub value: u64,
    pub name_ord: u32,
    pub doc: DocId,
}

impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.exact
            .cmp(&o.exact)
            .then(self.value.cmp(&o.value))
            .then(o.name_ord.cmp(&self.name_ord))
            .then(o.doc.cmp(&self.doc))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

fn score_bits(score: f32) -> u64 {
    if score.is_finite() && score > 0.0 {
        u64::from(score.to_bits())
    } else {
        0
    }
}

pub(crate) fn bits_score(value: u64) -> f32 {
    f32::from_bits(u32::try_from(value).unwrap_or(0))
}

pub(crate) struct Text<'a> {
    /// Every expanded query term present in this segment.
    pub terms: &'a [Scored],
    /// Live documents whose name equals the query.
    pub exact: &'a [DocId],
}

pub(crate) struct Plan {
    pub k: usize,
    /// Rank by `updated_at` instead of relevance or popularity.
    pub by_updated: bool,
    pub exclude_deprecated: bool,
    pub secrets: Option<bool>,
    /// Global facet ids that must all be present; `None` is a value never seen (no match).
    pub filters: Vec<Option<u32>>,
}

pub(crate) struct SegOutcome {
    pub total: u64,
    pub top: Vec<Entry>,
    /// The match set, when rare facet values were left for `finish_facets`.
    pub deferred: Option<Bits>,
}

fn empty() -> SegOutcome {
    SegOutcome {
        total: 0,
        top: Vec::new(),
        deferred: None,
    }
}

pub(crate) fn run_segment(
    plan: &Plan,
    text: Option<Text<'_>>,
    reader: &SegmentReader,
    data: &SegData,
    alive: Option<&Bits>,
    counts: &mut [u64],
    scores: &mut Vec<f32>,
) -> Result<SegOutcome, SearchError> {
    let mut matching = match alive {
        Some(a) => a.clone(),
        None => Bits::full(data.max_doc),
    };
    if plan.exclude_deprecated {
        matching.and_not(&data.deprecated);
    }
    match plan.secrets {
        Some(true) => matching.and(&data.secrets),
        Some(false) => matching.and_not(&data.secrets),
        None => {}
    }
    for filter in &plan.filters {
        let Some(global) = filter else {
            return Ok(empty());
        };
        data.and_value(&mut matching, *global);
    }
    if matching.count() == 0 {
        return Ok(empty());
    }
    match text {
        None => {
            let total = matching.count();
            let deferred = count_facets(data, &matching, total, counts);
            let top = if plan.by_updated {
                top_by_updated(plan.k, reader, data, &matching)?
            } else {
                top_by_popularity(plan.k, data, &matching, total)
            };
            Ok(SegOutcome {
                total,
                top,
                deferred: deferred.then_some(matching),
            })
        }
        Some(text) => {
            scores.clear();
            scores.resize(data.max_doc as usize, 0.0);
            accumulate(reader, data, text.terms, scores)?;
            matching.retain_positive(scores);
            let total = matching.count();
            if total == 0 {
                return Ok(empty());
            }
            let deferred = count_facets(data, &matching, total, counts);
            let top = if plan.by_updated {
                top_by_updated(plan.k, reader, data, &matching)?
            } else {
                top_by_relevance(plan.k, &text, data, &matching, scores)
            };
            Ok(SegOutcome {
                total,
                top,
                deferred: deferred.then_some(matching),
            })
        }
    }
}

/// Adds every term's BM25 contribution (always positive) to `scores`.
fn accumulate(
    reader: &SegmentReader,
    data: &SegData,
    terms: &[Scored],
    scores: &mut [f32],
) -> Result<(), SearchError> {
    let err = |e: tantivy::TantivyError| SearchError::Internal(e.to_string());
    // Scores for tf = 1..=TF_TABLE by fieldnorm id: most postings hit the table, which
    // saves a division each. Only worth filling for long posting lists.
    const TF_TABLE: usize = 4;
    let mut table = [[0f32; 256]; TF_TABLE];
    for t in terms {
        let inverted = reader.inverted_index(t.field).map_err(err)?;
        let norms: &[u8] = data.fieldnorms.get(t.slot).map_or(&[], Vec::as_slice);
        let tabled = t.info.doc_freq >= 2048;
        if tabled {
            for (tf, row) in table.iter_mut().enumerate() {
                for (id, v) in row.iter_mut().enumerate() {
                    *v = t.bm25.score(id as u8, tf as u32 + 1);
                }
            }
        }
        let mut block =
            inverted.read_block_postings_from_terminfo(&t.info, IndexRecordOption::WithFreqs)?;
        loop {
            let docs = block.docs();
            if docs.is_empty() {
                break;
            }
            let freqs = block.freqs();
            for (i, &doc) in docs.iter().enumerate() {
                let d = doc as usize;
                let norm = norms.get(d).copied().unwrap_or(0);
                let tf = freqs.get(i).copied().unwrap_or(1).max(1);
                let add = match table.get(tf as usize - 1) {
                    Some(row) if tabled => row[norm as usize],
                    _ => t.bm25.score(norm, tf),
                };
                if let Some(s) = scores.get_mut(d) {
                    *s += add;
                }
            }
            block.advance();
        }
    }
    Ok(())
}

/// Counts facets of the matching documents into `counts`. Returns true when the rare values
/// (those without a bitset) were left for `finish_facets`.
///
/// Per matching document costs a likely cache miss per document (their values are spread
/// over megabytes) plus a few units per value; per value costs one popcount pass over the
/// segment per frequent value. The cheaper estimate is used.
fn count_facets(data: &SegData, matching: &Bits, total: u64, counts: &mut [u64]) -> bool {
    let values_per_doc = data.facet_ids.len() as u64 / u64::from(data.max_doc.max(1));
    let per_doc = total * (64 + 3 * values_per_doc);
    let per_value = (data.bitset_values * matching.num_words()) as u64;
    if per_doc <= per_value {
        for doc in matching.iter() {
            for &g in data.facets(doc) {
                if let Some(c) = counts.get_mut(g as usize) {
                    *c += 1;
                }
            }
        }
        return false;
    }
    for v in &data.values {
        if let (Some(bits), Some(c)) = (&v.bits, counts.get_mut(v.global as usize)) {
            *c += matching.count_and(bits);
        }
    }
    data.listed_postings > 0
}

/// Counts the rare facet values that segments deferred, skipping those that cannot reach
/// the top `top_n` of their kind.
///
/// The counts so far are lower bounds, so the `top_n`-th largest of a kind is a lower bound
/// L of its final `top_n`-th largest. A value whose count so far plus all its deferred
/// documents is below L can never reach the top: at least `top_n` values already beat it.
pub(crate) fn finish_facets(
    deferred: &[(&SegData, &Bits)],
    keys: &[(FacetKind, std::sync::Arc<str>)],
    counts: &mut [u64],
    top_n: usize,
) {
    if deferred.is_empty() {
        return;
    }
    let mut remaining = vec![0u64; counts.len()];
    for (data, _) in deferred {
        for v in &data.values {
            if v.bits.is_some() {
                continue;
            }
            if let Some(r) = remaining.get_mut(v.global as usize) {
                *r += v.docs.len() as u64;
            }
        }
    }
    let mut by_kind: [Vec<u64>; 4] = Default::default();
    for ((kind, _), &c) in keys.iter().zip(counts.iter()) {
        if c > 0 {
            by_kind[*kind as usize].push(c);
        }
    }
    let floor = by_kind.map(|mut v| {
        v.sort_unstable_by(|a, b| b.cmp(a));
        top_n
            .checked_sub(1)
            .and_then(|i| v.get(i))
            .copied()
            .unwrap_or(0)
    });
    for (data, matching) in deferred {
        for v in &data.values {
            if v.bits.is_some() {
                continue;
            }
            let g = v.global as usize;
            let (Some(&so_far), Some(&rem)) = (counts.get(g), remaining.get(g)) else {
                continue;
            };
            if so_far + rem < floor[v.kind as usize] {
                continue;
            }
            let n = v.docs.iter().filter(|&&d| matching.contains(d)).count() as u64;
            if let Some(c) = counts.get_mut(g) {
                *c += n;
            }
        }
    }
}

fn top_by_popularity(k: usize, data: &SegData, matching: &Bits, total: u64) -> Vec<Entry> {
    let entry = |doc: DocId| Entry {
        exact: false,
        value: data.popularity.get(doc as usize).copied().unwrap_or(0),
        name_ord: data.name_ord.get(doc as usize).copied().unwrap_or(u32::MAX),
        doc,
    };
    // Walking the popularity order reads sequentially and stops after about
    // k × max_doc / total documents; ranking the matches directly costs cache misses per
    // match. Only a handful of matches makes the latter cheaper.
    let walk = (k as u64).saturating_mul(u64::from(data.max_doc)) / total.max(1);
    if total.saturating_mul(100) < walk.min(u64::from(data.max_doc)) {
        let mut heap = BinaryHeap::with_capacity(k.min(4096) + 1);
        for doc in matching.iter() {
            push_top(&mut heap, k, entry(doc));
        }
        return heap.into_iter().map(|r| r.0).collect();
    }
    data.by_popularity
        .iter()
        .filter(|&&d| matching.contains(d))
        .take(k)
        .map(|&d| entry(d))
        .collect()
}

/// Newest first. Only asked for by "recently updated" lists, so the column is read at query
/// time rather than kept in the per-segment data every search pays for.
fn top_by_updated(
    k: usize,
    reader: &SegmentReader,
    data: &SegData,
    matching: &Bits,
) -> Result<Vec<Entry>, SearchError> {
    let column = reader
        .fast_fields()
        .i64(super::schema::F_UPDATED_AT)
        .map_err(|e| SearchError::Internal(e.to_string()))?;
    let mut heap = BinaryHeap::with_capacity(k.min(4096) + 1);
    if k == 0 {
        return Ok(Vec::new());
    }
    for doc in matching.iter() {
        let at = column.first(doc).unwrap_or(i64::MIN);
        push_top(
            &mut heap,
            k,
            Entry {
                exact: false,
                // Flipping the sign bit keeps i64 order in u64.
                value: (at as u64) ^ (1 << 63),
                name_ord: data.name_ord.get(doc as usize).copied().unwrap_or(u32::MAX),
                doc,
            },
        );
    }
    Ok(heap.into_iter().map(|r| r.0).collect())
}

fn top_by_relevance(
    k: usize,
    text: &Text<'_>,
    data: &SegData,
    matching: &Bits,
    scores: &[f32],
) -> Vec<Entry> {
    let mut heap = BinaryHeap::with_capacity(k.min(4096) + 1);
    if k == 0 {
        return Vec::new();
    }
    // Exact-name documents rank first whatever their score: placed before the scan so that
    // the threshold below never skips them.
    for &doc in text.exact {
        if matching.contains(doc) {
            let d = doc as usize;
            let score = scores.get(d).copied().unwrap_or(0.0);
            let boost = data.boost.get(d).copied().unwrap_or(1.0);
            push_top(
                &mut heap,
                k,
                Entry {
                    exact: true,
                    value: score_bits(score * boost),
                    name_ord: data.name_ord.get(d).copied().unwrap_or(u32::MAX),
                    doc,
                },
            );
        }
    }
    // Final scores below the current k-th cannot enter; equal ones might (name tie-break).
    let mut threshold = f32::NEG_INFINITY;
    for doc in matching.iter() {
        let d = doc as usize;
        let (Some(&score), Some(&boost)) = (scores.get(d), data.boost.get(d)) else {
            continue;
        };
        let fin = score * boost;
        if fin < threshold || (!text.exact.is_empty() && text.exact.contains(&doc)) {
            continue;
        }
        push_top(
            &mut heap,
            k,
            Entry {
                exact: false,
                value: score_bits(fin),
                name_ord: data.name_ord.get(d).copied().unwrap_or(u32::MAX),
                doc,
            },
        );
        match heap.peek() {
            Some(Reverse(worst)) if heap.len() >= k => {
                threshold = if worst.exact {
                    f32::INFINITY
                } else {
                    bits_score(worst.value)
                };
            }
            _ => {}
        }
    }
    heap.into_iter().map(|r| r.0).collect()
}

fn push_top(heap: &mut BinaryHeap<Reverse<Entry>>, k: usize, e: Entry) {
    if heap.len() < k {
        heap.push(Reverse(e));
    } else if let Some(mut worst) = heap.peek_mut() {
        if e > worst.0 {
            *worst = Reverse(e);
        }
    }
}
