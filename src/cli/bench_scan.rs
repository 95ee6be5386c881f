//! `sigil bench scan`: the deploy-time contents and dependency scan over a generated
//! package of N files (default 5,000) shaped like an installed npm server: its own sources,
//! node_modules with manifests, type declarations, native addons, a bundled file over the
//! size cap, an install script and a planted credential. Numbers go in
//! docs/PERFORMANCE.md under "Scan".

use std::path::Path;
use std::time::{Duration, Instant};

use crate::scan::advisories::{self, MemoryAdvisories, osv};
use crate::scan::contents::{ContentsOptions, scan_dir};

use super::bench::TempDir;

const RUNS: usize = 5;

pub fn run(count: usize) -> anyhow::Result<()> {
    let count = count.max(50);
    let tmp = TempDir::new()?;
    let root = tmp.0.join("package");
    let t = Instant::now();
    let (files, bytes) = generate(&root, count)?;
    println!(
        "machine: {} cores; generated {files} files, {:.1} MiB in {:.0} ms ({})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        bytes as f64 / 1048576.0,
        t.elapsed().as_secs_f64() * 1000.0,
        root.display()
    );
    let mut db = MemoryAdvisories::default();
    for i in 0..200 {
        let v = serde_json::json!({
            "id": format!("GHSA-bench-{i:04}"),
            "affected": [{"package": {"ecosystem": "npm", "name": format!("dep-{i}")},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.5"}]}]}],
        });
        if let Ok(a) = osv::parse(&v) {
            db.add(a);
        }
    }
    let rss_before = super::bench::rss_kib();
    let mut contents_times = Vec::new();
    let mut deps_times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let scan = scan_dir(&root, &ContentsOptions::default());
        contents_times.push(t.elapsed());
        let t = Instant::now();
        let deps = advisories::discover(&root);
        let matches = advisories::match_dependencies(&deps, &db)?;
        deps_times.push(t.elapsed());
        last = Some((scan, deps.len(), matches.len()));
    }
    let (scan, deps, matches) = last.ok_or_else(|| anyhow::anyhow!("no runs"))?;
    let mut rules: Vec<&str> = scan.findings.iter().map(|f| f.rule.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    contents_times.sort();
    deps_times.sort();
    let total: Vec<Duration> = contents_times
        .iter()
        .zip(&deps_times)
        .map(|(a, b)| *a + *b)
        .collect();
    println!(
        "contents scan: {} files, {:.1} MiB read, {} over the size cap; median {:.0} ms, best {:.0} ms ({:.0} files/s)",
        scan.files,
        scan.bytes as f64 / 1048576.0,
        scan.skipped_large,
        ms(contents_times[RUNS / 2]),
        ms(contents_times[0]),
        scan.files as f64 / contents_times[RUNS / 2].as_secs_f64()
    );
    println!(
        "dependencies: {deps} found, {matches} advisory match(es) against 200 advisories; median {:.0} ms",
        ms(deps_times[RUNS / 2])
    );
    println!(
        "total (contents + dependencies): median {:.0} ms over {RUNS} runs, warm page cache",
        ms(total[RUNS / 2])
    );
    println!("findings: {} ({})", scan.findings.len(), rules.join(", "));
    println!(
        "RSS: {} KiB before, {} KiB after",
        rss_before,
        super::bench::rss_kib()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Write the synthetic package; returns (files, bytes).
struct Writer<'a> {
    root: &'a Path,
    files: usize,
    bytes: u64,
}

impl Writer<'_> {
    fn write(&mut self, rel: &str, data: &[u8]) -> anyhow::Result<()> {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(p, data)?;
        self.files += 1;
        self.bytes += data.len() as u64;
        Ok(())
    }
}

fn generate(root: &Path, count: usize) -> anyhow::Result<(usize, u64)> {
    let mut w = Writer {
        root,
        files: 0,
        bytes: 0,
    };
    w.write(
        "package.json",
        br#"{"name":"bench-server","version":"1.0.0","main":"dist/index.js","scripts":{"build":"tsc","postinstall":"node scripts/setup.js"}}"#,
    )?;
    w.write(
        "mcp.yaml",
        b"name: bench\ndescription: Bench server\nversion: 1.0.0\ncommand:\n  cmd: node\n  args: [dist/index.js]\n  transport: stdio\n",
    )?;
    w.write(
        "README.md",
        "# Bench server\n\nAn MCP server.\n".repeat(50).as_bytes(),
    )?;
    // A 2 MiB bundle: over the cap, only checked for executable magic.
    w.write("dist/bundle.js", js_module(0).repeat(600).as_bytes())?;
    // A planted credential in the server's own config.
    w.write(
        "src/config.js",
        format!(
            "module.exports = {{\n  region: 'eu-west-1',\n  accessKeyId: '{}',\n}};\n",
            "AKIA".to_string() + "Q7ZP3VJ2LW5XK8RT"
        )
        .as_bytes(),
    )?;
    let own = (count / 25).max(10);
    for i in 0..own {
        w.write(&format!("src/module_{i}.js"), js_module(i).as_bytes())?;
    }
    // Dependencies: 24 files each until the count is reached.
    let mut dep = 0;
    while w.files < count {
        let base = format!("node_modules/dep-{dep}");
        w.write(
            &format!("{base}/package.json"),
            format!(
                r#"{{"name":"dep-{dep}","version":"1.0.{}","main":"index.js","license":"MIT"}}"#,
                dep % 10
            )
            .as_bytes(),
        )?;
        for j in 0..20 {
            if w.files >= count {
                break;
            }
            let name = if j % 4 == 3 {
                format!("{base}/lib/types_{j}.d.ts")
            } else {
                format!("{base}/lib/file_{j}.js")
            };
            w.write(&name, js_module(dep * 31 + j).as_bytes())?;
        }
        if w.files < count {
            w.write(
                &format!("{base}/README.md"),
                b"# dep\n\nUsage: require it.\n",
            )?;
        }
        if dep % 40 == 7 && w.files < count {
            let mut elf = vec![0x7F, b'E', b'L', b'F', 2, 1, 1, 0];
            elf.resize(200 * 1024, 0x90);
            w.write(&format!("{base}/build/Release/addon.node"), &elf)?;
        }
        dep += 1;
    }
    Ok((w.files, w.bytes))
}

/// ~3.5 KiB of plausible JavaScript, varied by `seed`.
fn js_module(seed: usize) -> String {
    let mut s = String::with_capacity(4096);
    s.push_str("'use strict';\n\nconst { EventEmitter } = require('events');\n");
    s.push_str(&format!(
        "const DEFAULT_TIMEOUT = {};\nconst apiKey = process.env.SERVICE_API_KEY;\n\n",
        1000 + seed % 5000
    ));
    for k in 0..12 {
        s.push_str(&format!(
            "function handler{k}_{seed}(request, options = {{}}) {{\n  const url = `https://api.service.test/v{k}/items/${{request.id}}`;\n  if (!request || typeof request.id !== 'string') {{\n    throw new TypeError('request.id must be a string, got ' + typeof request.id);\n  }}\n  return fetch(url, {{ headers: {{ authorization: 'Bearer ' + apiKey }}, timeout: options.timeout || DEFAULT_TIMEOUT }});\n}}\n\n"
        ));
    }
    s.push_str("module.exports = { EventEmitter };\n");
    s
}
