//! Index layout: fields, analyzers and the mapping from `SearchDoc` to a tantivy document.

use tantivy::schema::{
    FAST, Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, TantivyDocument};

use super::SearchDoc;

/// Analyzer for identifier-like text (names, titles, tool names, tags): no stop words, so
/// that a name part such as `it` or `on` stays findable.
pub(crate) const WORDS: &str = "sigil_words";
/// Analyzer for prose (descriptions): stop words removed, they only add noise and postings.
pub(crate) const PROSE: &str = "sigil_prose";

/// Tokens longer than this are dropped at index and query time alike; they are never words
/// a person types, and bounding them bounds the cost of fuzzy automata.
const MAX_TOKEN_LEN: usize = 40;

/// The Lucene English list. Kept here rather than using tantivy's `stopwords` feature, which in
/// 0.27 does not compile without `stemmer`.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

pub(crate) const STATUS_DEPRECATED: &str = "deprecated";

/// Text fields searched by the free-text part of a query, with their boosts.
#[derive(Clone, Copy)]
pub(crate) struct TextField {
    pub field: Field,
    pub boost: f32,
    /// Whether the field's analyzer drops stop words (they can never match there).
    pub prose: bool,
}

pub(crate) const TEXT_FIELDS: usize = 6;

#[derive(Clone)]
pub(crate) struct Fields {
    /// Exact package name: the unique key used for replace/delete.
    pub key: Field,
    /// Lower-cased exact name, for "the query is exactly this package's name".
    pub name_lc: Field,
    pub text: [TextField; TEXT_FIELDS],
    pub category: Field,
    pub tag: Field,
    pub transport: Field,
    pub registry_type: Field,
    pub status: Field,
    pub has_secrets: Field,
    pub popularity: Field,
    pub updated_at: Field,
}

// Fast-field names read back when building per-segment data.
pub(crate) const F_KEY: &str = "key";
pub(crate) const F_CATEGORY: &str = "category";
pub(crate) const F_TAG: &str = "tag";
pub(crate) const F_TRANSPORT: &str = "transport";
pub(crate) const F_REGISTRY_TYPE: &str = "registry_type";
pub(crate) const F_STATUS: &str = "status";
pub(crate) const F_HAS_SECRETS: &str = "has_secrets";
pub(crate) const F_POPULARITY: &str = "popularity";
pub(crate) const F_UPDATED_AT: &str = "updated_at";

pub(crate) fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text_opts = |analyzer: &str| {
        // Frequencies without positions: ranking needs tf, but there are no phrase queries,
        // and positions would roughly double the postings size.
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let key = b.add_text_field(F_KEY, STRING | FAST);
    let name_lc = b.add_text_field("name_lc", STRING);
    let name = b.add_text_field("name", text_opts(WORDS));
    let title = b.add_text_field("title", text_opts(WORDS));
    let tool_names = b.add_text_field("tool_names", text_opts(WORDS));
    let labels = b.add_text_field("labels", text_opts(WORDS));
    let description = b.add_text_field("description", text_opts(PROSE));
    let tool_desc = b.add_text_field("tool_desc", text_opts(PROSE));
    let category = b.add_text_field(F_CATEGORY, STRING | FAST);
    let tag = b.add_text_field(F_TAG, STRING | FAST);
    let transport = b.add_text_field(F_TRANSPORT, STRING | FAST);
    let registry_type = b.add_text_field(F_REGISTRY_TYPE, STRING | FAST);
    let status = b.add_text_field(F_STATUS, STRING | FAST);
    let has_secrets = b.add_bool_field(F_HAS_SECRETS, FAST);
    let popularity = b.add_u64_field(F_POPULARITY, FAST);
    let updated_at = b.add_i64_field(F_UPDATED_AT, FAST);
    let tf = |field, boost, prose| TextField {
        field,
        boost,
        prose,
    };
    let fields = Fields {
        key,
        name_lc,
        text: [
            tf(name, 3.0, false),
            tf(title, 2.5, false),
            tf(tool_names, 2.0, false),
            tf(labels, 1.5, false),
            tf(description, 1.0, true),
            tf(tool_desc, 0.8, true),
        ],
        category,
        tag,
        transport,
        registry_type,
        status,
        has_secrets,
        popularity,
        updated_at,
    };
    (b.build(), fields)
}

pub(crate) fn words_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

pub(crate) fn prose_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| (*w).to_owned()),
        ))
        .build()
}

/// Analyzers are not persisted by tantivy: they must be registered on every open.
pub(crate) fn register_analyzers(index: &Index) {
    index.tokenizers().register(WORDS, words_analyzer());
    index.tokenizers().register(PROSE, prose_analyzer());
}

pub(crate) fn is_stop_word(token: &str) -> bool {
    STOP_WORDS.contains(&token)
}

/// Splits `getForecast` / `HTTPServer2` into words so camel-cased tool names are findable by
/// their parts (the tokenizer only splits on non-alphanumerics). Returns None when there is
/// nothing to split, to avoid indexing the same words twice.
fn split_camel(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut split = false;
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase() || prev.is_numeric() || (prev.is_uppercase() && next_lower) {
                out.push(' ');
                split = true;
            }
        }
        out.push(c);
    }
    split.then_some(out)
}

pub(crate) fn to_document(f: &Fields, d: &SearchDoc) -> TantivyDocument {
    let mut doc = TantivyDocument::default();
    doc.add_text(f.key, &d.name);
    doc.add_text(f.name_lc, d.name.to_lowercase());
    let [name, title, tool_names, labels, description, tool_desc] = f.text.map(|t| t.field);
    doc.add_text(name, &d.name);
    if let Some(t) = &d.title {
        doc.add_text(title, t);
    }
    for (tool, desc) in &d.tools {
        doc.add_text(tool_names, tool);
        if let Some(parts) = split_camel(tool) {
            doc.add_text(tool_names, parts);
        }
        doc.add_text(tool_desc, desc);
    }
    for v in d.tags.iter().chain(&d.categories) {
        doc.add_text(labels, v);
    }
    doc.add_text(description, &d.description);
    for v in &d.categories {
        doc.add_text(f.category, v);
    }
    for v in &d.tags {
        doc.add_text(f.tag, v);
    }
    for v in &d.transports {
        doc.add_text(f.transport, v);
    }
    for v in &d.registry_types {
        doc.add_text(f.registry_type, v);
    }
    doc.add_text(f.status, &d.status);
    doc.add_bool(f.has_secrets, d.has_secrets);
    doc.add_u64(f.popularity, d.popularity);
    doc.add_i64(f.updated_at, d.updated_at);
    doc
}

#[cfg(test)]
mod tests {
    use super::split_camel;

    #[test]
    fn camel_split() {
        assert_eq!(split_camel("getForecast").as_deref(), Some("get Forecast"));
        assert_eq!(split_camel("HTTPServer").as_deref(), Some("HTTP Server"));
        assert_eq!(split_camel("get_forecast"), None);
        assert_eq!(split_camel("lower"), None);
        assert_eq!(split_camel(""), None);
    }
}
