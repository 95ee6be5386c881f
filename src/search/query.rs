//! Turns user text into a list of (field, term, BM25 weight) to score, built
//! programmatically (no query parser), so no input can be a syntax error.
//!
//! Fuzzy and prefix matching expand each query word against the segments' union
//! vocabularies into a bounded set of real terms, each then scored as an ordinary BM25 term
//! with a weight below an exact match. Compared with tantivy's `FuzzyTermQuery` (constant
//! score, unbounded expansion, one dictionary walk per field) this keeps relevance ranking
//! for typos and bounds the cost of short prefixes. `exec` scores the list term-at-a-time.

use std::collections::HashMap;

use tantivy::postings::TermInfo;
use tantivy::query::{Bm25Weight, FuzzyTermQuery};
use tantivy::schema::Field;
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Searcher, Term};

use super::SearchError;
use super::schema::{TEXT_FIELDS, TextField, is_stop_word};
use super::segdata::SegData;

/// Longer input is cut: nobody types more, and every term costs dictionary walks.
pub(crate) const MAX_QUERY_CHARS: usize = 512;
pub(crate) const MAX_QUERY_TERMS: usize = 32;
/// Per query word and field, how many non-exact terms it may expand to (closest, then most
/// frequent first). Completions of a 2-3 letter prefix are many, common and mostly guesses,
/// so fewer are kept for those (see `build_text_query`); this also bounds the postings a
/// short prefix drags in.
const MAX_EXPANSIONS: usize = 10;
/// Bounds the dictionary walk of a short prefix ("a" would otherwise enumerate a vocabulary).
const MAX_PREFIX_SCAN: u64 = 256;
/// Below this many documents no query word is treated as "common" (see `build_text_query`).
const COMMON_RULE_MIN_DOCS: u64 = 1000;
/// The last word is usually still being typed, so it is completed from 2 characters on.
const PREFIX_MIN: usize = 2;

// Weights relative to an exact match; an exact hit must always beat a near miss.
const W_PREFIX: f32 = 0.6;
const W_FUZZY_1: f32 = 0.45;
const W_FUZZY_2: f32 = 0.25;

fn fuzzy_distance(term_chars: usize) -> u8 {
    match term_chars {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// Cuts user input to `MAX_QUERY_CHARS` characters.
pub(crate) fn clamp_query(q: &str) -> &str {
    let q = q.trim();
    match q.char_indices().nth(MAX_QUERY_CHARS) {
        Some((i, _)) => q.get(..i).unwrap_or(q),
        None => q,
    }
}

/// Query words, normalized like indexed text, de-duplicated, at most `MAX_QUERY_TERMS`.
/// Stop words are dropped unless nothing else is left (a search for "the" should still try).
pub(crate) fn query_terms(analyzer: &TextAnalyzer, q: &str) -> Vec<String> {
    let mut analyzer = analyzer.clone();
    let mut all = Vec::new();
    let mut stream = analyzer.token_stream(q);
    while stream.advance() {
        let text = &stream.token().text;
        if !all.iter().any(|t: &String| t == text) {
            all.push(text.clone());
        }
    }
    if all.iter().any(|t| !is_stop_word(t)) {
        all.retain(|t| !is_stop_word(t));
    }
    all.truncate(MAX_QUERY_TERMS);
    all
}

/// One (field, term) to score, with its BM25 weight (field boost × closeness included).
pub(crate) struct Scored {
    /// Index of the field in `Fields::text`.
    pub slot: usize,
    pub field: Field,
    pub info: TermInfo,
    pub bm25: Bm25Weight,
}

/// Per segment ordinal, every expanded (field, term) present in that segment.
pub(crate) type TextPlan = Vec<Vec<Scored>>;

/// A query word's candidate terms: per-field document frequencies summed over segments.
type Candidates = HashMap<Vec<u8>, [u64; TEXT_FIELDS]>;

pub(crate) fn build_text_query(
    searcher: &Searcher,
    segs: &[&SegData],
    fields: &[TextField; TEXT_FIELDS],
    terms: &[String],
) -> Result<Option<TextPlan>, SearchError> {
    let readers = searcher.segment_readers();
    let Some(any_field) = fields.first().map(|f| f.field) else {
        return Ok(None);
    };
    let total_docs: u64 = readers.iter().map(|s| u64::from(s.max_doc())).sum();
    if total_docs == 0 {
        return Ok(None);
    }
    let mut avg_fieldnorm = [0f32; TEXT_FIELDS];
    for (avg, tf) in avg_fieldnorm.iter_mut().zip(fields) {
        let mut tokens = 0u64;
        for seg in readers {
            tokens += seg
                .inverted_index(tf.field)
                .map_err(internal)?
                .total_num_tokens();
        }
        *avg = tokens as f32 / total_docs as f32;
    }

    // Per query word: its scored terms per segment, and whether the word is "common".
    let mut per_term: Vec<(TextPlan, bool)> = Vec::with_capacity(terms.len());
    for (i, term) in terms.iter().enumerate() {
        let len = term.chars().count();
        let mut cands: Candidates = HashMap::new();
        for seg in segs {
            if let Some(ord) = seg.vocab.dict.term_ord(term.as_bytes())? {
                add_candidate(&mut cands, term.as_bytes(), seg, ord);
            }
        }
        let exact_df = cands.get(term.as_bytes()).copied().unwrap_or_default();
        // Typo tolerance is for words the index does not know. A word many documents contain
        // is taken as meant: expanding it would only add near-miss noise, and Levenshtein
        // walks (distance 2 especially) are the most expensive part of a query.
        let known = exact_df.iter().sum::<u64>() >= known_word_min_docs(total_docs);
        // A word in most documents barely ranks (idf ~0) but would make nearly everything
        // match and be scored; see the end of this function. Small indexes are cheap to
        // search in full, and there "most documents" may be two.
        let common =
            total_docs >= COMMON_RULE_MIN_DOCS && exact_df.iter().any(|&df| df * 2 > total_docs);
        let distance = if known { 0 } else { fuzzy_distance(len) };
        // Only the last word can be unfinished: people type left to right. Completing every
        // word would multiply dictionary walks and add noise for finished words.
        let prefix = i + 1 == terms.len() && len >= PREFIX_MIN;
        if distance > 0 {
            let q = FuzzyTermQuery::new(Term::from_field_text(any_field, term), distance, true);
            let dfa = q.automaton().map_err(internal)?;
            for seg in segs {
                let mut stream = seg.vocab.dict.search(&dfa).into_stream()?;
                while stream.advance() {
                    add_candidate(&mut cands, stream.key(), seg, stream.term_ord());
                }
            }
        }
        if prefix {
            let end = prefix_upper_bound(term.as_bytes());
            for seg in segs {
                let mut builder = seg.vocab.dict.range().gt(term.as_bytes());
                if let Some(end) = &end {
                    builder = builder.lt(end);
                }
                let mut stream = builder.into_stream()?;
                let mut scanned = 0;
                while scanned < MAX_PREFIX_SCAN && stream.advance() {
                    scanned += 1;
                    add_candidate(&mut cands, stream.key(), seg, stream.term_ord());
                }
            }
        }

        // A known word is most likely finished: a few completions (plurals, compounds) are
        // worth it, a full set mostly adds postings. A word in most documents already
        // matches most documents; completions would only add more of the same.
        let max_variants = match len {
            _ if common => 0,
            0..=2 => 3,
            3 => 5,
            _ if known => 3,
            _ => MAX_EXPANSIONS,
        };
        let weighted: Vec<(&[u8], f32, &[u64; TEXT_FIELDS])> = cands
            .iter()
            .filter_map(|(key, dfs)| {
                let w = closeness(term, key, prefix, distance)?;
                Some((key.as_slice(), w, dfs))
            })
            .collect();
        let mut plan: TextPlan = readers.iter().map(|_| Vec::new()).collect();
        for (slot, tf) in fields.iter().enumerate() {
            if tf.prose && is_stop_word(term) {
                continue;
            }
            let mut variants: Vec<(&[u8], f32, u64)> = weighted
                .iter()
                .filter(|(_, _, dfs)| dfs[slot] > 0)
                .map(|&(key, w, dfs)| (key, w, dfs[slot]))
                .collect();
            variants.sort_by(|a, b| {
                b.1.total_cmp(&a.1)
                    .then(b.2.cmp(&a.2))
                    .then_with(|| a.0.cmp(b.0))
            });
            // The exact term sorts first (weight 1) and is never cut.
            let exact_kept = variants.first().is_some_and(|v| v.1 >= 1.0);
            variants.truncate(max_variants + usize::from(exact_kept));
            // All spellings of one query word share the idf of the most common one. Otherwise
            // a rare misspelling-neighbour (high idf) could outscore the exact word, and typo
            // matches would rank by rarity rather than by closeness.
            let shared_df = variants
                .iter()
                .map(|v| v.2)
                .max()
                .unwrap_or(0)
                .min(total_docs);
            let base = Bm25Weight::for_one_term_without_explain(
                shared_df,
                total_docs,
                avg_fieldnorm[slot],
            );
            for &(key, w, _) in &variants {
                let bm25 = base.boost_by(tf.boost * w);
                for (seg_plan, reader) in plan.iter_mut().zip(readers) {
                    let inverted = reader.inverted_index(tf.field).map_err(internal)?;
                    if let Some(info) = inverted.terms().get(key)? {
                        seg_plan.push(Scored {
                            slot,
                            field: tf.field,
                            info,
                            bm25: bm25.clone(),
                        });
                    }
                }
            }
        }
        per_term.push((plan, common));
    }

    // Words in most documents (think "mcp", "server", or the "io"/"github" of a pasted
    // package name) only select and score when nothing rarer was asked for: next to a rarer
    // word they would add ~0 to any score, yet cost a pass over nearly every document and
    // turn the total into "everything".
    let has_rare = per_term
        .iter()
        .any(|(plan, common)| !common && plan.iter().any(|p| !p.is_empty()));
    let mut plan: TextPlan = readers.iter().map(|_| Vec::new()).collect();
    for (term_plan, common) in per_term {
        if common && has_rare {
            continue;
        }
        for (all, seg) in plan.iter_mut().zip(term_plan) {
            all.extend(seg);
        }
    }
    Ok(plan.iter().any(|p| !p.is_empty()).then_some(plan))
}

fn add_candidate(cands: &mut Candidates, key: &[u8], seg: &SegData, ord: u64) {
    if let Some(row) = usize::try_from(ord)
        .ok()
        .and_then(|o| seg.vocab.doc_freqs.get(o))
    {
        let entry = cands.entry(key.to_vec()).or_default();
        for (sum, &df) in entry.iter_mut().zip(row) {
            *sum += u64::from(df);
        }
    }
}

/// Weight of `candidate` as a match for `term`: 1 exact, below that by kind of near miss;
/// None if it is no match under the query's rules.
fn closeness(term: &str, candidate: &[u8], prefix: bool, distance: u8) -> Option<f32> {
    let candidate = std::str::from_utf8(candidate).ok()?;
    if candidate == term {
        return Some(1.0);
    }
    let mut weight: f32 = 0.0;
    if prefix && candidate.starts_with(term) {
        weight = W_PREFIX;
    }
    if distance > 0 {
        weight = weight.max(match edit_distance(term, candidate) {
            1 => W_FUZZY_1,
            2 if distance >= 2 => W_FUZZY_2,
            _ => 0.0,
        });
    }
    (weight > 0.0).then_some(weight)
}

/// How many documents must contain a word for it to be "known" (no fuzzy expansion): a
/// misspelling shared by a handful of documents should still be corrected.
fn known_word_min_docs(total_docs: u64) -> u64 {
    (total_docs / 10_000).max(2)
}

/// Smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Optimal-string-alignment distance (adjacent transpositions cost 1, like the automaton),
/// on characters. Inputs are bounded by the analyzer's token length limit.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

fn internal(e: tantivy::TantivyError) -> SearchError {
    SearchError::Internal(e.to_string())
}
