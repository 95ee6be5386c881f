//! The one redb file that holds everything durable.
//!
//! Domain code sees typed records and the [`ReadTx`]/[`WriteTx`] wrappers, never redb types.
//! Every mutation is one write transaction: [`Store::write`] commits when the closure returns
//! `Ok` and drops (aborts) the transaction otherwise, so a failed request leaves no trace.

mod records;

use std::marker::PhantomData;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use records::*;

/// The schema this build writes. Bump it together with a step in [`migrate`].
pub const SCHEMA_VERSION: u32 = 2;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const META_SCHEMA: &str = "schema_version";
const META_GENERATION: &str = "generation";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "data file was written by a newer Sigil (schema {found}, this build knows up to {known}); upgrade Sigil or restore a matching backup"
    )]
    SchemaTooNew { found: u32, known: u32 },
    #[error("data file is already in use by another Sigil process")]
    Locked,
    #[error("storage error: {0}")]
    Db(String),
    #[error("record in table {table} could not be decoded: {reason}")]
    Corrupt { table: &'static str, reason: String },
}

impl StoreError {
    fn db(e: impl std::fmt::Display) -> Self {
        StoreError::Db(e.to_string())
    }
}

impl From<redb::DatabaseError> for StoreError {
    fn from(e: redb::DatabaseError) -> Self {
        match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked,
            other => StoreError::db(other),
        }
    }
}

macro_rules! db_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::db(e) }
        }
    )*};
}
db_errors!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// A record type and the table that holds it. Values are JSON inside a version envelope so
/// old rows stay readable after a field is added (serde defaults) and a migration can find
/// rows that need rewriting.
pub trait Record: Serialize + DeserializeOwned {
    const TABLE: Table<Self>;
    /// Bumped when the record's meaning changes in a way serde defaults cannot absorb.
    const VERSION: u32 = 1;
}

/// A typed handle on one table; keys are bytes built by the record module's key helpers.
pub struct Table<R: ?Sized> {
    name: &'static str,
    _r: PhantomData<fn() -> Box<R>>,
}

impl<R: ?Sized> Table<R> {
    pub const fn new(name: &'static str) -> Self {
        Table {
            name,
            _r: PhantomData,
        }
    }
    fn def(&self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        TableDefinition::new(self.name)
    }
}

#[derive(Serialize, serde::Deserialize)]
struct Envelope<T> {
    v: u32,
    d: T,
}

fn encode<R: Record>(r: &R) -> Vec<u8> {
    #[derive(Serialize)]
    struct EnvelopeRef<'a, T> {
        v: u32,
        d: &'a T,
    }
    // Records are plain data with string keys: serializing them cannot fail.
    serde_json::to_vec(&EnvelopeRef {
        v: R::VERSION,
        d: r,
    })
    .unwrap_or_default()
}

fn decode<R: Record>(bytes: &[u8]) -> Result<R, StoreError> {
    serde_json::from_slice::<Envelope<R>>(bytes)
        .map(|e| e.d)
        .map_err(|e| StoreError::Corrupt {
            table: R::TABLE.name,
            reason: e.to_string(),
        })
}

pub struct Store {
    db: Database,
    /// The last committed generation, kept beside the file so the hot read path (every
    /// search asks it) needs no transaction. Only commits advance it, and `fetch_max`
    /// keeps two commits finishing in either order from moving it backwards.
    generation: std::sync::atomic::AtomicU64,
}

impl Store {
    /// Open (or create) the data file, refusing one from a newer schema and migrating an
    /// older one forward in a single transaction.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path)?;
        let store = Store {
            db,
            generation: std::sync::atomic::AtomicU64::new(0),
        };
        store.migrate()?;
        let committed = store.read(|r| r.generation())?;
        store
            .generation
            .store(committed, std::sync::atomic::Ordering::Release);
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        let mut w = WriteTx { tx, bumped: false };
        let found = match w.tx.open_table(META)?.get(META_SCHEMA)? {
            Some(v) => u32_from(v.value()),
            None => 0,
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        // Schema 0 → 1 is "create the tables"; later steps go here, one per version, all in
        // this one transaction so a crash leaves the file at the old schema.
        for t in records::ALL_TABLES {
            w.tx.open_table(TableDefinition::<&[u8], &[u8]>::new(t))?;
        }
        if found == 1 {
            backfill_latest_summaries(&mut w)?;
        }
        if found != SCHEMA_VERSION {
            w.tx.open_table(META)?
                .insert(META_SCHEMA, SCHEMA_VERSION.to_be_bytes().as_slice())?;
        }
        w.tx.commit()?;
        Ok(())
    }

    /// Read a consistent snapshot.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&ReadTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self.db.begin_read().map_err(StoreError::from)?;
        f(&ReadTx { tx })
    }

    /// Run `f` in one write transaction; commit on `Ok`, roll back on `Err`.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self.db.begin_write().map_err(StoreError::from)?;
        let mut w = WriteTx { tx, bumped: false };
        let out = f(&mut w)?;
        let mut advanced = None;
        if w.bumped {
            let generation = w.generation()? + 1;
            let mut meta = w.tx.open_table(META).map_err(StoreError::from)?;
            meta.insert(META_GENERATION, generation.to_be_bytes().as_slice())
                .map_err(StoreError::from)?;
            advanced = Some(generation);
        }
        w.tx.commit().map_err(StoreError::from)?;
        if let Some(g) = advanced {
            self.generation
                .fetch_max(g, std::sync::atomic::Ordering::AcqRel);
        }
        Ok(out)
    }

    /// The counter of commits that changed searchable data (the search index records the
    /// one it has seen, so a mismatch at start means "rebuild").
    pub fn generation(&self) -> Result<u64, StoreError> {
        Ok(self.generation.load(std::sync::atomic::Ordering::Acquire))
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.read(|r| {
            let meta = r.tx.open_table(META)?;
            Ok(meta.get(META_SCHEMA)?.map_or(0, |v| u32_from(v.value())))
        })
    }
}

fn u32_from(b: &[u8]) -> u32 {
    b.try_into().map(u32::from_be_bytes).unwrap_or(0)
}
fn u64_from(b: &[u8]) -> u64 {
    b.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

pub struct ReadTx {
    tx: redb::ReadTransaction,
}

pub struct WriteTx {
    tx: redb::WriteTransaction,
    bumped: bool,
}

/// Reads shared by both transaction kinds.
pub trait Reader {
    fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>, StoreError>;
    /// Rows with `start <= key < end` (either bound open when `None`), in key order,
    /// stopping after `limit` rows.
    fn range<R: Record>(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, R)>, StoreError>;
    fn generation(&self) -> Result<u64, StoreError>;

    /// Every row whose key starts with `prefix`.
    fn scan_prefix<R: Record>(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, R)>, StoreError> {
        let end = prefix_end(prefix);
        self.range(Some(prefix), end.as_deref(), usize::MAX)
    }
}

fn collect<R: Record>(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    start: Option<&[u8]>,
    end: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, R)>, StoreError> {
    use std::ops::Bound;
    let lo = start.map_or(Bound::Unbounded, Bound::Included);
    let hi = end.map_or(Bound::Unbounded, Bound::Excluded);
    let mut out = Vec::new();
    for item in table.range::<&[u8]>((lo, hi))? {
        if out.len() >= limit {
            break;
        }
        let (k, v) = item?;
        out.push((k.value().to_vec(), decode::<R>(v.value())?));
    }
    Ok(out)
}

/// Schema 1 → 2: package rows carry their latest version's summary.
fn backfill_latest_summaries(w: &mut WriteTx) -> Result<(), StoreError> {
    const BATCH: usize = 1024;
    let mut start: Option<Vec<u8>> = None;
    loop {
        let rows = w.range::<PackageRecord>(start.as_deref(), None, BATCH)?;
        let done = rows.len() < BATCH;
        for (key, mut pkg) in rows {
            if pkg.latest_summary.is_none() {
                if let Some(v) = pkg.latest.clone() {
                    if let Some(rec) = w.get::<VersionRecord>(&version_key(&pkg.name, &v))? {
                        pkg.set_latest(Some(&rec));
                        w.put(&key, &pkg)?;
                    }
                }
            }
            start = Some(key.into_iter().chain([0]).collect());
        }
        if done {
            return Ok(());
        }
    }
}

/// The smallest key greater than every key with this prefix (None: no such bound).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl Reader for ReadTx {
    fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>, StoreError> {
        let t = self.tx.open_table(R::TABLE.def())?;
        t.get(key)?.map(|v| decode(v.value())).transpose()
    }
    fn range<R: Record>(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, R)>, StoreError> {
        let t = self.tx.open_table(R::TABLE.def())?;
        collect(&t, start, end, limit)
    }
    fn generation(&self) -> Result<u64, StoreError> {
        let meta = self.tx.open_table(META)?;
        Ok(meta
            .get(META_GENERATION)?
            .map_or(0, |v| u64_from(v.value())))
    }
}

impl Reader for WriteTx {
    fn get<R: Record>(&self, key: &[u8]) -> Result<Option<R>, StoreError> {
        let t = self.tx.open_table(R::TABLE.def())?;
        t.get(key)?.map(|v| decode(v.value())).transpose()
    }
    fn range<R: Record>(
        &self,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, R)>, StoreError> {
        let t = self.tx.open_table(R::TABLE.def())?;
        collect(&t, start, end, limit)
    }
    fn generation(&self) -> Result<u64, StoreError> {
        let meta = self.tx.open_table(META)?;
        Ok(meta
            .get(META_GENERATION)?
            .map_or(0, |v| u64_from(v.value())))
    }
}

impl WriteTx {
    pub fn put<R: Record>(&mut self, key: &[u8], record: &R) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(R::TABLE.def())?;
        t.insert(key, encode(record).as_slice())?;
        Ok(())
    }
    pub fn delete<R: Record>(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        let mut t = self.tx.open_table(R::TABLE.def())?;
        Ok(t.remove(key)?.is_some())
    }
    /// Mark this transaction as changing what the search index shows; the commit then
    /// advances the store generation. Returns the generation the commit will record.
    pub fn bump_generation(&mut self) -> Result<u64, StoreError> {
        self.bumped = true;
        Ok(self.generation()? + 1)
    }
}

#[cfg(test)]
mod tests;
