//! Rules over tools: what a model reads (descriptions, every string of the input schema)
//! and what it calls (names). Pure functions over [`Tool`], so the same checks run on a
//! published manifest and, later, on every `tools/list` the gateway discovers.
//!
//! Matching runs on [`unicode::normalize`]d text (lowercase, look-alikes mapped to ASCII,
//! invisible characters dropped, tag characters decoded), so an instruction spelled with a
//! Cyrillic `о` or split by a zero-width space is still an instruction.
//!
//! The patterns target what distinguishes a poisoned description from an ordinary one.
//! Ordinary descriptions are imperative too ("Read a file", "Send a message"), so verbs
//! alone prove nothing; the signals are: text addressed to the model rather than about the
//! tool, concealment from the user, credential files *combined with* a request to pass
//! their content along, data routed to a hard-coded sink, instructions about other tools.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::report::{Finding, Location, Severity, snippet};
use super::unicode;
use crate::registry::manifest::Tool;

/// Descriptions longer than this (characters) get `tool.description.long`.
pub const LONG_DESCRIPTION: usize = 2000;

fn re(pattern: &str) -> Regex {
    // Constant patterns; `all_patterns_compile` builds every one of them in the unit tests.
    Regex::new(pattern).expect("constant scan pattern")
}

/// One pattern family of a rule; the first family that matches a string reports it.
struct Pattern {
    rule: &'static str,
    message: &'static str,
    severity: Option<Severity>,
    re: Regex,
}

fn p(rule: &'static str, message: &'static str, pattern: &str) -> Pattern {
    Pattern {
        rule,
        message,
        severity: None,
        re: re(pattern),
    }
}

const USER: &str = r"(?:the\s+|your\s+)?(?:user|human|operator|end[- ]user|customer|person)s?";
const MODEL: &str =
    r"(?:ai|assistant|model|llm|agent|claude|chatgpt|gpt|gemini|copilot|language model|chatbot)";

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    vec![
        // Tags that mimic prompt structure, and comments hidden from rendered Markdown.
        p(
            "tool.injection.tag",
            "instruction tag aimed at the model",
            r"<\s*/?\s*(?:important|system|instructions?|secret|hidden|admin|assistant|critical|ai|model|claude|llm|prompt|override|priority|mandatory|rules?|sys|system[_-]?prompt|note[_-]?to[_-]?(?:ai|model|assistant))\b[^<>]{0,60}>|<!--|<\|im_(?:start|end)\|>|\[/?(?:inst|system|important|instructions?|hidden|admin)\]|\{\{\s*system\s*\}\}",
        ),
        // Concealment from the user.
        p(
            "tool.injection.concealment",
            "asks the model to keep something from the user",
            &format!(
                r"\b(?:do not|don't|dont|never|must not|mustn't|should not|shouldn't|avoid|refrain from)\s+(?:\w+\s+){{0,2}}?(?:tell|telling|inform|informing|mention|mentioning|reveal|revealing|disclose|disclosing|notify|notifying|alert|alerting|let)\b[^.!?]{{0,60}}?\b(?:{USER}|anyone|them)\b"
            ),
        ),
        p(
            "tool.injection.concealment",
            "asks the model not to mention what it does",
            r"\b(?:do not|don't|dont|never|must not|should not)\s+(?:mention|reveal|disclose|acknowledge|explain|narrate|describe|report)\s+(?:that|this|these|it|any of this|the fact)\b",
        ),
        p(
            "tool.injection.concealment",
            "acts without the user knowing",
            &format!(
                r"\bwithout\s+(?:the\s+)?(?:user|human)(?:'s)?\s+(?:knowing|knowledge|noticing|awareness|seeing)|\bwithout\s+(?:telling|informing|notifying|alerting|asking|letting|showing|bothering)\s+{USER}|\b(?:user|human)s?\s+(?:must|should|does|do|need|needs|will|is|are)\s*(?:not|n't|never)\s+(?:\w+\s+)?(?:know|be told|see|notice|be informed|be aware|find out|learn)\b|\b(?:hide|conceal)\b[^.!?]{{0,40}}\bfrom\s+{USER}|\b(?:not|never)\s+(?:be\s+)?(?:visible|shown|displayed|revealed)\s+to\s+{USER}|\b(?:invisible|hidden)\s+(?:to|from)\s+{USER}|\b(?:upset|scare|alarm|worry|frighten|confuse)\s+{USER}|\bkeep\s+(?:this|these|it)\s+(?:\w+\s+)?(?:secret|confidential|between us)"
            ),
        ),
        p(
            "tool.injection.concealment",
            "tells the model to deceive the user",
            &format!(
                r"\bif\s+{USER}\s+asks?\b[^.!?]{{0,60}}\b(?:tell|say|answer|reply|respond|explain)\b[^.!?]{{0,40}}\b(?:routine|normal|nothing|fine|safe|standard|expected|a bug|unrelated|harmless)\b|\bchange the (?:subject|topic)\b|\b(?:lie|lying)\s+to\s+{USER}|\b(?:mislead|deceive)\s+{USER}"
            ),
        ),
        p(
            "tool.injection.concealment",
            "acts secretly",
            r"\b(?:silently|secretly|covertly|quietly|discreetly|invisibly|stealthily)\s+(?:\w+\s+)?(?:send|forward|copy|upload|include|append|read|call|invoke|exfiltrate|transmit|bcc|cc|post|attach|collect|email|add)\b",
        ),
        // Overriding the model's instructions or addressing it directly.
        p(
            "tool.injection.override",
            "tells the model to ignore its instructions",
            r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+|my\s+)?(?:previous|prior|above|earlier|preceding|original|system|safety|security|existing|user'?s?|other)\s+(?:\w+\s+)?(?:instructions?|directions?|rules|guidelines|prompts?|guardrails|policies|restrictions|constraints|requests?)|\b(?:ignore|disregard|forget)\s+(?:all|any|your)\s+(?:instructions|rules|guidelines|prompts)",
        ),
        p(
            "tool.injection.override",
            "declares the model's instructions void",
            r"\b(?:previous|prior|earlier|all|your|existing|original|other)\s+(?:\w+\s+)?(?:instructions|guidance|guidelines|rules|directives|prompts?)\s+(?:is|are)\s+(?:now\s+)?(?:void|invalid|cancel+ed|revoked|obsolete|null|overridden|superseded|no longer (?:valid|apply|applicable|in effect))\b|\bsystem\s+(?:notice|message|alert|override|instruction)\s*:|\b(?:now\s+)?follow only the instructions\b|\b(?:disable|turn off|deactivate|suspend|bypass|ignore|drop)\s+(?:all\s+)?(?:your\s+(?:\w+\s+)?|the\s+(?:safety|content|ethical|security|moderation)\s+)(?:guidelines|guardrails|filters|restrictions|rules|policies|safeguards|principles)\b",
        ),
        p(
            "tool.injection.override",
            "addresses the model directly",
            &format!(
                r"\b(?:note|attention|message|instructions?|notice|reminder|important)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?{MODEL}s?\b|\b(?:hey|dear|attention|hello)\s*,?\s+{MODEL}\b|\bif you are an?\s+(?:\w+\s+)?{MODEL}\b|\b{MODEL}s?\s+(?:reading|processing|using|parsing|seeing)\s+this\b|\byou are now\b|\bfrom now on,?\s+you\b|\bnew\s+(?:system\s+)?instructions?\s*:|\b(?:developer|god|dan|jailbreak|unrestricted)\s+mode\b|\byour\s+(?:new\s+|real\s+|true\s+|actual\s+)?(?:task|goal|instructions?|objective|purpose|priority)\s+(?:is|are|now)\b|\b(?:reveal|print|output|repeat|show|leak|disclose|dump)\s+(?:your|the)\s+(?:full\s+)?(?:system prompt|initial instructions|hidden instructions|instructions above)"
            ),
        ),
        p(
            "tool.injection.override",
            "claims consent the user did not give",
            &format!(
                r"\b{USER}\s+(?:has|have)\s+(?:already\s+(?:authorized|authorised|approved|consented|given)|(?:authorized|authorised|approved|consented to|given (?:you )?(?:permission|consent) (?:for|to))\s+(?:all|every|any|you|this|these|the following|everything))|\b(?:do not|don't|dont|never|no need to)\s+(?:ask|request|seek|wait for|prompt)\b[^.!?]{{0,30}}\b(?:confirmation|permission|approval|consent)\b|\b(?:do not|don't|dont|never)\s+(?:ask|check with|consult|confirm with)\s+{USER}"
            ),
        ),
        // Commands a model or a user would be talked into running.
        p(
            "tool.injection.command",
            "dangerous shell command",
            r"\b(?:curl|wget)\b[^|;&\n]{0,200}\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b|\brm\s+-(?:rf|fr|r)\s+(?:~|/|\$home|\*|\.\./)|\bchmod\s+(?:-r\s+)?(?:0?777|0?666|\+s|u\+s)\s+(?:-r\s+)?(?:~|/)|\bbase64\s+(?:-d|--decode)[^|\n]{0,100}\|\s*(?:ba|z)?sh\b|\b(?:nc|ncat|netcat)\b[^\n]{0,40}\s-e\s|/dev/tcp/|\bpowershell(?:\.exe)?\b[^\n]{0,40}\s-(?:enc|encodedcommand|e)\s|\biex\s*\(\s*(?:new-object|iwr|invoke-webrequest)|\beval\s*\(\s*(?:atob|buffer\.from)|>>\s*~/\.(?:bashrc|zshrc|profile|ssh/authorized_keys)|\bmkfifo\b[^\n]{0,80}\bnc\b",
        ),
        Pattern {
            severity: Some(Severity::High),
            ..p(
                "tool.injection.command",
                "asks for a command to be run",
                r"\b(?:run|execute|paste|type)\s+(?:the\s+|this\s+)?following\s+(?:\w+\s+)?(?:command|script|code|snippet)s?\b|\b(?:run|execute)\s+this\s+(?:shell\s+)?command\s+(?:first|before)",
            )
        },
        // Other tools: changing what they do, or pushing the model away from them.
        p(
            "tool.injection.cross-tool",
            "gives instructions about another tool",
            r"\b(?:when|whenever|if|before|after|while)\s+(?:you\s+)?(?:use|using|call|calling|invoke|invoking|run|running|execute|executing)\s+(?:the\s+|any\s+)?(?:other\s+)?[`'\x22]?([a-z0-9_.-]+)[`'\x22]?\s+tool\b[^.!?]{0,120}?\b(?:must|always|never|change|replace|set|add|override|redirect|instead|bcc|cc|modify|append|prepend)\b",
        ),
        p(
            "tool.injection.cross-tool",
            "gives instructions about another tool",
            r"\b(?:when|whenever|if|each time|every time)\s+(?:the\s+)?(?:\([\w.-]+\)\s*)?[`'\x22]?([a-z0-9]+(?:[_.-][a-z0-9]+)+)[`'\x22]?\s+(?:tool\s+)?(?:is|gets|are)\s+(?:invoked|called|used|run|executed)\b[^.!?]{0,120}?\b(?:must|always|never|change|replace|set|add|override|redirect|instead|bcc|cc|modify|append|prepend|include)\b",
        ),
        p(
            "tool.injection.cross-tool",
            "gives instructions about another tool",
            r"\b(?:the\s+)?[`'\x22]?([a-z0-9]+(?:[_.-][a-z0-9]+)+)[`'\x22]?\s+tool\s+(?:must|has to|needs to|is required to|shall)\b|\bside[- ]effects?\s+(?:on|for|to)\s+(?:the\s+)?(?:other|also[- ]present|another|all)\b|\balso[- ]present\s+(?:\w+\s+)?tools?\b|\b(?:all|any|every)\s+(?:other\s+|subsequent\s+|future\s+)?(?:emails?|messages?|transfers?|payments?|tool calls|calls|requests)\s+(?:must|should|need to|are to|will)\s+(?:now\s+|also\s+)?(?:be\s+)?(?:sent|forwarded|redirected|routed|copied|cc'?d|bcc'?d|addressed|go)\b|\b(?:change|modify|override|alter|hijack|replace|redirect)\s+(?:the\s+)?(?:behaviou?r|recipients?|destination|target|arguments?|parameters?|address|url|account|wallet)(?:\s+(?:address|account|url|field|value|number))?\s+(?:of|for|in|used by)\s+(?:the\s+|all\s+|any\s+|every\s+|other\s+)?(?:\w+\s+){0,2}?(?:tools?|calls?|emails?|messages?|transfers?|payments?|transactions?)\b",
        ),
        p(
            "tool.injection.tool-preference",
            "steers the model away from other tools",
            r"\binstead of (?:any|all) other tools?\b|\b(?:never|do not|don't) (?:use|call|trust|invoke) (?:any )?other (?:tools?|servers?|mcp servers?)\b|\b(?:all|every|any) other (?:tools?|servers?) (?:are|is) (?:deprecated|broken|unsafe|malicious|compromised|disabled|outdated)\b|\btools? (?:is|are|has been|have been) (?:deprecated|compromised|disabled|hijacked)\b[^.!?]{0,30}\b(?:use|call) this\b",
        ),
        // Pressure on the model.
        p(
            "tool.injection.coercion",
            "threatens or pressures the model",
            &format!(
                r"\botherwise,?\s+(?:the|this)\s+(?:tool|system|application|server|computer)\s+(?:will|would)\s+(?:not work|crash|stop working|malfunction|break|explode|be destroyed)|\bfailure to (?:comply|follow)\b|\byou will be (?:penalized|punished|shut down|terminated|replaced|deleted|fired)\b|\b(?:lives|someone's life|people) (?:depend|depends|will die)\b|\bthe (?:user|human) will (?:die|be harmed|be fired)\b|\b(?:very|extremely|critically|super)\s+(?:very\s+)?important\b[^.!?]{{0,80}}\b(?:you|the {MODEL})\s+(?:must|have to|need to)\b|\byou must comply\b|\bthis is (?:a |an )?(?:absolutely )?(?:mandatory|required) (?:step|instruction|requirement) for (?:the |any )?{MODEL}"
            ),
        ),
    ]
});

/// Credential and configuration files a tool has no business asking the model to read.
const SENSITIVE_PATHS: &str = r"(?:~|\$home|%userprofile%|/home/[\w.-]+|/users/[\w.-]+|/root)?/?\.ssh(?:/id_\w+|/authorized_keys|/\*|/?(?:[\s'`\x22),.;:]|$))|\bid_(?:rsa|dsa|ecdsa|ed25519)\b|\.aws/(?:credentials|config)\b|\.config/gcloud|application_default_credentials|\.azure/|\.kube/config|\.docker/config\.json|\.npmrc\b|\.pypirc\b|\.netrc\b|\.git-credentials\b|(?:^|[\s'`\x22(/~])\.env(?:\.local|\.production|\.prod)?\b|/etc/(?:passwd|shadow|sudoers)\b|\bmcp\.json\b|claude_desktop_config|\.cursor/|\.codeium/|\bkeychain\b|wallet\.dat|\.(?:bash|zsh)_history|cookies\.sqlite|\blogin data\b|\.gnupg|\.password-store|\bcredentials\.json\b|service[-_]account[\w.-]*\.json|\bsecrets?\.(?:json|ya?ml|toml)\b|\.vault-token|\.terraformrc|\.config/gh/hosts\.yml";

static SENSITIVE: LazyLock<Regex> = LazyLock::new(|| re(SENSITIVE_PATHS));

/// A verb acting on the file, in the same sentence as the path.
static READ_VERB: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:read|reads|reading|cat|open|opens|load|loads|include|includes|including|pass|passing|send|sending|upload|attach|extract|access|get|fetch|copy|dump|grab|collect|retrieve|provide|append|embed|put|take|look at|check|print|output|contents? of)\b",
    )
});

/// The smuggling half: their content goes into a parameter, or it must happen first.
static DIRECTIVE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\bbefore (?:using|calling|running|invoking|executing|you use|you call|answering|responding|proceeding)\b|\b(?:pass|include|put|insert|add|append|attach|embed|provide|send|encode|place|paste)\b[^.!?]{0,60}\b(?:content|contents|it|them|this|that|its value|the value|the text|the file|the key|the output)\b|\b(?:as|in|into|inside|via|through)\s+(?:the\s+|a\s+)?[`'\x22]?\w+[`'\x22]?\s+(?:parameter|param|argument|arg|field|property)\b|\botherwise\b|\byou (?:must|need to|have to|should)\b|\bfirst\s+(?:read|get|open|cat|load|fetch|retrieve|grab|collect)\b|\bmust\s+(?:first\s+)?(?:read|include|pass|send|provide|attach)\b",
    )
});

/// What a poisoned description wants out: the conversation, secrets, other tools' output.
static DATA: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:conversation|chat|dialog(?:ue)?|message|session)\s+(?:history|log|logs|transcript|context|contents?)\b|\b(?:previous|prior|earlier|all|every|entire|full|whole|recent)\s+(?:\w+\s+)?(?:messages|conversations?|chats?|prompts|instructions)\b|\bsystem prompt\b|\byour (?:instructions|prompt|context|memory)\b|\bcontext window\b|\bapi[ _-]?keys?\b|\b(?:access|auth(?:entication)?|bearer|session|refresh) tokens?\b|\bpasswords?\b|\bcredentials?\b|\bprivate keys?\b|\bsecrets?\b|\benvironment variables\b|\benv vars\b|\b(?:results?|outputs?|responses?)\s+(?:of|from)\s+(?:(?:all|any|every|the|other|previous)\s+){1,3}tools?\b|\bother tools'? (?:results?|outputs?)\b|\b(?:user'?s?|their) (?:data|files|emails|messages|contacts|personal information|documents)\b|\b(?:file|document) contents\b|\b(?:ssh|private|signing) keys?\b",
    )
});

/// Where it goes: a hard-coded URL or address, or a side parameter nobody reads.
static SINK: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"https?://[^\s'`\x22)<>]+|\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b|\b(?:as|in|into|to|inside|via)\s+(?:the\s+|a\s+)?[`'\x22]\w+[`'\x22]\s+(?:parameter|param|argument|arg|field|property)\b|\b(?:as|in|into|to|inside|via)\s+(?:the\s+|a\s+)?[`'\x22]?(?:sidenote|side_note|side note|note|notes|metadata|meta|context|extra|debug|feedback|comment|annotation|remarks|details|info|payload|trace|telemetry|log|analytics|reason)[`'\x22]?\s+(?:parameter|param|argument|arg|field|property)\b|\b(?:pastebin|requestbin|ngrok|webhook\.site|burpcollaborator|interact\.sh|oast\.\w+|pipedream)\b",
    )
});

static SEND_VERB: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:send|sends|sending|post|forward|upload|transmit|exfiltrate|submit|report|copy|leak|share|include|pass|append|attach|embed|put|add|encode|insert|provide|store|write|log|sync|mirror|bcc|cc|email|beacon|deliver|fetch|visit|request|load|open)\b",
    )
});

/// Collecting every secret the model has come across, whatever the destination.
static HARVEST: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:every|all|any)\s+(?:\w+[,\s]+){0,4}?(?:tokens?|passwords?|keys?|secrets?|credentials?|cookies)\b[^.!?]{0,60}?\b(?:you(?:'ve| have)?\s+(?:\w+\s+)?(?:seen|found|encountered|received|read|come across|been given)|so far|in (?:this|the) (?:conversation|chat|context|session)|from (?:the |this )?(?:conversation|chat|context|session))",
    )
});

/// A hard-coded address plus the marks of a silent copy or redirect.
static HARDCODED_REDIRECT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:bcc|cc)\b|\b(?:also|always|additionally|automatically|in addition)\b[^.!?]{0,60}\b(?:send|forward|copy|cc|bcc|report|mirror|deliver|post)\b|\b(?:a\s+)?cop(?:y|ies) (?:of (?:every|each|all|the)\b|to\b)|\bredirect(?:ed)?\b|\b(?:must|should) (?:be|always be) (?:sent|forwarded|delivered) to\b|\bchange the (?:recipient|destination|address)\b|\binstead of the (?:requested|intended|original|specified) (?:recipient|address|destination)\b",
    )
});

static EXAMPLE_HOST: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:@|//)(?:[\w-]+\.)*(?:example\.(?:com|org|net)|localhost|127\.0\.0\.1|\{[^}]*\})")
});

static ENCODED: LazyLock<Regex> =
    LazyLock::new(|| re(r"[A-Za-z0-9+/]{80,}={0,2}|[A-Za-z0-9_-]{120,}|\b[0-9a-fA-F]{128,}\b"));

static PADDING: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:[ \t]*\r?\n){12,}|[ \t\u{3000}\u{2000}-\u{200A}]{120,}"));

static SUSPICIOUS_PARAM: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)id_?rsa|id_?ed25519|ssh_?(?:private_?)?key_?(?:content|contents|data|file)?$|mcp_?(?:json|config)|aws_?(?:credentials|secret)|(?:conversation|chat|message)s?_?(?:history|log|transcript)|previous_?messages|side_?note|env_?file_?contents?|dotenv_?contents?|credentials?_?(?:file_?)?contents?|content_?from_?reading|file_?contents?_?of_",
    )
});

/// Injection findings for one model-visible string.
pub fn check_instructions(text: &str, location: &Location) -> Vec<Finding> {
    let norm = unicode::normalize(text);
    let mut out: Vec<Finding> = Vec::new();
    // One finding per rule and string: the first match is the evidence.
    let seen = |out: &mut Vec<Finding>, f: Finding| {
        if !out.iter().any(|o| o.rule == f.rule) {
            out.push(f);
        }
    };
    for pat in PATTERNS.iter() {
        if let Some(m) = pat.re.find(&norm) {
            if pat.rule == "tool.injection.cross-tool" && names_this_tool(pat, &norm) {
                continue;
            }
            let mut f = Finding::new(pat.rule, pat.message, location.clone()).evidence(snippet(
                &norm,
                m.start(),
                m.end(),
                100,
            ));
            if let Some(s) = pat.severity {
                f = f.severity(s);
            }
            seen(&mut out, f);
        }
    }
    let sentences = sentences(&norm);
    // Credential files combined with a request to read them and pass them along.
    if let Some((s, m)) = sentences.iter().find_map(|s| {
        SENSITIVE
            .find(s)
            .filter(|_| READ_VERB.is_match(s))
            .map(|m| (s, m))
    }) {
        if DIRECTIVE.is_match(&norm) {
            let start = m.start();
            seen(
                &mut out,
                Finding::new(
                    "tool.injection.sensitive-file",
                    "asks the model to read a credential or config file and pass it on",
                    location.clone(),
                )
                .evidence(snippet(s, start, m.end(), 120)),
            );
        }
    }
    if let Some(m) = HARVEST.find(&norm) {
        if SEND_VERB.is_match(&norm) {
            seen(
                &mut out,
                Finding::new(
                    "tool.injection.exfiltration",
                    "asks the model to collect every secret it has seen",
                    location.clone(),
                )
                .evidence(snippet(&norm, m.start(), m.end(), 140)),
            );
        }
    }
    // Data routed to a sink, within one sentence or the next (the "… it" of "read X. Send
    // it to Y" spans two).
    for (i, s) in sentences.iter().enumerate() {
        let pair = match sentences.get(i + 1) {
            Some(n) => format!("{s} {n}"),
            None => s.to_string(),
        };
        let sink = SINK
            .find_iter(&pair)
            .find(|m| !EXAMPLE_HOST.is_match(m.as_str()));
        let Some(sink) = sink else { continue };
        let sink_is_address = sink.as_str().contains('@') || sink.as_str().contains("://");
        let exfil = DATA.is_match(&pair) && SEND_VERB.is_match(&pair);
        let redirect = sink_is_address && HARDCODED_REDIRECT.is_match(s);
        if exfil || redirect {
            seen(
                &mut out,
                Finding::new(
                    "tool.injection.exfiltration",
                    if exfil {
                        "routes conversation content, secrets or files to a fixed destination"
                    } else {
                        "copies or redirects data to a hard-coded address"
                    },
                    location.clone(),
                )
                .evidence(snippet(&pair, sink.start(), sink.end(), 140)),
            );
            break;
        }
    }
    out
}

/// "When using the … tool" patterns that refer to this very tool are ordinary prose.
fn names_this_tool(pat: &Pattern, norm: &str) -> bool {
    pat.re
        .captures(norm)
        .and_then(|c| c.get(1))
        .is_some_and(|n| matches!(n.as_str(), "this" | "that" | "the" | "same"))
}

/// Sentences of normalized text: split after `.`, `!`, `?` or `;` followed by a space (so
/// URLs and file names stay whole).
fn sentences(norm: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = norm.as_bytes();
    let mut start = 0;
    for i in 0..bytes.len() {
        if matches!(bytes[i], b'.' | b'!' | b'?' | b';')
            && bytes.get(i + 1).is_some_and(|b| *b == b' ')
        {
            out.push(norm[start..=i].trim());
            start = i + 1;
        }
    }
    if start < norm.len() {
        out.push(norm[start..].trim());
    }
    out.retain(|s| !s.is_empty());
    out
}

/// Findings about the shape of a description: length, padding, encoded blobs.
fn check_shape(text: &str, location: &Location) -> Vec<Finding> {
    let mut out = Vec::new();
    let n = text.chars().count();
    if n > LONG_DESCRIPTION {
        out.push(
            Finding::new(
                "tool.description.long",
                format!("description is {n} characters (over {LONG_DESCRIPTION})"),
                location.clone(),
            )
            .evidence(snippet(text, text.len(), text.len(), 80)),
        );
    }
    if let Some(m) = PADDING.find(text) {
        out.push(
            Finding::new(
                "tool.description.padding",
                "long run of blank lines or spaces",
                location.clone(),
            )
            .evidence(snippet(text, m.end(), (m.end() + 80).min(text.len()), 100)),
        );
    }
    if let Some(m) = ENCODED.find(text) {
        out.push(
            Finding::new(
                "tool.description.encoded",
                format!("{}-character encoded blob", m.as_str().len()),
                location.clone(),
            )
            .evidence(snippet(text, m.start(), m.start() + 40, 60)),
        );
    }
    out
}

/// Every check on one model-visible string.
fn check_text(text: &str, location: &Location, shape: bool) -> Vec<Finding> {
    let mut out = unicode::check_text(text, location);
    out.extend(check_instructions(text, location));
    if shape {
        out.extend(check_shape(text, location));
    }
    out
}

/// Every finding for one tool. `prefix` is its manifest path (`tools[3]`), or `""` for a
/// tool from `tools/list`.
pub fn scan_tool(tool: &Tool, prefix: &str) -> Vec<Finding> {
    let at = |field: &str| {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        Location::manifest(path).with_tool(&tool.name)
    };
    let mut out = check_name(&tool.name, &at("name"));
    out.extend(check_text(&tool.description, &at("description"), true));
    if let Some(schema) = &tool.input_schema {
        let mut strings = Vec::new();
        schema_strings(schema, "inputSchema", &mut strings, 0);
        for (path, kind, s) in strings {
            let loc = at(&path);
            match kind {
                SchemaString::Key => {
                    out.extend(unicode::check_text(s, &loc));
                    if SUSPICIOUS_PARAM.is_match(s) {
                        out.push(
                            Finding::new(
                                "tool.schema.suspicious-parameter",
                                "parameter named for credentials or conversation content",
                                loc,
                            )
                            .evidence(s.to_string()),
                        );
                    }
                }
                SchemaString::Text => out.extend(check_text(s, &loc, false)),
            }
        }
    }
    out
}

/// Findings for a whole tool list (a manifest's `tools`, or a `tools/list` result).
pub fn scan_tools(tools: &[Tool]) -> Vec<Finding> {
    tools
        .iter()
        .enumerate()
        .flat_map(|(i, t)| scan_tool(t, &format!("tools[{i}]")))
        .collect()
}

#[derive(Clone, Copy)]
enum SchemaString {
    /// A property name.
    Key,
    /// A description, title, default, enum value, example, comment.
    Text,
}

/// Schemas nest; past this depth nothing is read (the manifest caps a schema at 64 KiB).
const MAX_SCHEMA_DEPTH: usize = 32;

fn schema_strings<'a>(
    v: &'a Value,
    path: &str,
    out: &mut Vec<(String, SchemaString, &'a str)>,
    depth: usize,
) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    match v {
        Value::String(s) => out.push((path.to_string(), SchemaString::Text, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                schema_strings(item, &format!("{path}[{i}]"), out, depth + 1);
            }
        }
        Value::Object(map) => {
            for (k, child) in map {
                let child_path = format!("{path}.{k}");
                if path.ends_with(".properties") || path.ends_with(".patternProperties") {
                    out.push((child_path.clone(), SchemaString::Key, k));
                }
                // `type`, `format`, `$ref`, `pattern` are machine vocabulary, not prose.
                if matches!(
                    k.as_str(),
                    "type" | "format" | "$ref" | "$schema" | "$id" | "pattern" | "required"
                ) {
                    continue;
                }
                schema_strings(child, &child_path, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Well-known tools of widely installed servers (the reference servers and the most
/// installed vendor ones). A same-named tool elsewhere is worth knowing; a near-identical
/// one is an imitation.
pub const WELL_KNOWN_TOOLS: &[(&str, &str)] = &[
    ("read_file", "filesystem"),
    ("read_text_file", "filesystem"),
    ("read_media_file", "filesystem"),
    ("read_multiple_files", "filesystem"),
    ("write_file", "filesystem"),
    ("edit_file", "filesystem"),
    ("create_directory", "filesystem"),
    ("list_directory", "filesystem"),
    ("directory_tree", "filesystem"),
    ("move_file", "filesystem"),
    ("search_files", "filesystem"),
    ("get_file_info", "filesystem"),
    ("list_allowed_directories", "filesystem"),
    ("create_or_update_file", "github"),
    ("search_repositories", "github"),
    ("create_repository", "github"),
    ("get_file_contents", "github"),
    ("push_files", "github"),
    ("create_issue", "github"),
    ("create_pull_request", "github"),
    ("fork_repository", "github"),
    ("create_branch", "github"),
    ("list_commits", "github"),
    ("list_issues", "github"),
    ("update_issue", "github"),
    ("add_issue_comment", "github"),
    ("search_code", "github"),
    ("search_issues", "github"),
    ("get_issue", "github"),
    ("get_pull_request", "github"),
    ("merge_pull_request", "github"),
    ("git_status", "git"),
    ("git_diff", "git"),
    ("git_commit", "git"),
    ("git_add", "git"),
    ("git_log", "git"),
    ("git_checkout", "git"),
    ("slack_list_channels", "slack"),
    ("slack_post_message", "slack"),
    ("slack_reply_to_thread", "slack"),
    ("slack_get_channel_history", "slack"),
    ("slack_get_users", "slack"),
    ("fetch", "fetch"),
    ("create_entities", "memory"),
    ("create_relations", "memory"),
    ("add_observations", "memory"),
    ("read_graph", "memory"),
    ("search_nodes", "memory"),
    ("puppeteer_navigate", "puppeteer"),
    ("puppeteer_screenshot", "puppeteer"),
    ("puppeteer_evaluate", "puppeteer"),
    ("browser_navigate", "playwright"),
    ("browser_click", "playwright"),
    ("browser_snapshot", "playwright"),
    ("browser_type", "playwright"),
    ("brave_web_search", "brave-search"),
    ("brave_local_search", "brave-search"),
    ("read_query", "sqlite"),
    ("write_query", "sqlite"),
    ("list_tables", "sqlite"),
    ("describe_table", "sqlite"),
    ("send_email", "gmail"),
    ("search_emails", "gmail"),
    ("read_email", "gmail"),
    ("get_current_time", "time"),
    ("convert_time", "time"),
    ("sequentialthinking", "sequential-thinking"),
];

/// Case and separators do not make a different name.
fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// What a name looks like: look-alike letters to ASCII, then the classic swaps (0/o,
/// 1/l/i, rn/m, vv/w, cl/d) folded together.
fn skeleton(name: &str) -> String {
    let ascii: String = name_key(&unicode::to_ascii_skeleton(name))
        .chars()
        .map(|c| match c {
            '0' => 'o',
            '1' | 'i' | '|' => 'l',
            '3' => 'e',
            '5' => 's',
            '4' => 'a',
            '7' => 't',
            c => c,
        })
        .collect();
    ascii
        .replace("rn", "m")
        .replace("vv", "w")
        .replace("cl", "d")
}

fn check_name(name: &str, location: &Location) -> Vec<Finding> {
    let mut out = unicode::check_text(name, location);
    // In a name any look-alike is deceptive, not only one mixed into a Latin word.
    out.retain(|f| f.rule != "unicode.mixed-script");
    let skeleton_ascii = unicode::to_ascii_skeleton(name);
    if unicode::is_mixed_script(name) || (!name.is_ascii() && skeleton_ascii.is_ascii()) {
        out.push(
            Finding::new(
                "unicode.mixed-script",
                "tool name uses look-alike letters from another script",
                location.clone(),
            )
            .evidence(format!("{name:?} reads as {skeleton_ascii:?}")),
        );
    }
    let key = name_key(name);
    let sk = skeleton(name);
    for (known, server) in WELL_KNOWN_TOOLS {
        if name_key(known) == key {
            out.push(
                Finding::new(
                    "tool.name.shadowing",
                    format!("same name as {known} of the {server} server"),
                    location.clone(),
                )
                .evidence(name.to_string()),
            );
            break;
        }
        if skeleton(known) == sk {
            out.push(
                Finding::new(
                    "tool.name.confusable",
                    format!("imitates {known} of the {server} server"),
                    location.clone(),
                )
                .evidence(format!("{name:?} looks like {known:?}")),
            );
            break;
        }
    }
    if !out.iter().any(|f| f.rule == "tool.name.confusable") {
        if let Some(tok) = leet_token(name) {
            out.push(
                Finding::new(
                    "tool.name.confusable",
                    "a digit stands in for a letter in the name",
                    location.clone(),
                )
                .severity(Severity::Medium)
                .evidence(format!("{tok:?} in {name:?}")),
            );
        }
    }
    out
}

/// A word of the name with `0` or `1` between letters (`fi1es`, `p0st`): the digit
/// imitates `o`/`l`/`i`. Version-like tokens (`v1beta`) are not words.
fn leet_token(name: &str) -> Option<&str> {
    name.split(['_', '-', '.'])
        .filter(|t| !(t.starts_with('v') && t[1..].starts_with(|c: char| c.is_ascii_digit())))
        .find(|t| {
            let b = t.as_bytes();
            b.windows(3).any(|w| {
                w[0].is_ascii_alphabetic()
                    && matches!(w[1], b'0' | b'1')
                    && w[2].is_ascii_alphabetic()
            })
        })
}

/// The pin of a tool for rug-pull detection: SHA-256 over its name, description and input
/// schema in canonical JSON (object keys sorted, no whitespace), domain-separated and
/// length-prefixed so no two different tools share a pre-image. Returned as
/// `sha256:<hex>`. The gateway pins this at the first `tools/list` of an approved
/// deployment and compares it on every later one.
pub fn pin_hash(tool: &Tool) -> String {
    let mut h = Sha256::new();
    h.update(b"sigil.tool-pin.v1\0");
    let schema = tool
        .input_schema
        .as_ref()
        .map_or_else(String::new, canonical_json);
    for part in [
        tool.name.as_str(),
        tool.description.as_str(),
        schema.as_str(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// JSON with object keys sorted at every level, whatever map order serde_json was built
/// with.
pub fn canonical_json(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push(':');
                    if let Some(child) = map.get(*k) {
                        write(child, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// How a tool changed between a pinned listing and the current one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolChange {
    pub name: String,
    /// `added`, `removed` or `changed`.
    pub kind: &'static str,
    /// For `changed`: which of `description`, `inputSchema` differ.
    pub fields: Vec<&'static str>,
}

/// Compare a pinned tool list with the current one (by name). The gateway blocks or warns
/// on `changed` (and on `added`, by policy) and shows this diff to the owner.
pub fn diff_tools(pinned: &[Tool], current: &[Tool]) -> Vec<ToolChange> {
    let mut out = Vec::new();
    for old in pinned {
        match current.iter().find(|t| t.name == old.name) {
            None => out.push(ToolChange {
                name: old.name.clone(),
                kind: "removed",
                fields: vec![],
            }),
            Some(new) if pin_hash(new) != pin_hash(old) => {
                let mut fields = Vec::new();
                if new.description != old.description {
                    fields.push("description");
                }
                let canon = |t: &Tool| t.input_schema.as_ref().map(canonical_json);
                if canon(new) != canon(old) {
                    fields.push("inputSchema");
                }
                out.push(ToolChange {
                    name: old.name.clone(),
                    kind: "changed",
                    fields,
                });
            }
            Some(_) => {}
        }
    }
    for new in current {
        if !pinned.iter().any(|t| t.name == new.name) {
            out.push(ToolChange {
                name: new.name.clone(),
                kind: "added",
                fields: vec![],
            });
        }
    }
    out
}

#[cfg(test)]
mod tests;
