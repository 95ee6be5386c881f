use std::collections::HashMap;

use super::*;

fn doc(name: &str, description: &str) -> SearchDoc {
    SearchDoc {
        name: name.to_owned(),
        title: None,
        description: description.to_owned(),
        version: "1.0.0".to_owned(),
        tools: Vec::new(),
        tags: Vec::new(),
        categories: Vec::new(),
        transports: vec!["stdio".to_owned()],
        registry_types: vec!["npm".to_owned()],
        has_secrets: false,
        status: "active".to_owned(),
        popularity: 0,
        updated_at: 1_700_000_000,
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn corpus() -> Vec<SearchDoc> {
    let mut weather = doc(
        "io.github.acme/weather-server",
        "Current conditions and forecasts for any city",
    );
    weather.title = Some("Acme Weather".to_owned());
    weather.tools = vec![
        (
            "get_forecast".to_owned(),
            "Daily forecast for a location".to_owned(),
        ),
        (
            "getAlerts".to_owned(),
            "Severe storm warnings from the national service".to_owned(),
        ),
    ];
    weather.tags = strings(&["weather", "climate"]);
    weather.categories = strings(&["data"]);
    weather.popularity = 50;

    let mut github = doc(
        "io.github.tools/github",
        "Manage repositories, issues and pull requests",
    );
    github.tools = vec![(
        "create_issue".to_owned(),
        "Open an issue in a repository".to_owned(),
    )];
    github.tags = strings(&["git", "devtools"]);
    github.categories = strings(&["developer"]);
    github.transports = strings(&["stdio", "streamable-http"]);
    github.has_secrets = true;
    github.popularity = 500;

    let mut pg = doc(
        "com.example/postgres",
        "Query a PostgreSQL database with read-only SQL",
    );
    pg.tools = vec![(
        "query".to_owned(),
        "Run a read-only SQL statement and return rows".to_owned(),
    )];
    pg.tags = strings(&["database", "sql"]);
    pg.categories = strings(&["data", "developer"]);
    pg.registry_types = strings(&["oci"]);
    pg.popularity = 10;

    let mut old = doc(
        "com.example/old-weather",
        "Legacy weather lookups, superseded",
    );
    old.tags = strings(&["weather"]);
    old.categories = strings(&["data"]);
    old.status = "deprecated".to_owned();

    let mut remote = doc(
        "dev.remote/fetch",
        "Fetch web pages and convert them to markdown",
    );
    remote.transports = strings(&["sse"]);
    remote.registry_types = strings(&["remote"]);
    remote.tags = strings(&["web"]);

    vec![weather, github, pg, old, remote]
}

fn open_with(docs: Vec<SearchDoc>) -> (tempfile::TempDir, SearchIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    index.rebuild(docs.into_iter(), 1).unwrap();
    (dir, index)
}

fn q(text: &str) -> SearchQuery {
    SearchQuery {
        q: text.to_owned(),
        limit: 10,
        ..Default::default()
    }
}

fn names(page: &SearchPage) -> Vec<&str> {
    page.hits.iter().map(|h| h.name.as_str()).collect()
}

fn search(index: &SearchIndex, text: &str) -> Vec<String> {
    names(&index.search(&q(text)).unwrap())
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn facet(counts: &[FacetCount], value: &str) -> Option<u64> {
    counts.iter().find(|c| c.value == value).map(|c| c.count)
}

#[test]
fn finds_by_word_in_tool_description() {
    let (_d, index) = open_with(corpus());
    assert_eq!(search(&index, "storm"), ["io.github.acme/weather-server"]);
    assert_eq!(search(&index, "statement"), ["com.example/postgres"]);
}

#[test]
fn finds_by_typo() {
    let (_d, index) = open_with(corpus());
    assert_eq!(search(&index, "wether")[0], "io.github.acme/weather-server");
    // Transposition counts as one edit.
    assert_eq!(search(&index, "databsae"), ["com.example/postgres"]);
    // Distance 2 only for long words.
    assert_eq!(search(&index, "repostiroies")[0], "io.github.tools/github");
}

#[test]
fn finds_by_prefix() {
    let (_d, index) = open_with(corpus());
    assert_eq!(search(&index, "forec"), ["io.github.acme/weather-server"]);
    assert_eq!(search(&index, "postg"), ["com.example/postgres"]);
    assert_eq!(search(&index, "markd"), ["dev.remote/fetch"]);
}

#[test]
fn finds_by_tag_and_name_parts_and_camel_case_tool() {
    let (_d, index) = open_with(corpus());
    assert_eq!(search(&index, "climate"), ["io.github.acme/weather-server"]);
    assert_eq!(search(&index, "acme"), ["io.github.acme/weather-server"]);
    assert_eq!(search(&index, "alerts"), ["io.github.acme/weather-server"]);
    assert_eq!(search(&index, "devtools"), ["io.github.tools/github"]);
}

#[test]
fn exact_match_outranks_fuzzy() {
    let mut a = doc("a/one", "the weather today");
    a.popularity = 0;
    let mut b = doc("b/two", "leather goods and feathers");
    b.popularity = 0;
    let (_d, index) = open_with(vec![b, a]);
    let hits = search(&index, "weather");
    assert_eq!(hits[0], "a/one");
}

#[test]
fn exact_name_ranks_first() {
    let mut docs = corpus();
    // Mentions every word of the name, more often, and is far more popular.
    let mut noisy = doc(
        "org.other/io-github-acme-weather-server",
        "io github acme weather server: weather server for io and github acme weather",
    );
    noisy.title = Some("Weather server".to_owned());
    noisy.popularity = 1_000_000;
    docs.push(noisy);
    let (_d, index) = open_with(docs);
    assert_eq!(
        search(&index, "io.github.acme/weather-server")[0],
        "io.github.acme/weather-server"
    );
    assert_eq!(
        search(&index, "  IO.GitHub.Acme/Weather-Server ")[0],
        "io.github.acme/weather-server"
    );
}

#[test]
fn popularity_reorders_equal_docs() {
    let mut a = doc("a/calendar", "calendar events");
    a.popularity = 3;
    let mut b = doc("b/calendar", "calendar events");
    b.popularity = 3000;
    let (_d, index) = open_with(vec![a.clone(), b.clone()]);
    assert_eq!(search(&index, "calendar"), ["b/calendar", "a/calendar"]);
    a.popularity = 90_000;
    index
        .apply(vec![Change::Upsert(a), Change::Upsert(b)], 2)
        .unwrap();
    assert_eq!(search(&index, "calendar"), ["a/calendar", "b/calendar"]);
}

#[test]
fn empty_query_orders_by_popularity_then_name() {
    let mut docs = corpus();
    let mut tie = doc("aaa/tie", "x");
    tie.popularity = 10; // same as postgres
    docs.push(tie);
    let (_d, index) = open_with(docs);
    let page = index.search(&q("   ")).unwrap();
    assert_eq!(
        names(&page),
        [
            "io.github.tools/github",
            "io.github.acme/weather-server",
            "aaa/tie",
            "com.example/postgres",
            "dev.remote/fetch",
        ]
    );
    assert_eq!(page.total, 5);
    assert!(page.hits.iter().all(|h| h.score == 0.0));
}

#[test]
fn filters_and_facets() {
    let (_d, index) = open_with(corpus());

    // No text: all non-deprecated docs.
    let page = index.search(&q("")).unwrap();
    assert_eq!(page.total, 4);
    let f = &page.facets;
    assert_eq!(facet(&f.categories, "data"), Some(2));
    assert_eq!(facet(&f.categories, "developer"), Some(2));
    assert_eq!(f.categories[0].value, "data"); // count tie: by value
    assert_eq!(facet(&f.transports, "stdio"), Some(3));
    assert_eq!(facet(&f.transports, "streamable-http"), Some(1));
    assert_eq!(facet(&f.transports, "sse"), Some(1));
    assert_eq!(f.transports[0].value, "stdio");
    assert_eq!(facet(&f.registry_types, "npm"), Some(2));
    assert_eq!(facet(&f.tags, "weather"), Some(1)); // deprecated one not counted
    assert_eq!(facet(&f.tags, "web"), Some(1));

    let mut sq = q("");
    sq.include_deprecated = true;
    let page = index.search(&sq).unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(facet(&page.facets.tags, "weather"), Some(2));

    let mut sq = q("");
    sq.category = Some("data".to_owned());
    let page = index.search(&sq).unwrap();
    assert_eq!(
        names(&page),
        ["io.github.acme/weather-server", "com.example/postgres"]
    );
    assert_eq!(facet(&page.facets.categories, "developer"), Some(1));
    assert_eq!(facet(&page.facets.registry_types, "oci"), Some(1));

    let mut sq = q("weather");
    sq.include_deprecated = true;
    sq.tag = Some("weather".to_owned());
    let page = index.search(&sq).unwrap();
    assert_eq!(page.total, 2);

    let mut sq = q("");
    sq.transport = Some("sse".to_owned());
    assert_eq!(names(&index.search(&sq).unwrap()), ["dev.remote/fetch"]);

    let mut sq = q("");
    sq.registry_type = Some("oci".to_owned());
    assert_eq!(names(&index.search(&sq).unwrap()), ["com.example/postgres"]);

    let mut sq = q("");
    sq.has_secrets = Some(true);
    assert_eq!(
        names(&index.search(&sq).unwrap()),
        ["io.github.tools/github"]
    );
    sq.has_secrets = Some(false);
    assert_eq!(index.search(&sq).unwrap().total, 3);

    // Filters combine with text; a filter value matching nothing yields nothing.
    let mut sq = q("sql");
    sq.category = Some("developer".to_owned());
    assert_eq!(names(&index.search(&sq).unwrap()), ["com.example/postgres"]);
    sq.category = Some("Developer".to_owned()); // exact, case-sensitive
    let page = index.search(&sq).unwrap();
    assert_eq!(page.total, 0);
    assert!(page.facets.categories.is_empty());
}

#[test]
fn paging() {
    let docs: Vec<SearchDoc> = (0..25)
        .map(|i| {
            let mut d = doc(&format!("p/{i:02}"), "common words here");
            d.popularity = i;
            d
        })
        .collect();
    let (_d, index) = open_with(docs);
    let mut sq = q("common");
    sq.limit = 10;
    sq.offset = 20;
    let page = index.search(&sq).unwrap();
    assert_eq!(page.total, 25);
    assert_eq!(names(&page), ["p/04", "p/03", "p/02", "p/01", "p/00"]);
    sq.offset = 1_000_000_000;
    assert!(index.search(&sq).unwrap().hits.is_empty());
}

#[test]
fn upsert_replaces_and_remove_deletes() {
    let (_d, index) = open_with(corpus());
    let mut pg = corpus().remove(2);
    pg.description = "Talk to a relational store".to_owned();
    pg.tools.clear();
    index.apply(vec![Change::Upsert(pg)], 2).unwrap();
    assert!(search(&index, "statement").is_empty());
    assert_eq!(search(&index, "relational"), ["com.example/postgres"]);
    assert_eq!(index.doc_count(), 5);

    index
        .apply(vec![Change::Remove("com.example/postgres".to_owned())], 3)
        .unwrap();
    assert!(search(&index, "relational").is_empty());
    assert!(search(&index, "com.example/postgres").is_empty());
    assert_eq!(index.doc_count(), 4);
    assert_eq!(index.indexed_generation(), Some(3));

    // Upsert twice in one batch keeps the last.
    let a = doc("x/y", "first");
    let b = doc("x/y", "second");
    index
        .apply(vec![Change::Upsert(a), Change::Upsert(b)], 4)
        .unwrap();
    assert!(search(&index, "first").is_empty());
    assert_eq!(search(&index, "second"), ["x/y"]);
}

#[test]
fn generation_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(index.indexed_generation(), None);
        index
            .apply(vec![Change::Upsert(doc("a/b", "hello world"))], 42)
            .unwrap();
        assert_eq!(index.indexed_generation(), Some(42));
    }
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(index.indexed_generation(), Some(42));
    assert_eq!(search(&index, "hello"), ["a/b"]);
    assert!(index.size_bytes() > 0);
}

#[test]
fn rebuild_replaces_everything() {
    let (_d, index) = open_with(corpus());
    index
        .apply(vec![Change::Upsert(doc("extra/one", "zebra"))], 2)
        .unwrap();
    index
        .rebuild(vec![doc("only/one", "giraffe")].into_iter(), 7)
        .unwrap();
    assert_eq!(index.doc_count(), 1);
    assert!(search(&index, "zebra").is_empty());
    assert!(search(&index, "weather").is_empty());
    assert_eq!(search(&index, "giraffe"), ["only/one"]);
    assert_eq!(index.indexed_generation(), Some(7));
    let page = index.search(&q("")).unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(facet(&page.facets.transports, "stdio"), Some(1));
    assert!(facet(&page.facets.categories, "data").is_none());
}

#[test]
fn corrupt_index_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("meta.json"), b"{ not json").unwrap();
    match SearchIndex::open(dir.path()) {
        Err(SearchError::Corrupt(_)) => {}
        Err(e) => panic!("expected Corrupt, got {e}"),
        Ok(_) => panic!("expected Corrupt, got an index"),
    }
}

#[test]
fn second_writer_is_locked_not_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SearchIndex::open(dir.path()).unwrap();
    match SearchIndex::open(dir.path()) {
        Err(SearchError::Locked(_)) => {}
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, got an index"),
    }
}

#[test]
fn hostile_queries_are_ok() {
    let (_d, index) = open_with(corpus());
    let long = "weather ".repeat(1300) + &"x".repeat(2000);
    let many_terms: String = (0..500).map(|i| format!("w{i} ")).collect();
    let cases = [
        "\"",
        "\"weather",
        ":",
        "name:weather",
        "(((",
        ")",
        "*",
        "weath*",
        "a AND OR NOT b",
        "-weather +storm",
        "[1 TO 5]",
        "~2",
        "\\",
        "🌦️🌦️",
        "天气 预报",
        "Ünïcödé wéather",
        "\0\u{1}\u{7f}",
        "a",
        "ab",
        long.as_str(),
        many_terms.as_str(),
    ];
    for case in cases {
        let page = index.search(&q(case));
        assert!(page.is_ok(), "query {case:?} failed: {page:?}");
    }
    // Folding applies to queries like to documents.
    assert_eq!(
        search(&index, "Ünïcödé wéather")[0],
        "io.github.acme/weather-server"
    );
    let mut sq = q("weather");
    sq.category = Some("\"(*:".to_owned());
    sq.tag = Some(String::new());
    assert_eq!(index.search(&sq).unwrap().total, 0);
}

#[test]
fn unicode_documents() {
    let mut d = doc("cn.example/天气", "查询 天气 预报 für Straße");
    d.tags = strings(&["météo"]);
    let (_d, index) = open_with(vec![d]);
    assert_eq!(search(&index, "天气"), ["cn.example/天气"]);
    assert_eq!(search(&index, "meteo"), ["cn.example/天气"]);
    assert_eq!(search(&index, "strasse").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexer_batches_concurrent_submits() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let indexer = Indexer::start(index.clone());
    let mut tasks = Vec::new();
    for i in 0..200u64 {
        let indexer = indexer.clone();
        tasks.push(tokio::spawn(async move {
            let d = doc(&format!("pkg/n{i}"), &format!("uniqueword{i} shared"));
            indexer.submit(vec![Change::Upsert(d)], i + 1).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(index.doc_count(), 200);
    assert_eq!(search(&index, "uniqueword137")[0], "pkg/n137");
    assert_eq!(index.search(&q("shared")).unwrap().total, 200);
    assert_eq!(index.indexed_generation(), Some(200));
    let commits = index.commit_count();
    assert!(commits < 50, "expected batching, got {commits} commits");

    // Generations never go backwards, even if a late submit carries an older one.
    indexer
        .submit(vec![Change::Remove("pkg/n0".to_owned())], 5)
        .await
        .unwrap();
    assert_eq!(index.indexed_generation(), Some(200));
    assert_eq!(index.doc_count(), 199);

    let other = indexer.clone();
    indexer.shutdown().await;
    assert!(matches!(
        other.submit(Vec::new(), 1).await,
        Err(SearchError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexer_shutdown_flushes_pending() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let indexer = Indexer::start(index.clone());
    let mut pending = Vec::new();
    for i in 0..20u64 {
        let d = doc(&format!("pkg/n{i}"), "x");
        pending.push(Box::pin(indexer.submit(vec![Change::Upsert(d)], i + 1)));
    }
    // Poll each once so its change is queued, without waiting for its commit.
    let mut unresolved = Vec::new();
    for mut fut in pending {
        tokio::select! {
            biased;
            r = &mut fut => r.unwrap(),
            _ = std::future::ready(()) => unresolved.push(fut),
        }
    }
    indexer.clone().shutdown().await;
    assert_eq!(index.doc_count(), 20);
    for fut in unresolved {
        fut.await.unwrap();
    }
}

/// Deterministic pseudo-random numbers for the consistency test.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// Checks totals, facet counts and popularity order against a brute-force evaluation, on an
/// index with several segments, deletes and replaced documents, so that every execution
/// path (bitset and per-document facet counting, deferred rare values, popularity walk and
/// heap) is compared with the obvious answer.
#[test]
fn matches_brute_force_across_segments() {
    // Same-length words: none is a prefix of another, so prefix expansion adds nothing and
    // the expected match set is simply "documents containing the word".
    let words: Vec<String> = (0..60).map(|i| format!("wd{i:03}x")).collect();
    let tags: Vec<String> = (0..120).map(|i| format!("tag{i}")).collect();
    let cats = ["alpha", "beta", "gamma", "delta"];
    let mut rng = Lcg(7);
    let mut live: HashMap<String, SearchDoc> = HashMap::new();
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    let mut generation = 0;
    for batch in 0..8 {
        let mut changes = Vec::new();
        for i in 0..400 {
            let n = rng.below(2500);
            let name = format!("pkg.{n}/srv");
            if batch > 0 && i % 10 == 0 {
                live.remove(&name);
                changes.push(Change::Remove(name));
                continue;
            }
            let text: Vec<&str> = (0..1 + rng.below(6))
                .map(|_| words[rng.below(words.len()).min(rng.below(words.len()))].as_str())
                .collect();
            let mut d = doc(&name, &text.join(" "));
            // Skewed tag use: a few frequent values (bitsets), a long tail (lists).
            d.tags = (0..rng.below(4))
                .map(|_| tags[rng.below(tags.len()).min(rng.below(tags.len()))].clone())
                .collect();
            d.tags.sort();
            d.tags.dedup();
            d.categories = vec![cats[rng.below(cats.len())].to_owned()];
            d.transports = vec![["stdio", "sse"][rng.below(2)].to_owned()];
            d.has_secrets = rng.below(3) == 0;
            if rng.below(10) == 0 {
                d.status = "deprecated".to_owned();
            }
            d.popularity = rng.below(50) as u64;
            live.insert(name, d.clone());
            changes.push(Change::Upsert(d));
        }
        generation += 1;
        index.apply(changes, generation).unwrap();
    }
    assert_eq!(index.doc_count(), live.len() as u64);

    let expect_facets = |docs: &[&SearchDoc]| {
        let mut tags: HashMap<&str, u64> = HashMap::new();
        let mut cats: HashMap<&str, u64> = HashMap::new();
        for d in docs {
            for t in &d.tags {
                *tags.entry(t).or_default() += 1;
            }
            for c in &d.categories {
                *cats.entry(c).or_default() += 1;
            }
        }
        let top = |m: HashMap<&str, u64>| {
            let mut v: Vec<(String, u64)> = m.into_iter().map(|(k, c)| (k.to_owned(), c)).collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(20);
            v
        };
        (top(tags), top(cats))
    };
    let got_facets = |f: &Facets| {
        let pairs = |v: &[FacetCount]| {
            v.iter()
                .map(|c| (c.value.clone(), c.count))
                .collect::<Vec<_>>()
        };
        (pairs(&f.tags), pairs(&f.categories))
    };

    let contains = |d: &SearchDoc, w: &str| d.description.split(' ').any(|t| t == w);
    let mut queries: Vec<SearchQuery> = Vec::new();
    for i in 0..40 {
        let mut sq = q(if i % 2 == 0 {
            ""
        } else {
            words[rng.below(words.len())].as_str()
        });
        sq.limit = 1 + rng.below(30);
        sq.offset = rng.below(3) * 7;
        match i % 5 {
            1 => sq.category = Some(cats[rng.below(cats.len())].to_owned()),
            2 => sq.tag = Some(tags[rng.below(10)].clone()),
            3 => sq.has_secrets = Some(rng.below(2) == 0),
            4 => sq.include_deprecated = true,
            _ => {}
        }
        queries.push(sq);
    }
    for sq in &queries {
        let mut expected: Vec<&SearchDoc> = live
            .values()
            .filter(|d| sq.include_deprecated || d.status != "deprecated")
            .filter(|d| sq.has_secrets.is_none_or(|s| d.has_secrets == s))
            .filter(|d| {
                sq.category
                    .as_ref()
                    .is_none_or(|c| d.categories.contains(c))
            })
            .filter(|d| sq.tag.as_ref().is_none_or(|t| d.tags.contains(t)))
            .filter(|d| sq.q.is_empty() || contains(d, &sq.q))
            .collect();
        let page = index.search(sq).unwrap();
        assert_eq!(page.total, expected.len() as u64, "total for {sq:?}");
        assert_eq!(
            got_facets(&page.facets),
            expect_facets(&expected),
            "facets for {sq:?}"
        );
        if sq.q.is_empty() {
            expected.sort_by(|a, b| b.popularity.cmp(&a.popularity).then(a.name.cmp(&b.name)));
            let want: Vec<&str> = expected
                .iter()
                .skip(sq.offset)
                .take(sq.limit)
                .map(|d| d.name.as_str())
                .collect();
            assert_eq!(names(&page), want, "order for {sq:?}");
        } else {
            assert!(page.hits.iter().all(|h| contains(&live[&h.name], &sq.q)));
            assert!(page.hits.windows(2).all(|w| w[0].score >= w[1].score));
            let expected_len = expected.len().saturating_sub(sq.offset).min(sq.limit);
            assert_eq!(page.hits.len(), expected_len, "hits for {sq:?}");
        }
    }
}

#[test]
fn words_in_most_documents_do_not_select_next_to_rarer_ones() {
    let docs: Vec<SearchDoc> = (0..1200)
        .map(|i| {
            let desc = if i % 400 == 0 {
                "zebra crossing"
            } else {
                "plain"
            };
            doc(&format!("io.github.user{i}/tool"), desc)
        })
        .collect();
    let (_d, index) = open_with(docs);
    assert_eq!(index.search(&q("github")).unwrap().total, 1200);
    let page = index.search(&q("github zebra")).unwrap();
    assert_eq!(page.total, 3);
    // A rare word that matches nothing does not make the common one disappear.
    assert_eq!(index.search(&q("github qqqqqqqqqqqq")).unwrap().total, 1200);
    // An exact name still comes first although "io" and "github" are everywhere.
    assert_eq!(
        search(&index, "io.github.user400/tool")[0],
        "io.github.user400/tool"
    );
}

#[test]
fn zero_limit_still_counts() {
    let (_d, index) = open_with(corpus());
    let mut sq = q("weather");
    sq.limit = 0;
    sq.include_deprecated = true;
    let page = index.search(&sq).unwrap();
    assert!(page.hits.is_empty());
    assert_eq!(page.total, 2);
    assert!(!page.facets.tags.is_empty());
}

#[test]
fn consolidation_merges_segments_without_losing_concurrent_commits() {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    for g in 1..=3u64 {
        let docs = (0..50).map(|i| doc(&format!("b{g}.n{i}/srv"), &format!("batch{g} tool")));
        index.apply(docs.map(Change::Upsert).collect(), g).unwrap();
    }
    assert!(
        index.segment_count() > 1,
        "one commit per batch, one segment each"
    );
    // A commit racing the merge: deletes a document of a segment being merged and adds one.
    let merging = {
        let index = index.clone();
        std::thread::spawn(move || index.consolidate())
    };
    index
        .apply(
            vec![
                Change::Remove("b1.n7/srv".to_owned()),
                Change::Upsert(doc("late.one/srv", "arrived during the merge")),
            ],
            4,
        )
        .unwrap();
    // Whether the racing merge won or was dropped and retried, nothing may be lost.
    merging.join().unwrap().unwrap();
    let check = |index: &SearchIndex| {
        assert_eq!(index.doc_count(), 150);
        assert_eq!(index.indexed_generation(), Some(4));
        assert_eq!(index.search(&q("batch1")).unwrap().total, 49);
        assert_eq!(search(index, "arrived"), ["late.one/srv"]);
        assert_eq!(index.search(&q("batch2")).unwrap().total, 50);
    };
    check(&index);
    index.consolidate().unwrap();
    assert_eq!(index.segment_count(), 1);
    check(&index);
    // And the merged layout is what a reopen finds.
    drop(index);
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(index.segment_count(), 1);
    check(&index);
}
