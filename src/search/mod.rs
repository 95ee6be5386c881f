// PLACEHOLDER until the search module lands (overwritten by it).
use std::path::Path;
#[derive(Debug, Clone, PartialEq)]
pub struct SearchDoc {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub version: String,
    pub tools: Vec<(String, String)>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
    pub transports: Vec<String>,
    pub registry_types: Vec<String>,
    pub has_secrets: bool,
    pub status: String,
    pub popularity: u64,
    pub updated_at: i64,
}
pub enum Change {
    Upsert(SearchDoc),
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
    pub include_deprecated: bool,
    pub limit: usize,
    pub offset: usize,
}
#[derive(Debug, Clone, serde::Serialize)]
pub struct Hit {
    pub name: String,
    pub score: f32,
}
#[derive(Debug, Clone, serde::Serialize, Default)]
pub struct Facets {
    pub categories: Vec<FacetCount>,
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
    #[error("corrupt {0}")]
    Corrupt(String),
    #[error("x")]
    Internal(String),
}
#[derive(Clone)]
pub struct SearchIndex;
impl SearchIndex {
    pub fn open(_dir: &Path) -> Result<Self, SearchError> {
        Ok(SearchIndex)
    }
    pub fn indexed_generation(&self) -> Option<u64> {
        None
    }
    pub fn apply(&self, _changes: Vec<Change>, _generation: u64) -> Result<(), SearchError> {
        Ok(())
    }
    pub fn rebuild(
        &self,
        _docs: impl Iterator<Item = SearchDoc>,
        _generation: u64,
    ) -> Result<(), SearchError> {
        Ok(())
    }
    pub fn search(&self, _q: &SearchQuery) -> Result<SearchPage, SearchError> {
        Ok(SearchPage {
            hits: vec![],
            total: 0,
            facets: Facets::default(),
        })
    }
}
#[derive(Clone)]
pub struct Indexer;
impl Indexer {
    pub fn start(_index: SearchIndex) -> Self {
        Indexer
    }
    pub async fn submit(&self, _changes: Vec<Change>, _generation: u64) -> Result<(), SearchError> {
        Ok(())
    }
    pub async fn shutdown(self) {}
}
