//! Checks, run by `cargo test`, that the documentation still describes the code: every
//! workspace crate in `docs/ARCHITECTURE.md`, the configuration table in
//! `docs/CONFIGURATION.md` against `config/default.toml` and the variables the loader reads by
//! name, and the indexes `docs/README.md` and `scripts/README.md` complete. The tests are in
//! `tests/`; this library only finds the repository and reads its files.

use std::path::{Path, PathBuf};

/// The repository's root directory.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// A file of the repository, by its path from the root.
pub fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|err| panic!("reading {path}: {err}"))
}

/// The names of the files in a directory of the repository, sorted.
pub fn files_in(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|err| panic!("listing {dir}: {err}"))
        .map(|entry| entry.expect("a directory entry"))
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The files below `dir`, at any depth, as paths relative to it (`containers/harness.py`);
/// Python's byte-code caches are not files of the repository.
pub fn files_under(dir: &str) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|err| panic!("listing {}: {err}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() && !path.ends_with("__pycache__") {
                walk(base, &path, out);
            } else if path.is_file() {
                out.push(path.strip_prefix(base).expect("below base").to_string_lossy().into_owned());
            }
        }
    }
    let base = root().join(dir);
    let mut names = Vec::new();
    walk(&base, &base, &mut names);
    names.sort();
    names
}

/// The section of a Markdown document under the heading `heading` (e.g. `## Crates`), up to
/// the next heading of the same or a higher level (lines in code blocks are no headings).
pub fn section<'a>(markdown: &'a str, heading: &str) -> &'a str {
    let level = heading.chars().take_while(|c| *c == '#').count();
    let (mut start, mut in_code, mut offset) = (None, false, 0);
    for line in markdown.split_inclusive('\n') {
        let text = line.trim_end();
        in_code ^= text.starts_with("```");
        let hashes = text.chars().take_while(|c| *c == '#').count();
        let is_heading = !in_code && hashes > 0 && text[hashes..].starts_with(' ');
        match start {
            None if is_heading && text == heading => start = Some(offset + line.len()),
            Some(begin) if is_heading && hashes <= level => return &markdown[begin..offset],
            _ => {}
        }
        offset += line.len();
    }
    &markdown[start.unwrap_or_else(|| panic!("no heading {heading:?}"))..]
}

/// The rows of the first Markdown table in `text`, each split into trimmed cells (header and
/// separator rows left out).
pub fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(str::trim)
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| line.trim_matches('|').split('|').map(|cell| cell.trim().to_owned()).collect())
        .collect()
}

/// The `code spans` of `text`, in order.
pub fn code_spans(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}
