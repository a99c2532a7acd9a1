//! What a provider crate costs to write, counted from its sources: lines of declarations,
//! of hand-written glue, of hand-written codec code and of sandbox code.
//!
//! `cargo test -p tests --test authoring_cost -- --nocapture` prints the table that the
//! README's provider guide shows. The counts skip blank lines, comments and `#[cfg(test)]`
//! modules. A top-level item is one of:
//! - a declaration: a `struct` or `enum` (the `#[token_endpoint]` items and the config);
//! - codec code: an `impl` of a codec or serde trait written by hand;
//! - glue: every other item (`use`, `impl`, `fn`, `const`, ...);
//! - sandbox: any item of `sandbox.rs`;
//! - beyond refresh: files that are not part of the refresh client (`mpp.rs`, a receiver).
//!
//! The test holds every crate to no hand-written codec code, and the crates written with the
//! macro's full grammar to the guide's goal (60 lines of declarations and glue, 20 of
//! sandbox), or, for one still over it, to the count it has reached, so it cannot grow.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Traits whose hand-written impls are codec code.
const CODEC_TRAITS: &[&str] = &[
    "Endpoint",
    "TokenResponse",
    "ErrorResponse",
    "FromContext",
    "Serialize",
    "Deserialize",
    "Visitor",
    "ErrorCode",
    "ExpiryField",
];

/// The files that make up a provider's refresh client; other files are counted apart.
const CLIENT_FILES: &[&str] = &["lib.rs", "config.rs", "endpoints.rs", "provider.rs"];

/// The guide's goal for a crate written with the full grammar: at most 60 lines of
/// declarations plus glue, at most 20 of sandbox.
const GOAL: (usize, usize) = (60, 20);

/// The crates measured against the goal, each with the most it may take: the goal, or what
/// a crate still over it has reached. Lazada is 5 over: its signed request carries the
/// signing key as a field (`encode_request` has no config to read it from), its seven
/// codes take two lines each, and the seller ids token creation gives are kept through
/// refreshes, which name them otherwise.
const DECLARATIVE: &[(&str, (usize, usize))] = &[("wechat", GOAL), ("lazada", (65, 20))];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Cost {
    declarations: usize,
    glue: usize,
    codec: usize,
    sandbox: usize,
    beyond: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Declaration,
    Glue,
    Codec,
    Skipped,
}

fn is_code(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with("//")
}

/// The change in brace depth over `line`, ignoring braces in string and char literals and
/// in a trailing comment.
fn brace_delta(line: &str) -> i64 {
    let mut delta = 0;
    let mut chars = line.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => in_string = !in_string,
            '\'' if !in_string => {
                // A char literal ('{', '\'') or a lifetime ('a): skip a literal whole.
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with('\\') {
                    chars.nth(2);
                } else if rest.chars().nth(1) == Some('\'') {
                    chars.nth(1);
                }
            }
            '/' if !in_string && chars.peek() == Some(&'/') => break,
            '{' if !in_string => delta += 1,
            '}' if !in_string => delta -= 1,
            _ => {}
        }
    }
    delta
}

fn item_kind(head: &str, attributes: &str) -> Kind {
    if attributes.contains("cfg(test)") {
        return Kind::Skipped;
    }
    let mut words = head.split_whitespace().skip_while(|word| {
        word.starts_with("pub") || matches!(*word, "unsafe" | "async" | "const" | "extern")
    });
    match words.next() {
        Some("struct" | "enum") => Kind::Declaration,
        Some(word) if word.starts_with("impl") => {
            let codec = head.split(" for ").next().is_some_and(|implemented| {
                CODEC_TRAITS.iter().any(|name| {
                    implemented
                        .split(|c: char| !c.is_alphanumeric() && c != '_')
                        .any(|word| word == *name)
                })
            }) && head.contains(" for ");
            if codec { Kind::Codec } else { Kind::Glue }
        }
        _ => Kind::Glue,
    }
}

/// Counts the code lines of each top-level item of a rustfmt-formatted file.
fn classify(source: &str) -> Vec<(Kind, usize)> {
    let mut items = Vec::new();
    let mut lines = source.lines().peekable();
    let mut attributes = String::new();
    let mut attribute_lines = 0;
    while let Some(line) = lines.next() {
        if !is_code(line) || line.starts_with("#!") {
            continue;
        }
        if line.starts_with("#[") {
            // An attribute, possibly over several lines.
            let mut depth: i64 =
                line.matches('[').count() as i64 - line.matches(']').count() as i64;
            attributes.push_str(line);
            attribute_lines += 1;
            while depth > 0 {
                let Some(next) = lines.next() else { break };
                depth += next.matches('[').count() as i64 - next.matches(']').count() as i64;
                attributes.push_str(next);
                attribute_lines += usize::from(is_code(next));
            }
            continue;
        }
        let kind = item_kind(line, &attributes);
        let mut count = attribute_lines + 1;
        let mut depth = brace_delta(line);
        let mut opened = depth > 0;
        let mut done = (!opened && line.trim_end().ends_with(';')) || (opened && depth == 0);
        while !done {
            let Some(next) = lines.next() else { break };
            count += usize::from(is_code(next));
            depth += brace_delta(next);
            opened |= next.contains('{');
            done = if opened {
                depth <= 0
            } else {
                next.trim_end().ends_with(';')
            };
        }
        items.push((kind, count));
        attributes.clear();
        attribute_lines = 0;
    }
    items
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn cost(src: &Path) -> Cost {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut cost = Cost::default();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read a provider source");
        let relative = file.strip_prefix(src).expect("under src");
        let name = relative.to_str().expect("utf-8 path");
        for (kind, lines) in classify(&source) {
            if std::env::var("AC_DEBUG").is_ok() {
                eprintln!("{} {name} {kind:?} {lines}", src.display());
            }
            let slot = match (name, kind) {
                (_, Kind::Skipped) => continue,
                ("sandbox.rs", _) => &mut cost.sandbox,
                (name, _) if !CLIENT_FILES.contains(&name) => &mut cost.beyond,
                (_, Kind::Declaration) => &mut cost.declarations,
                (_, Kind::Glue) => &mut cost.glue,
                (_, Kind::Codec) => &mut cost.codec,
            };
            *slot += lines;
        }
    }
    cost
}

fn providers() -> Vec<(String, Cost)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../providers");
    let mut crates: Vec<_> = std::fs::read_dir(&root)
        .expect("the providers directory")
        .flatten()
        .filter(|entry| entry.path().join("src").is_dir())
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, cost(&entry.path().join("src")))
        })
        .collect();
    crates.sort_by(|a, b| a.0.cmp(&b.0));
    crates
}

#[test]
fn provider_crates_are_declarations() {
    let crates = providers();
    assert!(
        crates.len() >= 5,
        "the provider crates are found: {crates:?}"
    );
    let mut table = String::from(
        "| crate | declarations | glue | hand-written codec | sandbox | beyond refresh |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (name, cost) in &crates {
        writeln!(
            table,
            "| `token-provider-{name}` | {} | {} | {} | {} | {} |",
            cost.declarations, cost.glue, cost.codec, cost.sandbox, cost.beyond
        )
        .unwrap();
    }
    println!("{table}");
    for (name, cost) in &crates {
        assert_eq!(cost.codec, 0, "{name} has hand-written codec code");
        if let Some((_, (client, sandbox))) = DECLARATIVE.iter().find(|(n, _)| n == name) {
            let within = cost.declarations + cost.glue <= GOAL.0 && cost.sandbox <= GOAL.1;
            println!("{name}: within the goal of 60 + 20 lines: {within}");
            assert!(
                cost.declarations + cost.glue <= *client && cost.sandbox <= *sandbox,
                "{name} takes {} lines of declarations and glue (at most {client}) and {} of sandbox (at most {sandbox})",
                cost.declarations + cost.glue,
                cost.sandbox
            );
        }
    }
}

#[test]
fn the_counter_sorts_items() {
    let source = r#"//! Crate docs.
use token_core::token_endpoint;

/// A declaration.
#[token_endpoint(post = "/t", response = R,
                 error = E)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken, // a comment with a brace {
}

impl Serialize for Hand {
    fn serialize(&self) -> &'static str { "}" }
}

impl Refresh {
    pub fn new() -> Self {
        let c = '{';
        Self
    }
}

#[cfg(test)]
mod tests {
    fn t() {}
}
"#;
    let items = classify(source);
    assert_eq!(
        items,
        [
            (Kind::Glue, 1),
            (Kind::Declaration, 6),
            (Kind::Codec, 3),
            (Kind::Glue, 6),
            (Kind::Skipped, 4),
        ]
    );
}
