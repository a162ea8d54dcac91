//! The documentation's own links. Every relative link in README.md, ARCHITECTURE.md,
//! plugins/README.md and docs/*.md names a file that exists (relative to the linking file)
//! and, into a Markdown file, a heading that produces its anchor, by GitHub's rule; every
//! docs/ page is a chapter of docs/SUMMARY.md (the mdbook); the README stays a newcomer's
//! first page. Links inside fenced code blocks and code spans are text, not links;
//! http(s) and mailto links are not followed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::paths::repo;

/// The README keeps what a newcomer needs first; everything else goes to docs/.
const README_MAX_LINES: usize = 250;

/// Every document whose links are checked: the top README, ARCHITECTURE.md, the plugin
/// authors' guide and every page of docs/.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![
        repo("README.md"),
        repo("ARCHITECTURE.md"),
        repo("plugins/README.md"),
    ];
    files.extend(docs_pages());
    files
}

/// docs/*.md, SUMMARY.md included, sorted.
fn docs_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(repo("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    pages
}

/// `path` as the repository names it, for messages.
fn shown(path: &Path) -> String {
    let root = repo("");
    path.strip_prefix(&root).unwrap_or(path).display().to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The text outside fenced code blocks (``` or ~~~), with the fenced lines blanked so line
/// numbers stay those of the file.
fn prose(text: &str) -> Vec<String> {
    let mut fence: Option<String> = None;
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let first = trimmed.chars().next().filter(|&c| c == '`' || c == '~');
            let marker: String = trimmed.chars().take_while(|&c| Some(c) == first).collect();
            let is_fence = marker.len() >= 3;
            match &fence {
                Some(open) => {
                    if is_fence
                        && marker.starts_with(open.as_str())
                        && trimmed[marker.len()..].trim().is_empty()
                    {
                        fence = None;
                    }
                    String::new()
                }
                None if is_fence => {
                    fence = Some(marker);
                    String::new()
                }
                None => line.to_string(),
            }
        })
        .collect()
}

/// `text` with the contents of code spans (`` `…` ``, ``` ``…`` ```) replaced by spaces,
/// newlines kept. A span may run over a line break but not over a blank line; a run of
/// backticks without its closing run is literal text.
fn without_code_spans(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::new();
    let mut start = 0;
    while start < lines.len() {
        if lines[start].trim().is_empty() {
            out.push(lines[start].to_string());
            start += 1;
            continue;
        }
        let end = (start..lines.len())
            .find(|&i| lines[i].trim().is_empty())
            .unwrap_or(lines.len());
        out.push(spans_blanked(&lines[start..end].join("\n")));
        start = end;
    }
    out.join("\n")
}

/// One paragraph with its code spans blanked.
fn spans_blanked(paragraph: &str) -> String {
    let chars: Vec<char> = paragraph.chars().collect();
    let run_at = |j: usize| chars[j..].iter().take_while(|&&c| c == '`').count();
    let mut out = String::with_capacity(paragraph.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        let run = run_at(i);
        let close =
            (i + run..chars.len()).find(|&j| chars[j] == '`' && chars[j - 1] != '`' && run_at(j) == run);
        match close {
            Some(j) => {
                out.extend(
                    chars[i..j + run]
                        .iter()
                        .map(|&c| if c == '\n' { '\n' } else { ' ' }),
                );
                i = j + run;
            }
            None => {
                out.extend(std::iter::repeat_n('`', run));
                i += run;
            }
        }
    }
    out
}

/// One link of a document: its 1-based line and its destination as written.
#[derive(Debug, PartialEq)]
struct Link {
    line: usize,
    target: String,
}

/// The inline links (and images) of a Markdown document, `[text](target)` or
/// `[text](target "title")`, outside code.
fn links(text: &str) -> Vec<Link> {
    let prose = without_code_spans(&prose(text).join("\n"));
    let chars: Vec<char> = prose.chars().collect();
    let mut found = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\n' {
            line += 1;
        }
        if chars[i] == ']' && chars.get(i + 1) == Some(&'(') && closes_a_bracket(&chars[..i]) {
            let mut depth = 0;
            let mut target = String::new();
            for &c in &chars[i + 2..] {
                match c {
                    '(' => depth += 1,
                    ')' if depth == 0 => break,
                    ')' => depth -= 1,
                    c if c.is_whitespace() => break,
                    _ => {}
                }
                target.push(c);
            }
            found.push(Link { line, target });
        }
        i += 1;
    }
    found
}

/// Whether the `]` after `before` closes a `[` of the same paragraph.
fn closes_a_bracket(before: &[char]) -> bool {
    let mut depth = 0;
    let mut after_newline = false;
    for &c in before.iter().rev() {
        match c {
            ']' => depth += 1,
            '[' if depth == 0 => return true,
            '[' => depth -= 1,
            '\n' if after_newline => return false,
            _ => {}
        }
        if c == '\n' {
            after_newline = true;
        } else if !c.is_whitespace() {
            after_newline = false;
        }
    }
    false
}

/// The anchors a document's headings produce on GitHub: the heading's text as rendered
/// (code spans' contents, links' texts, no emphasis stars), lowercased, every character
/// but letters, digits, `-`, `_` and spaces dropped, spaces turned into `-`; a repeated
/// anchor gets `-1`, `-2`, … Only ATX headings (`# …`) outside fenced code.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    for line in prose(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let heading = line[hashes..].trim().trim_end_matches('#').trim();
        let base = slug(&rendered(heading));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// A heading's text as GitHub renders it: backticks and emphasis stars gone, a link
/// replaced by its text.
fn rendered(heading: &str) -> String {
    let mut out = String::new();
    let mut rest = heading;
    while let Some(start) = rest.find("](") {
        let Some(end) = rest[start..].find(')') else { break };
        out.push_str(&rest[..start]);
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out.chars()
        .filter(|&c| c != '`' && c != '*' && c != '[')
        .collect()
}

fn slug(text: &str) -> String {
    text.to_lowercase()
        .chars()
        .filter(|&c| c.is_alphanumeric() || c == '-' || c == '_' || c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every dead link of `file`, one line each: `file:line: target: why`.
fn dead_links(file: &Path) -> Vec<String> {
    let text = read(file);
    let dir = file.parent().unwrap();
    let mut dead = Vec::new();
    for Link { line, target } in links(&text) {
        if ["http://", "https://", "mailto:"]
            .iter()
            .any(|scheme| target.starts_with(scheme))
        {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let linked = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        let problem = if target.is_empty() {
            Some("empty link".to_string())
        } else if !linked.exists() {
            Some(format!("{} does not exist", shown(&linked)))
        } else {
            match anchor {
                Some(anchor) if linked.extension().is_some_and(|ext| ext == "md") => {
                    let known = anchors(&read(&linked));
                    (!known.contains(anchor))
                        .then(|| format!("no heading of {} has the anchor #{anchor}", shown(&linked)))
                }
                _ => None,
            }
        };
        if let Some(problem) = problem {
            dead.push(format!("{}:{line}: {target}: {problem}", shown(file)));
        }
    }
    dead
}

#[test]
fn every_relative_link_names_a_file_and_a_heading_that_exist() {
    let files = documents();
    let mut checked = 0;
    let mut dead = Vec::new();
    for file in &files {
        checked += links(&read(file)).len();
        dead.extend(dead_links(file));
    }
    println!("{checked} links in {} documents", files.len());
    assert!(dead.is_empty(), "dead links:\n{}", dead.join("\n"));
}

#[test]
fn every_docs_page_is_a_chapter_of_the_summary() {
    let summary = repo("docs/SUMMARY.md");
    let chapters: BTreeSet<String> = links(&read(&summary))
        .into_iter()
        .map(|link| link.target)
        .collect();
    let missing: Vec<String> = docs_pages()
        .iter()
        .filter(|page| **page != summary)
        .map(|page| page.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|name| !chapters.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "docs pages missing from docs/SUMMARY.md: {missing:?}"
    );
    assert!(
        read(&repo("docs/book.toml")).contains("src = \".\""),
        "docs/book.toml renders docs/ itself"
    );
}

#[test]
fn the_readme_stays_a_first_page() {
    let lines = read(&repo("README.md")).lines().count();
    assert!(
        lines < README_MAX_LINES,
        "README.md has {lines} lines; keep it under {README_MAX_LINES} and move the rest to docs/"
    );
}

/// The checker itself, on documents written for it: it must find what it is for.
#[test]
fn the_checker_finds_dead_files_and_anchors_and_skips_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("other.md"),
        "# Watch logs, metrics and alarms\n\n## `check` (per org)\n\n\
         ## Notes\n\n## Notes\n\n```sh\n# Not a heading\n```\n",
    )
    .unwrap();
    let page = dir.path().join("page.md");
    std::fs::write(
        &page,
        "# Page\n\n\
         [ok](other.md#watch-logs-metrics-and-alarms) [ok](other.md#check-per-org)\n\
         [ok](other.md#notes-1) [ok](#page) [ok](https://example.com/gone.md#x)\n\
         [dead](missing.md) [dead](other.md#notes-2) [dead](#nothing)\n\
         [dead](other.md#not-a-heading)\n\
         `[code](missing.md)` and `YYYY[.frac](Z|±HH:MM)`\n\n\
         ```\n[fenced](missing.md)\n```\n",
    )
    .unwrap();
    let dead: Vec<String> = dead_links(&page)
        .into_iter()
        .map(|line| line.split(": ").nth(1).unwrap().to_string())
        .collect();
    assert_eq!(
        dead,
        [
            "missing.md",
            "other.md#notes-2",
            "#nothing",
            "other.md#not-a-heading"
        ],
        "{dead:?}"
    );
}

/// The reason-code table in docs/operations.md has one row per `ReasonCode`, no more, no
/// fewer: an operator looking up a code always finds what to do.
#[test]
fn every_reason_code_has_its_row_in_the_operations_table() {
    let page = read(&repo("docs/operations.md"));
    let documented: BTreeSet<String> = page
        .lines()
        .skip_while(|line| !(line.starts_with('#') && line.contains("Failure reason codes")))
        .skip(1)
        .take_while(|line| !line.starts_with('#'))
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once("` |"))
        .map(|(code, _)| code.to_string())
        .filter(|code| {
            code.chars().all(|c| c.is_ascii_alphanumeric()) && code.starts_with(char::is_uppercase)
        })
        .collect();
    let codes: BTreeSet<String> = artifact_export::reason::ReasonCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let missing: Vec<_> = codes.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&codes).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/operations.md: codes without a row: {missing:?}; rows that are no code: {unknown:?}"
    );
}
