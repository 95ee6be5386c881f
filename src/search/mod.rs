//! Full-text search over registry packages (one document per package: its latest non-deleted
//! version), backed by tantivy. This is the only module allowed to touch tantivy; nothing
//! tantivy-typed crosses its public API.
//!
//! The index is derived data: it records the store generation it reflects (commit payload),
//! and an unreadable index is reported as [`SearchError::Corrupt`] so the caller can wipe the
//! directory and rebuild from the store.

mod bits;
mod exec;
mod indexer;
mod query;
mod schema;
mod segdata;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tantivy::directory::MmapDirectory;
use tantivy::index::SegmentId;
use tantivy::indexer::{LogMergePolicy, MergePolicy, NoMergePolicy};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocId, DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TERMINATED,
    TantivyDocument, TantivyError, Term,
};

pub use indexer::Indexer;

use bits::Bits;
use exec::{Entry, Order, Plan, Text};
use schema::Fields;
use segdata::{FacetInterner, FacetKind, SegData};

#[derive(Debug, Clone, PartialEq)]
pub struct SearchDoc {
    /// Unique key, e.g. `io.github.acme/weather`.
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    /// Latest version. Not indexed: hits are resolved to packages by name.
    pub version: String,
    /// (tool name, tool description)
    pub tools: Vec<(String, String)>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
    /// "stdio", "streamable-http", "sse"
    pub transports: Vec<String>,
    /// "npm", "pypi", "oci", "remote", "command", ...
    pub registry_types: Vec<String>,
    pub has_secrets: bool,
    /// "active" | "deprecated"
    pub status: String,
    pub popularity: u64,
    /// Unix seconds.
    pub updated_at: i64,
}

// Boxing the document would only add an allocation: nearly every change is an upsert.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Change {
    Upsert(SearchDoc),
    /// Package name.
    Remove(String),
}

#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub q: String,
    pub category: Option<String>,
    pub tag: Option<String>,
    pub transport: Option<String>,
    pub registry_type: Option<String>,
    pub has_secrets: Option<bool>,
    /// Deprecated packages are excluded unless set.
    pub include_deprecated: bool,
    /// 1..=100, validated by the caller.
    pub limit: usize,
    pub offset: usize,
    pub sort: Sort,
}

/// The order of results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// With query text, relevance; without, popularity.
    #[default]
    Relevance,
    /// Most recently updated first (then name), with or without query text.
    Updated,
}

impl Sort {
    /// The wire names (`?sort=`), as the API and the web UI spell them.
    pub fn parse(s: &str) -> Option<Sort> {
        match s {
            "relevance" => Some(Sort::Relevance),
            "updated" => Some(Sort::Updated),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::Updated => "updated",
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub name: String,
    /// Relevance × popularity boost; 0 when the query text is empty (popularity order).
    pub score: f32,
}

#[derive(Debug, Clone, serde::Serialize, Default)]
pub struct Facets {
    pub categories: Vec<FacetCount>,
    pub tags: Vec<FacetCount>,
    pub transports: Vec<FacetCount>,
    pub registry_types: Vec<FacetCount>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    pub total: u64,
    pub facets: Facets,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The index cannot be read by this version: delete the directory and rebuild.
    #[error("search index unreadable or incompatible: {0}")]
    Corrupt(String),
    /// Another process holds the index writer lock. Do not wipe the directory.
    #[error("search index is locked by another writer: {0}")]
    Locked(String),
    /// The `Indexer` has shut down.
    #[error("search indexer is shut down")]
    Closed,
    #[error("search index error: {0}")]
    Internal(String),
}

impl SearchError {
    /// One batch failure is reported to every submitter of the batch; `io::Error` is not Clone.
    fn duplicate(&self) -> SearchError {
        match self {
            SearchError::Io(e) => SearchError::Io(std::io::Error::new(e.kind(), e.to_string())),
            SearchError::Corrupt(s) => SearchError::Corrupt(s.clone()),
            SearchError::Locked(s) => SearchError::Locked(s.clone()),
            SearchError::Closed => SearchError::Closed,
            SearchError::Internal(s) => SearchError::Internal(s.clone()),
        }
    }
}

fn op_err(e: TantivyError) -> SearchError {
    match e {
        TantivyError::IoError(io) => {
            SearchError::Io(std::io::Error::new(io.kind(), io.to_string()))
        }
        other => SearchError::Internal(other.to_string()),
    }
}

/// Errors while opening mean the directory content is not a usable index for this schema,
/// except for a held lock or a directory that cannot be opened at all.
fn open_err(e: TantivyError) -> SearchError {
    match e {
        TantivyError::LockFailure(..) => SearchError::Locked(e.to_string()),
        TantivyError::OpenDirectoryError(_) => {
            SearchError::Io(std::io::Error::other(e.to_string()))
        }
        other => SearchError::Corrupt(other.to_string()),
    }
}

/// Writer heap: tantivy flushes a segment when it is full. Enough to batch thousands of
/// documents, small enough for a small box.
const WRITER_MEMORY_BYTES: usize = 50_000_000;
/// Bumped whenever the schema or analyzers change meaning; an index written with another
/// format is reported as Corrupt so that it gets rebuilt.
const INDEX_FORMAT: u32 = 1;
/// Caps the per-query top-k heap for absurd offsets; no page past this exists.
const MAX_WINDOW: usize = 100_000;
const FACET_TOP: usize = 20;

#[derive(serde::Serialize, serde::Deserialize)]
struct CommitPayload {
    format: u32,
    generation: u64,
}

/// What a search reads: a searcher and the segment data built for exactly its segments.
struct Snapshot {
    searcher: Searcher,
    /// By segment ordinal.
    segs: Vec<SegView>,
    facet_keys: Arc<Vec<(FacetKind, Arc<str>)>>,
    facet_lookup: Arc<[HashMap<Box<str>, u32>; 4]>,
}

struct SegView {
    data: Arc<SegData>,
    /// Live documents, when some are deleted. Deletes change without the segment changing,
    /// so this belongs to the snapshot, not to the cached segment data.
    alive: Option<Bits>,
}

#[derive(Default)]
struct SegCache {
    by_id: HashMap<SegmentId, Arc<SegData>>,
    interner: FacetInterner,
}

struct Inner {
    dir: PathBuf,
    index: Index,
    fields: Fields,
    reader: IndexReader,
    /// Also serializes reloads, which always follow a commit. `None` once closed: the
    /// writer holds the directory's lock, which a reopen in the same process needs.
    writer: Mutex<Option<IndexWriter<TantivyDocument>>>,
    snapshot: RwLock<Arc<Snapshot>>,
    cache: Mutex<SegCache>,
    generation: Mutex<Option<u64>>,
    /// The generation searches see (set after the reader reload that follows a commit),
    /// with a condvar so readers can wait for their own writes to become visible.
    visible: (Mutex<Option<u64>>, std::sync::Condvar),
    commits: AtomicU64,
    query_analyzer: TextAnalyzer,
    /// Per-document score buffers, reused across searches: a fresh one per query (400 KB at
    /// 100k documents) would cost page faults every time. A pool rather than thread-locals
    /// so memory follows concurrent searches, not the number of threads that ever searched.
    scratch: Mutex<Vec<Vec<f32>>>,
}

/// Buffers kept in `Inner::scratch`; more concurrent searches allocate and drop their own.
const MAX_SCRATCH_BUFFERS: usize = 4;

#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not turn every later call into a panic.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn default_merge_policy() -> Box<dyn MergePolicy> {
    let mut p = LogMergePolicy::default();
    // Fewer, larger segments: per-query cost has a per-segment part (dictionary walks for
    // fuzzy/prefix expansion), and merging small segments is cheap.
    p.set_min_num_segments(4);
    Box::new(p)
}

impl SearchIndex {
    /// Open or create the index in `dir`. An unreadable/incompatible index is
    /// `SearchError::Corrupt` (delete the directory and rebuild).
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema::build_schema();
        let mmap = MmapDirectory::open(dir).map_err(|e| open_err(e.into()))?;
        let index = Index::open_or_create(mmap, schema).map_err(open_err)?;
        schema::register_analyzers(&index);
        let metas = index.load_metas().map_err(open_err)?;
        let generation = match metas.payload.as_deref() {
            None => None,
            Some(p) => match serde_json::from_str::<CommitPayload>(p) {
                Ok(c) if c.format == INDEX_FORMAT => Some(c.generation),
                Ok(c) => {
                    return Err(SearchError::Corrupt(format!(
                        "index format {} (expected {INDEX_FORMAT})",
                        c.format
                    )));
                }
                Err(e) => return Err(SearchError::Corrupt(format!("commit payload: {e}"))),
            },
        };
        let writer: IndexWriter<TantivyDocument> = index
            .writer_with_num_threads(1, WRITER_MEMORY_BYTES)
            .map_err(open_err)?;
        writer.set_merge_policy(default_merge_policy());
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(open_err)?;
        let mut cache = SegCache::default();
        let snapshot = build_snapshot(&reader, &fields.text, &mut cache)?;
        Ok(SearchIndex {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                index,
                fields,
                reader,
                writer: Mutex::new(Some(writer)),
                snapshot: RwLock::new(Arc::new(snapshot)),
                cache: Mutex::new(cache),
                generation: Mutex::new(generation),
                visible: (Mutex::new(generation), std::sync::Condvar::new()),
                commits: AtomicU64::new(0),
                query_analyzer: schema::words_analyzer(),
                scratch: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Drop the writer (after its merges finish), releasing the index directory's lock so
    /// the directory can be opened again, e.g. by a restart in the same process. Searches
    /// keep working; later writes fail with `SearchError::Closed`. Blocks on merges.
    pub fn close(&self) {
        let writer = lock(&self.inner.writer).take();
        if let Some(w) = writer {
            if let Err(e) = w.wait_merging_threads() {
                tracing::warn!(error = %e, "search index: a merge failed while closing");
            }
        }
    }

    /// The store generation recorded by the last commit; None for a fresh index.
    pub fn indexed_generation(&self) -> Option<u64> {
        *lock(&self.inner.generation)
    }

    /// Number of commits made through this handle (observability; tests check batching).
    pub fn commit_count(&self) -> u64 {
        self.inner.commits.load(AtomicOrdering::Relaxed)
    }

    /// Apply `changes` in one commit recording `generation`, and make them visible to search
    /// before returning. Upsert replaces any document with the same name.
    pub fn apply(&self, changes: Vec<Change>, generation: u64) -> Result<(), SearchError> {
        let inner = &*self.inner;
        let mut guard = lock(&inner.writer);
        let writer = guard.as_mut().ok_or(SearchError::Closed)?;
        let result = (|| {
            for change in changes {
                match change {
                    Change::Upsert(doc) => {
                        writer.delete_term(Term::from_field_text(inner.fields.key, &doc.name));
                        writer
                            .add_document(schema::to_document(&inner.fields, &doc))
                            .map_err(op_err)?;
                    }
                    Change::Remove(name) => {
                        writer.delete_term(Term::from_field_text(inner.fields.key, &name));
                    }
                }
            }
            self.commit(writer, generation)
        })();
        if result.is_err() {
            // Otherwise the half-applied batch would ride along with the next commit.
            let _ = writer.rollback();
            return result;
        }
        self.refresh()
    }

    /// Replace the whole index content with `docs` in one commit recording `generation`.
    pub fn rebuild(
        &self,
        docs: impl Iterator<Item = SearchDoc>,
        generation: u64,
    ) -> Result<(), SearchError> {
        let inner = &*self.inner;
        let mut guard = lock(&inner.writer);
        let writer = guard.as_mut().ok_or(SearchError::Closed)?;
        // No background merges while loading: the result is merged into one segment below.
        writer.set_merge_policy(Box::new(NoMergePolicy));
        let result = (|| {
            writer.delete_all_documents().map_err(op_err)?;
            for doc in docs {
                writer
                    .add_document(schema::to_document(&inner.fields, &doc))
                    .map_err(op_err)?;
            }
            self.commit(writer, generation)
        })();
        if result.is_err() {
            writer.set_merge_policy(default_merge_policy());
            let _ = writer.rollback();
            return result;
        }
        // A full rebuild is the moment to pay for one segment: every query does per-segment
        // work, so one segment is the fastest layout. The content is committed already, so
        // a failed merge only costs speed.
        match inner.index.searchable_segment_ids() {
            Ok(ids) if ids.len() > 1 => {
                if let Err(e) = writer.merge(&ids).wait() {
                    tracing::warn!(error = %e, "search index: merging after rebuild failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "search index: listing segments failed"),
        }
        writer.set_merge_policy(default_merge_policy());
        self.refresh()
    }

    /// Merge every searchable segment into one, the fastest layout to query: a query does
    /// per-segment work (dictionary walks for fuzzy and prefix terms, score arrays, facet
    /// passes), so a 100k-document index in five segments answers its slowest queries about
    /// twice as slowly as in one. Commits go on while the merge runs (the writer lock is only
    /// held to start it; tantivy carries deletes made meanwhile over to the merged segment).
    /// Returns whether there was anything to merge.
    pub fn consolidate(&self) -> Result<bool, SearchError> {
        let inner = &*self.inner;
        // A commit landing mid-merge can make tantivy drop the merge's result (its inputs
        // changed under it; nothing is lost, the old segments stay): try again on the new set.
        let mut attempt = 0;
        loop {
            let merge = {
                let mut guard = lock(&inner.writer);
                let writer = guard.as_mut().ok_or(SearchError::Closed)?;
                let ids = inner.index.searchable_segment_ids().map_err(op_err)?;
                if ids.len() < 2 {
                    // A background merge (the merge policy's) may have done the work: make
                    // searches see the segments that are now committed.
                    if self.segment_count() != ids.len() {
                        self.refresh()?;
                    }
                    return Ok(attempt > 0);
                }
                writer.merge(&ids)
            };
            attempt += 1;
            match merge.wait() {
                Ok(_) => break,
                Err(e) if attempt < 3 => {
                    tracing::debug!(error = %e, "search index: merge raced a commit; retrying");
                }
                Err(e) => return Err(op_err(e)),
            }
        }
        let _writer = lock(&inner.writer);
        self.refresh()?;
        Ok(true)
    }

    /// Segments searches currently walk.
    pub fn segment_count(&self) -> usize {
        self.snapshot().segs.len()
    }

    fn commit(
        &self,
        writer: &mut IndexWriter<TantivyDocument>,
        generation: u64,
    ) -> Result<(), SearchError> {
        let payload = serde_json::to_string(&CommitPayload {
            format: INDEX_FORMAT,
            generation,
        })
        .map_err(|e| SearchError::Internal(e.to_string()))?;
        let mut prepared = writer.prepare_commit().map_err(op_err)?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(op_err)?;
        *lock(&self.inner.generation) = Some(generation);
        self.inner.commits.fetch_add(1, AtomicOrdering::Relaxed);
        Ok(())
    }

    /// Caller holds the writer lock, so reloads never race each other.
    fn refresh(&self) -> Result<(), SearchError> {
        let inner = &*self.inner;
        inner.reader.reload().map_err(op_err)?;
        let snapshot = build_snapshot(&inner.reader, &inner.fields.text, &mut lock(&inner.cache))?;
        *inner.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        let committed = *lock(&inner.generation);
        *lock(&inner.visible.0) = committed;
        inner.visible.1.notify_all();
        Ok(())
    }

    /// Block until searches see at least `generation`, or `timeout` passes. Returns whether
    /// they do. Lets a reader see its own committed writes without making every writer wait
    /// for the (fsync-heavy) index commit.
    pub fn wait_for_generation(&self, generation: u64, timeout: std::time::Duration) -> bool {
        let (m, cv) = &self.inner.visible;
        let deadline = std::time::Instant::now() + timeout;
        let mut seen = lock(m);
        loop {
            if seen.is_some_and(|g| g >= generation) {
                return true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            seen = cv
                .wait_timeout(seen, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn doc_count(&self) -> u64 {
        self.snapshot().searcher.num_docs()
    }

    /// On-disk size of the index directory, in bytes.
    pub fn size_bytes(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.inner.dir) else {
            return 0;
        };
        entries
            .filter_map(|e| e.ok()?.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    }

    pub fn search(&self, sq: &SearchQuery) -> Result<SearchPage, SearchError> {
        let inner = &*self.inner;
        let f = &inner.fields;
        let snap = self.snapshot();
        let searcher = &snap.searcher;

        let filter = |kind: FacetKind, v: &Option<String>| {
            v.as_ref()
                .map(|v| snap.facet_lookup[kind as usize].get(v.as_str()).copied())
        };
        let plan = Plan {
            k: sq.offset.saturating_add(sq.limit).min(MAX_WINDOW),
            by_updated: sq.sort == Sort::Updated,
            exclude_deprecated: !sq.include_deprecated,
            secrets: sq.has_secrets,
            filters: [
                filter(FacetKind::Category, &sq.category),
                filter(FacetKind::Tag, &sq.tag),
                filter(FacetKind::Transport, &sq.transport),
                filter(FacetKind::RegistryType, &sq.registry_type),
            ]
            .into_iter()
            .flatten()
            .collect(),
        };
        let mut counts = vec![0u64; snap.facet_keys.len()];
        let mut scores = lock(&inner.scratch).pop().unwrap_or_default();
        let mut outcomes = Vec::with_capacity(snap.segs.len());

        let q = query::clamp_query(&sq.q);
        let order = if q.is_empty() {
            for (reader, view) in searcher.segment_readers().iter().zip(&snap.segs) {
                outcomes.push(exec::run_segment(
                    &plan,
                    None,
                    reader,
                    &view.data,
                    view.alive.as_ref(),
                    &mut counts,
                    &mut scores,
                )?);
            }
            Order::Popularity
        } else {
            let terms = query::query_terms(&inner.query_analyzer, q);
            let seg_data: Vec<&SegData> = snap.segs.iter().map(|v| &*v.data).collect();
            let Some(text) = query::build_text_query(searcher, &seg_data, &f.text, &terms)? else {
                return Ok(SearchPage {
                    hits: Vec::new(),
                    total: 0,
                    facets: Facets::default(),
                });
            };
            let exact = exact_name_docs(searcher, f.name_lc, &q.to_lowercase())?;
            for (ord, (reader, view)) in searcher
                .segment_readers()
                .iter()
                .zip(&snap.segs)
                .enumerate()
            {
                let text = Text {
                    terms: text.get(ord).map_or(&[], Vec::as_slice),
                    exact: exact.get(ord).map_or(&[], Vec::as_slice),
                };
                outcomes.push(exec::run_segment(
                    &plan,
                    Some(text),
                    reader,
                    &view.data,
                    view.alive.as_ref(),
                    &mut counts,
                    &mut scores,
                )?);
            }
            Order::Relevance
        };

        let deferred: Vec<(&SegData, &Bits)> = outcomes
            .iter()
            .zip(&snap.segs)
            .filter_map(|(o, view)| Some((&*view.data, o.deferred.as_ref()?)))
            .collect();
        exec::finish_facets(&deferred, &snap.facet_keys, &mut counts, FACET_TOP);
        let order = if plan.by_updated {
            Order::Updated
        } else {
            order
        };
        let mut pool = lock(&inner.scratch);
        if pool.len() < MAX_SCRATCH_BUFFERS {
            pool.push(scores);
        }
        drop(pool);
        Ok(assemble_page(&snap, outcomes, counts, order, sq))
    }
}

/// Live documents whose lower-cased name equals `name`, per segment ordinal. Names differing
/// only by case are distinct packages, hence possibly several.
fn exact_name_docs(
    searcher: &Searcher,
    field: Field,
    name: &str,
) -> Result<Vec<Vec<DocId>>, SearchError> {
    let term = Term::from_field_text(field, name);
    let mut out = Vec::with_capacity(searcher.segment_readers().len());
    for seg in searcher.segment_readers() {
        let mut docs = Vec::new();
        let inverted = seg.inverted_index(field).map_err(op_err)?;
        if let Some(mut postings) = inverted.read_postings(&term, IndexRecordOption::Basic)? {
            let mut doc = postings.doc();
            while doc != TERMINATED {
                if !seg.is_deleted(doc) {
                    docs.push(doc);
                }
                doc = postings.advance();
            }
        }
        out.push(docs);
    }
    Ok(out)
}

fn assemble_page(
    snap: &Snapshot,
    outcomes: Vec<exec::SegOutcome>,
    counts: Vec<u64>,
    order: Order,
    sq: &SearchQuery,
) -> SearchPage {
    let mut total = 0;
    let mut cands: Vec<(Entry, &str)> = Vec::new();
    for (outcome, view) in outcomes.into_iter().zip(&snap.segs) {
        total += outcome.total;
        cands.extend(outcome.top.into_iter().map(|e| (e, view.data.name(e.doc))));
    }
    // Across segments, name ranks are not comparable: break ties on the names themselves.
    cands.sort_by(|(a, an), (b, bn)| {
        b.exact
            .cmp(&a.exact)
            .then(b.value.cmp(&a.value))
            .then_with(|| an.cmp(bn))
    });
    let hits = cands
        .into_iter()
        .skip(sq.offset)
        .take(sq.limit)
        .map(|(e, name)| Hit {
            name: name.to_owned(),
            score: match order {
                Order::Relevance => exec::bits_score(e.value),
                Order::Popularity | Order::Updated => 0.0,
            },
        })
        .collect();

    let mut by_kind: [Vec<(u64, &str)>; 4] = Default::default();
    for ((kind, value), &count) in snap.facet_keys.iter().zip(&counts) {
        if count > 0 {
            by_kind[*kind as usize].push((count, value));
        }
    }
    let [categories, tags, transports, registry_types] = by_kind.map(|mut v| {
        v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        v.into_iter()
            .take(FACET_TOP)
            .map(|(count, value)| FacetCount {
                value: value.to_owned(),
                count,
            })
            .collect()
    });
    SearchPage {
        hits,
        total,
        facets: Facets {
            categories,
            tags,
            transports,
            registry_types,
        },
    }
}

fn build_snapshot(
    reader: &IndexReader,
    text_fields: &[schema::TextField],
    cache: &mut SegCache,
) -> Result<Snapshot, SearchError> {
    let searcher = reader.searcher();
    let mut by_id = HashMap::with_capacity(searcher.segment_readers().len());
    let mut segs = Vec::with_capacity(searcher.segment_readers().len());
    for seg in searcher.segment_readers() {
        let id = seg.segment_id();
        let data = match cache.by_id.get(&id) {
            Some(d) => d.clone(),
            None => Arc::new(SegData::build(seg, text_fields, &mut cache.interner)?),
        };
        by_id.insert(id, data.clone());
        let alive = seg.alive_bitset().map(|a| {
            let mut bits = Bits::empty(seg.max_doc());
            for doc in a.iter_alive() {
                bits.insert(doc);
            }
            bits
        });
        segs.push(SegView { data, alive });
    }
    // Drop data of segments merged away or deleted.
    cache.by_id = by_id;
    Ok(Snapshot {
        searcher,
        segs,
        facet_keys: cache.interner.keys(),
        facet_lookup: cache.interner.lookup(),
    })
}
