//! Per-deployment logs: server stderr, installer output and the runtime's own notes, in a
//! bounded in-memory ring (for the API and follow streams) and an append-only file rotated
//! at a size limit (for after the ring has moved on).

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use tokio::sync::broadcast;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub at: i64,
    /// `stderr`, `install` or `runtime`.
    pub stream: &'static str,
    /// Short id of the instance it came from ("" for install and deployment-wide lines).
    pub instance: String,
    pub text: String,
}

pub struct LogBuffer {
    ring: Mutex<VecDeque<LogLine>>,
    capacity: usize,
    tx: broadcast::Sender<LogLine>,
    file: Mutex<LogFile>,
}

struct LogFile {
    path: PathBuf,
    max_bytes: u64,
    file: Option<std::fs::File>,
    written: u64,
}

/// Longest line kept; a server printing a megabyte on one line should not fill memory.
const MAX_LINE: usize = 4096;

fn clip(text: &str) -> String {
    let mut text = text.trim_end_matches(['\r', '\n']).to_string();
    if text.len() > MAX_LINE {
        let mut cut = MAX_LINE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

impl LogBuffer {
    pub fn new(path: PathBuf, capacity: usize, max_bytes: u64) -> Self {
        let (tx, _) = broadcast::channel(256);
        LogBuffer {
            ring: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            tx,
            file: Mutex::new(LogFile {
                path,
                max_bytes,
                file: None,
                written: 0,
            }),
        }
    }

    pub fn push(&self, at: i64, stream: &'static str, instance: &str, text: &str) {
        self.push_lines(at, stream, instance, std::iter::once(text));
    }

    /// Several lines at once: one ring lock and one file write for all of them (a server
    /// that logs a line per request would otherwise cost a write per request).
    pub fn push_lines<'a>(
        &self,
        at: i64,
        stream: &'static str,
        instance: &str,
        texts: impl IntoIterator<Item = &'a str>,
    ) {
        let lines: Vec<LogLine> = texts
            .into_iter()
            .map(|text| LogLine {
                at,
                stream,
                instance: instance.to_string(),
                text: clip(text),
            })
            .collect();
        if lines.is_empty() {
            return;
        }
        {
            let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
            for line in &lines {
                if ring.len() == self.capacity {
                    ring.pop_front();
                }
                ring.push_back(line.clone());
            }
        }
        self.file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&lines);
        for line in lines {
            let _ = self.tx.send(line);
        }
    }

    /// The last `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<LogLine> {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let skip = ring.len().saturating_sub(n);
        ring.iter().skip(skip).cloned().collect()
    }

    /// Lines pushed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.tx.subscribe()
    }
}

impl LogFile {
    fn append(&mut self, lines: &[LogLine]) {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                Ok(f) => {
                    self.written = f.metadata().map(|m| m.len()).unwrap_or(0);
                    self.file = Some(f);
                }
                // The ring still has the lines; a missing file is not worth failing a server.
                Err(_) => return,
            }
        }
        let mut text = String::new();
        for line in lines {
            use std::fmt::Write as _;
            let _ = writeln!(
                text,
                "{} {} {} {}",
                crate::ambient::rfc3339(line.at),
                line.stream,
                if line.instance.is_empty() {
                    "-"
                } else {
                    &line.instance
                },
                line.text
            );
        }
        if let Some(f) = self.file.as_mut() {
            if f.write_all(text.as_bytes()).is_ok() {
                self.written += text.len() as u64;
            }
        }
        if self.max_bytes > 0 && self.written >= self.max_bytes {
            self.file = None;
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            let _ = std::fs::rename(&self.path, rotated);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_file_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/stderr.log");
        let b = LogBuffer::new(path.clone(), 3, 200);
        let mut rx = b.subscribe();
        for i in 0..10 {
            b.push(i, "stderr", "abc", &format!("line {i}\n"));
        }
        let tail: Vec<_> = b.tail(10).into_iter().map(|l| l.text).collect();
        assert_eq!(tail, vec!["line 7", "line 8", "line 9"]);
        assert_eq!(rx.try_recv().unwrap().text, "line 0");
        assert!(dir.path().join("logs/stderr.log.1").exists(), "rotated");
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(current.len() < 200, "{current}");
        b.push(11, "stderr", "", &"x".repeat(10_000));
        assert!(b.tail(1)[0].text.len() <= MAX_LINE + 3);
    }
}
