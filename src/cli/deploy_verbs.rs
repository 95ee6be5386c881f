//! `sigil deploy`, `deployments`, `logs`, `restart`, `rm`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::{Api, Common, UsageError, enc, hinted, read_json, split_version};
use super::out;

#[derive(clap::Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub common: Common,
    /// NAME or NAME@VERSION.
    pub name: String,
    /// A declared setting, KEY=VALUE (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE")]
    pub config: Vec<String>,
    /// Deploy for a team: its members can use and manage it.
    #[arg(long)]
    pub team: Option<String>,
    /// Return once accepted instead of waiting until it is healthy.
    #[arg(long)]
    pub no_wait: bool,
    /// Longest to wait for the deployment to become ready, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Deployment id.
    pub id: String,
    /// Keep printing new lines until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// How many recent lines to show.
    #[arg(short = 'n', long, default_value_t = 200)]
    pub lines: usize,
}

#[derive(clap::Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub common: Common,
    /// Deployment id.
    pub id: String,
}

pub async fn create(
    api: &Api,
    name: &str,
    version: Option<&str>,
    config: &[String],
    team: Option<&str>,
) -> anyhow::Result<Value> {
    api.require_key()?;
    let mut cfg = Map::new();
    for kv in config {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(UsageError(format!("--config {kv}: expected KEY=VALUE")).into());
        };
        cfg.insert(k.to_string(), v.into());
    }
    let mut body = json!({ "package": name });
    if let Some(v) = version {
        body["version"] = v.into();
    }
    if !cfg.is_empty() {
        body["config"] = Value::Object(cfg);
    }
    if let Some(t) = team {
        body["team"] = t.into();
    }
    api.post("/deploy", &body).await
}

/// Poll until ready/running (or failed), with a spinner.
pub async fn wait_ready(api: &Api, d: &Value, timeout_secs: u64) -> anyhow::Result<Value> {
    let id = out::s(d, "id");
    let pb = out::spinner(&format!("deploying {} ({id})", out::s(d, "package")));
    let start = Instant::now();
    let mut cur = d.clone();
    let result = loop {
        let st = out::s(&cur, "status");
        pb.set_message(format!(
            "deploying {} ({id}): {st}",
            out::s(&cur, "package")
        ));
        match st.as_str() {
            "ready" | "running" => break Ok(cur),
            "failed" | "deleted" => {
                let mut msg = format!("deployment {id} {st}");
                let e = out::s(&cur, "lastError");
                if !e.is_empty() {
                    msg.push_str(&format!(": {e}"));
                }
                break Err(hinted(msg, format!("see `sigil logs {id}`")));
            }
            _ => {}
        }
        if start.elapsed() > Duration::from_secs(timeout_secs) {
            break Err(hinted(
                format!("deployment {id} is still {st} after {timeout_secs}s"),
                format!("follow it with `sigil logs {id} -f`"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        cur = match api.get(&format!("/deployments/{}", enc(&id))).await {
            Ok(v) => v,
            Err(e) => break Err(e),
        };
    };
    pb.finish_and_clear();
    result
}

pub fn print_deployed(d: &Value) {
    let name = out::s(d, "package");
    println!(
        "Deployed {} {} as {} ({})",
        out::bold(&name),
        out::s(d, "version"),
        out::s(d, "id"),
        out::s(d, "status")
    );
    println!("  gateway URL: {}", out::s(d, "packageUrl"));
    println!("  install:     sigil install {name} --client claude-code");
}

pub async fn deploy(a: DeployArgs) -> anyhow::Result<()> {
    let api = Api::connect(&a.common)?;
    let (name, version) = split_version(&a.name);
    let d = create(
        &api,
        &name,
        version.as_deref(),
        &a.config,
        a.team.as_deref(),
    )
    .await?;
    let d = if a.no_wait {
        d
    } else {
        wait_ready(&api, &d, a.timeout).await?
    };
    if a.common.json {
        out::json(&d);
    } else {
        print_deployed(&d);
    }
    Ok(())
}

pub async fn list(a: ListArgs) -> anyhow::Result<()> {
    let api = Api::connect(&a.common)?;
    api.require_key()?;
    let r = api.get("/deployments").await?;
    if a.common.json {
        out::json(&r);
        return Ok(());
    }
    let ds = r["deployments"].as_array().cloned().unwrap_or_default();
    if ds.is_empty() {
        println!("No deployments. Deploy one with `sigil deploy NAME`.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = ds
        .iter()
        .map(|d| {
            let instances = d["instances"].as_array().map(|a| a.len()).unwrap_or(0);
            vec![
                out::s(d, "id"),
                format!("{}@{}", out::s(d, "package"), out::s(d, "version")),
                out::s(d, "status"),
                out::s(d, "packageUrl"),
                instances.to_string(),
                out::s(d, "restarts"),
                out::s(d, "requestsToday"),
            ]
        })
        .collect();
    out::table(
        &[
            "ID",
            "NAME",
            "STATUS",
            "URL",
            "INSTANCES",
            "RESTARTS",
            "REQUESTS TODAY",
        ],
        &rows,
    );
    Ok(())
}

fn print_log(l: &Value) {
    println!(
        "{} {} {}",
        out::s(l, "at"),
        out::s(l, "stream"),
        out::s(l, "text")
    );
}

pub async fn logs(a: LogsArgs) -> anyhow::Result<()> {
    let api = Api::connect(&a.common)?;
    api.require_key()?;
    let path = format!("/deployments/{}/logs", enc(&a.id));
    let limit = a.lines.clamp(1, 5000).to_string();
    if !a.follow {
        let r = api
            .send(api.request(Method::GET, &path).query(&[("limit", limit)]))
            .await?;
        if a.common.json {
            out::json(&r);
        } else {
            r["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .for_each(print_log);
        }
        return Ok(());
    }
    // Follow: an SSE stream of `log` events, no overall timeout.
    let mut req = api
        .http()
        .get(api.url(&path))
        .query(&[("limit", limit.as_str()), ("follow", "true")])
        .header("accept", "text/event-stream");
    if let Some(k) = api.key() {
        req = req.bearer_auth(k);
    }
    let mut r = req.send().await.map_err(|e| api.transport_error(e))?;
    if !r.status().is_success() {
        read_json(r).await?;
        return Ok(());
    }
    let mut sse = Sse::default();
    while let Some(chunk) = r.chunk().await.map_err(|e| api.transport_error(e))? {
        for (event, data) in sse.push(&chunk) {
            if event == "log" {
                if let Ok(l) = serde_json::from_str::<Value>(&data) {
                    if a.common.json {
                        println!("{l}");
                    } else {
                        print_log(&l);
                    }
                }
            } else if event == "lagged" {
                out::warn(&format!("missed some lines: {data}"));
            }
        }
    }
    Ok(())
}

pub async fn restart(a: IdArgs) -> anyhow::Result<()> {
    let api = Api::connect(&a.common)?;
    api.require_key()?;
    let r = api
        .post(&format!("/deployments/{}/restart", enc(&a.id)), &json!({}))
        .await?;
    if a.common.json {
        out::json(&r);
    } else {
        println!("Restarting {}", a.id);
    }
    Ok(())
}

pub async fn rm(a: IdArgs) -> anyhow::Result<()> {
    let api = Api::connect(&a.common)?;
    api.require_key()?;
    let r = api.delete(&format!("/deployments/{}", enc(&a.id))).await?;
    if a.common.json {
        out::json(&r);
    } else {
        println!("Removed deployment {}", a.id);
    }
    Ok(())
}

/// An incremental `text/event-stream` parser: feed bytes, get (event, data) pairs.
#[derive(Default)]
pub struct Sse {
    buf: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl Sse {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    let ev = if self.event.is_empty() {
                        "message".to_string()
                    } else {
                        std::mem::take(&mut self.event)
                    };
                    out.push((ev, self.data.join("\n")));
                    self.data.clear();
                }
                self.event.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            match field {
                "event" => self.event = value.to_string(),
                "data" => self.data.push(value.to_string()),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::Sse;

    #[test]
    fn sse_events_split_across_chunks() {
        let mut p = Sse::default();
        assert!(p.push(b"event: log\ndata: {\"a\"").is_empty());
        let got = p.push(b":1}\n\n: keepalive\n\ndata: x\r\n\r\n");
        assert_eq!(
            got,
            vec![
                ("log".to_string(), "{\"a\":1}".to_string()),
                ("message".to_string(), "x".to_string())
            ]
        );
    }
}
