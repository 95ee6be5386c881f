//! Per-segment, in-memory copies of the small per-document values every query touches.
//!
//! Facet counting, the popularity boost and the status/secrets filters run once per matching
//! document, which for a broad query is most of the index. Reading them through tantivy's
//! multi-valued columns costs tens of nanoseconds per value; flat arrays cost about one.
//! Segments are immutable (deletes only flip the alive bitset), so the arrays are built once
//! per segment when a reload first sees it and shared by every later snapshot.

use std::collections::HashMap;
use std::sync::Arc;

use tantivy::SegmentReader;
use tantivy::columnar::StrColumn;
use tantivy::directory::FileSlice;
use tantivy::postings::TermInfo;
use tantivy::termdict::{TermDictionary, TermDictionaryBuilder, TermMerger};

use super::SearchError;
use super::bits::Bits;
use super::schema::{
    F_CATEGORY, F_HAS_SECRETS, F_KEY, F_POPULARITY, F_REGISTRY_TYPE, F_STATUS, F_TAG, F_TRANSPORT,
    STATUS_DEPRECATED,
};
use super::schema::{TEXT_FIELDS, TextField};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum FacetKind {
    Category = 0,
    Tag = 1,
    Transport = 2,
    RegistryType = 3,
}

const FACET_COLUMNS: [(FacetKind, &str); 4] = [
    (FacetKind::Category, F_CATEGORY),
    (FacetKind::Tag, F_TAG),
    (FacetKind::Transport, F_TRANSPORT),
    (FacetKind::RegistryType, F_REGISTRY_TYPE),
];

/// Gives every (kind, value) ever seen a dense global id, so that a query counts facets into
/// one flat array across segments. Append-only: values of deleted documents keep their id,
/// which only costs a zero counter.
#[derive(Default)]
pub(crate) struct FacetInterner {
    ids: Arc<[HashMap<Box<str>, u32>; 4]>,
    keys: Arc<Vec<(FacetKind, Arc<str>)>>,
}

impl FacetInterner {
    fn intern(&mut self, kind: FacetKind, value: &str) -> u32 {
        if let Some(&id) = self.ids[kind as usize].get(value) {
            return id;
        }
        let id = u32::try_from(self.keys.len()).unwrap_or(u32::MAX);
        // Copy-on-write: snapshots held by running searches keep the old tables.
        Arc::make_mut(&mut self.keys).push((kind, Arc::from(value)));
        Arc::make_mut(&mut self.ids)[kind as usize].insert(value.into(), id);
        id
    }

    pub(crate) fn keys(&self) -> Arc<Vec<(FacetKind, Arc<str>)>> {
        self.keys.clone()
    }

    pub(crate) fn lookup(&self) -> Arc<[HashMap<Box<str>, u32>; 4]> {
        self.ids.clone()
    }
}

/// Facet values with at least this share of a segment's documents get a bitset: counting
/// them against a match set is then one AND + popcount over the segment instead of a walk
/// over their documents (break-even is around 1/256 of the documents).
const VALUE_BITSET_MIN_SHARE: u32 = 256;
/// Per facet kind, only the most frequent values get bitsets. Facets show the top 20, and
/// values beyond these rarely make it there; when they might, their lists are walked (see
/// `exec::finish_facets`).
const MAX_VALUE_BITSETS_PER_KIND: usize = 48;

/// The documents carrying one facet value in one segment.
pub(crate) struct ValueDocs {
    pub global: u32,
    pub kind: FacetKind,
    pub docs: Vec<u32>,
    pub bits: Option<Bits>,
}

/// The union of the text fields' term dictionaries of one segment, with each term's
/// per-field document frequency (by term ordinal). Fuzzy and prefix expansion walk this one
/// dictionary instead of one per field: the walks, not the scoring, dominate typo queries.
pub(crate) struct Vocab {
    pub dict: TermDictionary,
    pub doc_freqs: Vec<[u32; TEXT_FIELDS]>,
}

impl Vocab {
    fn build(reader: &SegmentReader, text_fields: &[TextField]) -> Result<Vocab, SearchError> {
        let inverted = text_fields
            .iter()
            .take(TEXT_FIELDS)
            .map(|tf| reader.inverted_index(tf.field).map_err(corrupt_err))
            .collect::<Result<Vec<_>, _>>()?;
        let streams = inverted
            .iter()
            .map(|i| i.terms().stream())
            .collect::<Result<Vec<_>, _>>()?;
        // The dictionaries are sorted: a k-way merge yields the union in order.
        let mut merger = TermMerger::new(streams);
        let mut builder = TermDictionaryBuilder::create(Vec::new())?;
        let mut doc_freqs: Vec<[u32; TEXT_FIELDS]> = Vec::new();
        // Values are unused (lookups go through the term ordinal); an empty TermInfo keeps
        // the dictionary's offset encoding trivially valid.
        let nothing = TermInfo::default();
        while merger.advance() {
            builder.insert(merger.key(), &nothing)?;
            let mut row = [0; TEXT_FIELDS];
            for (slot, info) in merger.current_segment_ords_and_term_infos() {
                if let Some(df) = row.get_mut(slot) {
                    *df = info.doc_freq;
                }
            }
            doc_freqs.push(row);
        }
        let bytes = builder.finish()?;
        Ok(Vocab {
            dict: TermDictionary::open(FileSlice::from(bytes))?,
            doc_freqs,
        })
    }
}

pub(crate) struct SegData {
    pub max_doc: u32,
    pub vocab: Vocab,
    pub popularity: Vec<u64>,
    /// Multiplier applied to the relevance score, precomputed because `ln` per hit is not free.
    pub boost: Vec<f32>,
    /// Rank of the document's name within this segment (the name column's dictionary is
    /// sorted), so ties are broken without comparing strings.
    pub name_ord: Vec<u32>,
    /// Names by rank.
    pub names: Vec<Box<str>>,
    /// All documents by popularity desc then name asc: the empty query's top-k is the first
    /// k of these that match.
    pub by_popularity: Vec<u32>,
    /// Fieldnorm ids per text field (same order as `Fields::text`), copied out of tantivy so
    /// the scoring loop indexes a plain slice.
    pub fieldnorms: Vec<Vec<u8>>,
    pub deprecated: Bits,
    pub secrets: Bits,
    /// CSR layout of the global facet ids of each document.
    pub facet_start: Vec<u32>,
    pub facet_ids: Vec<u32>,
    pub values: Vec<ValueDocs>,
    /// Global facet id -> index into `values`.
    pub value_index: HashMap<u32, usize>,
    /// Sum of `docs.len()` over values without a bitset.
    pub listed_postings: u64,
    pub bitset_values: usize,
}

pub(crate) fn popularity_boost(popularity: u64) -> f32 {
    1.0 + 0.1 * (popularity as f64).ln_1p() as f32
}

impl SegData {
    pub(crate) fn name(&self, doc: u32) -> &str {
        self.name_ord
            .get(doc as usize)
            .and_then(|&ord| self.names.get(ord as usize))
            .map_or("", |n| n)
    }

    #[inline]
    pub(crate) fn facets(&self, doc: u32) -> &[u32] {
        let d = doc as usize;
        match (self.facet_start.get(d), self.facet_start.get(d + 1)) {
            (Some(&s), Some(&e)) => self.facet_ids.get(s as usize..e as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Restricts `bits` to documents carrying the global facet value.
    pub(crate) fn and_value(&self, bits: &mut Bits, global: u32) {
        match self
            .value_index
            .get(&global)
            .and_then(|&i| self.values.get(i))
        {
            Some(ValueDocs {
                bits: Some(value_bits),
                ..
            }) => bits.and(value_bits),
            Some(v) => bits.and(&Bits::from_docs(self.max_doc, &v.docs)),
            None => *bits = Bits::empty(self.max_doc),
        }
    }

    pub(crate) fn build(
        reader: &SegmentReader,
        text_fields: &[TextField],
        interner: &mut FacetInterner,
    ) -> Result<SegData, SearchError> {
        let max_doc = reader.max_doc();
        let ff = reader.fast_fields();
        let corrupt = |what: &str| SearchError::Corrupt(format!("fast field {what} missing"));

        let key = ff
            .str(F_KEY)
            .map_err(corrupt_err)?
            .ok_or_else(|| corrupt(F_KEY))?;
        let names = dictionary_values(&key)?;
        let key_ords = key.ords();
        let name_ord: Vec<u32> = (0..max_doc)
            .map(|d| key_ords.first(d).map_or(u32::MAX, |o| o as u32))
            .collect();

        let popularity_col = ff.u64(F_POPULARITY).map_err(corrupt_err)?;
        let popularity: Vec<u64> = (0..max_doc)
            .map(|d| popularity_col.first(d).unwrap_or(0))
            .collect();
        let boost: Vec<f32> = popularity.iter().map(|&p| popularity_boost(p)).collect();
        let mut by_popularity: Vec<u32> = (0..max_doc).collect();
        by_popularity.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            popularity[b]
                .cmp(&popularity[a])
                .then(name_ord[a].cmp(&name_ord[b]))
        });

        let mut fieldnorms = Vec::with_capacity(text_fields.len());
        for tf in text_fields {
            let norms = reader
                .get_fieldnorms_reader(tf.field)
                .map_err(corrupt_err)?;
            fieldnorms.push((0..max_doc).map(|d| norms.fieldnorm_id(d)).collect());
        }

        let secrets_col = ff.bool(F_HAS_SECRETS).map_err(corrupt_err)?;
        let mut secrets = Bits::empty(max_doc);
        for d in 0..max_doc {
            if secrets_col.first(d) == Some(true) {
                secrets.insert(d);
            }
        }
        let mut deprecated = Bits::empty(max_doc);
        if let Some(status) = ff.str(F_STATUS).map_err(corrupt_err)? {
            let ord = status
                .dictionary()
                .term_ord(STATUS_DEPRECATED)
                .map_err(SearchError::Io)?;
            if ord.is_some() {
                for d in 0..max_doc {
                    if status.ords().first(d) == ord {
                        deprecated.insert(d);
                    }
                }
            }
        }

        // Columns may be absent from a segment where no document had a value.
        let mut columns = Vec::with_capacity(FACET_COLUMNS.len());
        for (kind, name) in FACET_COLUMNS {
            if let Some(col) = ff.str(name).map_err(corrupt_err)? {
                let global: Vec<u32> = dictionary_values(&col)?
                    .iter()
                    .map(|v| interner.intern(kind, v))
                    .collect();
                columns.push((kind, col, global));
            }
        }
        let mut facet_start = Vec::with_capacity(max_doc as usize + 1);
        let mut facet_ids = Vec::new();
        let mut value_index: HashMap<u32, usize> = HashMap::new();
        let mut values: Vec<ValueDocs> = Vec::new();
        facet_start.push(0);
        for d in 0..max_doc {
            for (kind, col, global) in &columns {
                for ord in col.ords().values_for_doc(d) {
                    if let Some(&g) = global.get(ord as usize) {
                        facet_ids.push(g);
                        let i = *value_index.entry(g).or_insert_with(|| {
                            values.push(ValueDocs {
                                global: g,
                                kind: *kind,
                                docs: Vec::new(),
                                bits: None,
                            });
                            values.len() - 1
                        });
                        values[i].docs.push(d);
                    }
                }
            }
            facet_start.push(u32::try_from(facet_ids.len()).unwrap_or(u32::MAX));
        }

        let min_docs = (max_doc / VALUE_BITSET_MIN_SHARE).max(64) as usize;
        let mut frequent: Vec<usize> = (0..values.len())
            .filter(|&i| values[i].docs.len() >= min_docs)
            .collect();
        frequent.sort_unstable_by_key(|&i| std::cmp::Reverse(values[i].docs.len()));
        let mut per_kind = [0usize; 4];
        frequent.retain(|&i| {
            let n = &mut per_kind[values[i].kind as usize];
            *n += 1;
            *n <= MAX_VALUE_BITSETS_PER_KIND
        });
        for &i in &frequent {
            let v = &mut values[i];
            v.bits = Some(Bits::from_docs(max_doc, &v.docs));
            v.docs = Vec::new();
        }
        let listed_postings = values.iter().map(|v| v.docs.len() as u64).sum();

        Ok(SegData {
            vocab: Vocab::build(reader, text_fields)?,
            max_doc,
            popularity,
            boost,
            name_ord,
            names,
            by_popularity,
            fieldnorms,
            deprecated,
            secrets,
            facet_start,
            facet_ids,
            values,
            value_index,
            listed_postings,
            bitset_values: frequent.len(),
        })
    }
}

fn corrupt_err(e: tantivy::TantivyError) -> SearchError {
    SearchError::Corrupt(e.to_string())
}

/// All values of a string column, by ordinal.
fn dictionary_values(col: &StrColumn) -> Result<Vec<Box<str>>, SearchError> {
    let mut out = Vec::with_capacity(col.num_terms());
    let mut stream = col.dictionary().stream().map_err(SearchError::Io)?;
    while stream.advance() {
        out.push(String::from_utf8_lossy(stream.key()).into());
    }
    Ok(out)
}
