//! What client verbs print: tables or JSON on stdout, errors and progress on stderr,
//! colour only on a terminal and never with `NO_COLOR`, and prompts that do not echo.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::Value;

use super::client::{Hinted, ServerError, UsageError};

fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

pub fn color_stdout() -> bool {
    !no_color() && std::io::stdout().is_terminal()
}

pub fn color_stderr() -> bool {
    !no_color() && std::io::stderr().is_terminal()
}

fn paint(on: bool, code: &str, s: &str) -> String {
    if on {
        format!("\x1b[{code}m{s}\x1b[0m")
    } else {
        s.to_string()
    }
}

pub fn bold(s: &str) -> String {
    paint(color_stdout(), "1", s)
}

pub fn green(s: &str) -> String {
    paint(color_stdout(), "32", s)
}

pub fn json(v: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
    );
}

/// A left-aligned table with a bold header; empty cells show as `-`.
pub fn table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            let w = if c.is_empty() { 1 } else { c.chars().count() };
            if i < widths.len() {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c
                } else {
                    let pad = widths[i].saturating_sub(c.chars().count());
                    format!("{c}{}", " ".repeat(pad + 2))
                }
            })
            .collect::<String>()
    };
    let head = line(headers.iter().map(|h| h.to_string()).collect());
    println!("{}", bold(head.trim_end()));
    for r in rows {
        let cells = r
            .iter()
            .map(|c| {
                if c.is_empty() {
                    "-".to_string()
                } else {
                    c.clone()
                }
            })
            .collect();
        println!("{}", line(cells).trim_end());
    }
}

/// A string field, or "".
pub fn s(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The first of several spellings of a field (the API is camelCase; some views are not).
pub fn s2(v: &Value, a: &str, b: &str) -> String {
    let x = s(v, a);
    if x.is_empty() { s(v, b) } else { x }
}

/// A warning line on stderr.
pub fn warn(msg: &str) {
    eprintln!("{} {msg}", paint(color_stderr(), "33", "warning:"));
}

/// A note on stderr (progress, what happened), so stdout stays parseable.
pub fn note(msg: &str) {
    eprintln!("{msg}");
}

/// Print an error the way users of gh/cargo expect; returns the exit code (1, or 2 for
/// usage errors).
pub fn report_error(e: &anyhow::Error) -> u8 {
    let red = |s: &str| paint(color_stderr(), "31;1", s);
    if let Some(u) = e.downcast_ref::<UsageError>() {
        eprintln!("{} {u}", red("error:"));
        return 2;
    }
    if let Some(se) = e.downcast_ref::<ServerError>() {
        eprintln!("{} {} [{}]", red("error:"), se.message, se.code);
        if let Some(d) = &se.details {
            if let Some(issues) = d["issues"].as_array() {
                for i in issues {
                    let p = s(i, "path");
                    let m = s(i, "message");
                    if p.is_empty() {
                        eprintln!("  - {m}");
                    } else {
                        eprintln!("  - {p}: {m}");
                    }
                }
            }
            if let Some(missing) = d["missing"].as_array() {
                for m in missing {
                    eprintln!(
                        "  - missing secret {}: {}",
                        s(m, "name"),
                        s(m, "description")
                    );
                }
            }
            if let Some(req) = d["required"].as_str() {
                eprintln!("  required scope: {req}");
            }
        }
        if let Some(h) = &se.hint {
            eprintln!("  hint: {h}");
        }
        if let Some(set_with) = se.details.as_ref().and_then(|d| d["set_with"].as_str()) {
            eprintln!("  set it with: {set_with}");
        }
        return 1;
    }
    // The hint, if any, sits somewhere in the context chain.
    eprintln!("{} {e:#}", red("error:"));
    if let Some(h) = e.chain().find_map(|c| c.downcast_ref::<Hinted>()) {
        eprintln!("  hint: {}", h.hint);
    }
    1
}

/// A spinner on stderr, drawn only on a terminal.
pub fn spinner(msg: &str) -> indicatif::ProgressBar {
    let pb = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// Read a secret: from a terminal without echo, else one line of stdin.
pub fn read_secret(prompt: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("{prompt}");
        std::io::stderr().flush().ok();
        let _guard = NoEcho::new();
        let mut line = String::new();
        stdin.read_line(&mut line)?;
        eprintln!();
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    } else {
        read_stdin_value()
    }
}

/// All of stdin, minus one trailing newline (what `echo value |` adds).
pub fn read_stdin_value() -> anyhow::Result<String> {
    use std::io::Read;
    let mut buf = String::new();
    std::io::stdin().read_to_string(&mut buf)?;
    let v = buf
        .strip_suffix("\r\n")
        .or_else(|| buf.strip_suffix('\n'))
        .unwrap_or(&buf);
    Ok(v.to_string())
}

/// Terminal echo off until dropped.
struct NoEcho {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl NoEcho {
    fn new() -> NoEcho {
        #[cfg(unix)]
        {
            // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed, then filled, termios.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(0, &mut t) != 0 {
                    return NoEcho { saved: None };
                }
                let saved = t;
                t.c_lflag &= !libc::ECHO;
                t.c_lflag |= libc::ECHONL;
                libc::tcsetattr(0, libc::TCSANOW, &t);
                NoEcho { saved: Some(saved) }
            }
        }
        #[cfg(not(unix))]
        NoEcho {}
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(t) = self.saved {
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &t);
            }
        }
    }
}
