//! A small server-side highlighter for the blog's code blocks: comments, strings, numbers,
//! keywords and JSON/TOML/YAML keys, as `<span class="t-…">`. Enough for shell, TOML,
//! JSON, YAML and Rust snippets without a grammar engine in the binary.

fn keywords(lang: &str) -> &'static [&'static str] {
    match lang {
        "bash" | "sh" | "shell" | "console" => &[
            "if", "then", "else", "fi", "for", "do", "done", "export", "echo", "cd", "sudo",
            "while", "case", "esac", "in", "function", "return", "exit", "set",
        ],
        "rust" | "rs" => &[
            "fn", "let", "mut", "pub", "use", "mod", "struct", "enum", "impl", "match", "if",
            "else", "for", "in", "while", "loop", "return", "async", "await", "move", "trait",
            "where", "self", "Self", "const", "static", "crate", "true", "false",
        ],
        "json" | "toml" | "yaml" | "yml" => &["true", "false", "null"],
        _ => &[],
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn span(out: &mut String, class: &str, text: &str) {
    out.push_str("<span class=\"t-");
    out.push_str(class);
    out.push_str("\">");
    escape_into(out, text);
    out.push_str("</span>");
}

/// Highlighted, HTML-escaped code (without the surrounding `<pre><code>`).
pub fn highlight(lang: &str, code: &str) -> String {
    let lang = lang.trim().to_ascii_lowercase();
    let kws = keywords(&lang);
    let hash_comments = matches!(
        lang.as_str(),
        "bash" | "sh" | "shell" | "console" | "toml" | "yaml" | "yml" | "python" | "py"
    );
    let slash_comments = matches!(lang.as_str(), "rust" | "rs" | "js" | "javascript" | "ts");
    let keyed = matches!(lang.as_str(), "toml" | "yaml" | "yml");
    let mut out = String::with_capacity(code.len() * 2);
    for (i, line) in code.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        highlight_line(
            &mut out,
            line,
            kws,
            hash_comments,
            slash_comments,
            keyed,
            &lang,
        );
    }
    out
}

fn highlight_line(
    out: &mut String,
    line: &str,
    kws: &[&str],
    hash_comments: bool,
    slash_comments: bool,
    keyed: bool,
    lang: &str,
) {
    let chars: Vec<char> = line.chars().collect();
    let text = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    // `key = value` / `key: value` at the start of a TOML or YAML line.
    let mut i = 0;
    if keyed {
        let indent = chars.iter().take_while(|c| c.is_whitespace()).count();
        let body: String = chars[indent..].iter().collect();
        let sep = if lang == "toml" { '=' } else { ':' };
        if let Some(pos) = body.find(sep) {
            let key = &body[..pos];
            if !key.is_empty()
                && key
                    .trim_start_matches("- ")
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_-. \"".contains(c))
            {
                escape_into(out, &text(0, indent));
                span(out, "a", key);
                i = indent + key.chars().count();
            }
        }
        if lang == "toml" && chars.get(indent) == Some(&'[') {
            escape_into(out, &text(0, indent));
            span(out, "k", &text(indent, chars.len()));
            return;
        }
    }
    let mut plain = String::new();
    let flush = |out: &mut String, plain: &mut String| {
        escape_into(out, plain);
        plain.clear();
    };
    while i < chars.len() {
        let c = chars[i];
        let rest_is_comment =
            (hash_comments && c == '#' && (i == 0 || chars[i - 1].is_whitespace()))
                || (slash_comments && c == '/' && chars.get(i + 1) == Some(&'/'));
        if rest_is_comment {
            flush(out, &mut plain);
            span(out, "c", &text(i, chars.len()));
            return;
        }
        if c == '"' || (c == '\'' && lang != "rust" && lang != "rs") {
            flush(out, &mut plain);
            let mut j = i + 1;
            while j < chars.len() && chars[j] != c {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            let s = text(i, end);
            // A JSON string followed by ':' is a key.
            let after = chars[end..].iter().find(|c| !c.is_whitespace());
            let class = if lang == "json" && after == Some(&':') {
                "a"
            } else {
                "s"
            };
            span(out, class, &s);
            i = end;
            continue;
        }
        if c.is_ascii_digit() && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            flush(out, &mut plain);
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '.') {
                j += 1;
            }
            span(out, "n", &text(i, j));
            i = j;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let word = text(i, j);
            if kws.contains(&word.as_str()) {
                flush(out, &mut plain);
                span(out, "k", &word);
            } else {
                plain.push_str(&word);
            }
            i = j;
            continue;
        }
        plain.push(c);
        i += 1;
    }
    flush(out, &mut plain);
}

#[cfg(test)]
mod tests {
    use super::highlight;

    #[test]
    fn escapes_and_marks_tokens() {
        let h = highlight("bash", "echo \"<hi>\" # note");
        assert_eq!(
            h,
            "<span class=\"t-k\">echo</span> <span class=\"t-s\">&quot;&lt;hi&gt;&quot;</span> <span class=\"t-c\"># note</span>"
        );
        let j = highlight("json", r#"{"a": 1}"#);
        assert!(
            j.contains("<span class=\"t-a\">&quot;a&quot;</span>"),
            "{j}"
        );
        assert!(j.contains("<span class=\"t-n\">1</span>"), "{j}");
        let t = highlight("toml", "[server]\nport = 8080");
        assert!(t.contains("<span class=\"t-k\">[server]</span>"), "{t}");
        assert!(t.contains("<span class=\"t-a\">port </span>"), "{t}");
        assert_eq!(highlight("unknown", "<b>"), "&lt;b&gt;");
    }
}
