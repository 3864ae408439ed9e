//! `docs/ARCHITECTURE.md` names every workspace crate, once, in its crate table and in its
//! dependency diagram, and names no crate that does not exist.

use pfs_docs_check::{code_spans, read, root, section, table_rows};
use std::collections::BTreeSet;

/// The workspace crates (`crates/*` with a `Cargo.toml`), by directory name, as the docs name
/// them.
fn workspace_crates() -> BTreeSet<String> {
    std::fs::read_dir(root().join("crates"))
        .expect("crates/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .map(|dir| dir.file_name().expect("a name").to_string_lossy().into_owned())
        .collect()
}

fn crates_section() -> String {
    section(&read("docs/ARCHITECTURE.md"), "## Crates and the direction of dependencies").to_owned()
}

#[test]
fn the_crate_table_has_one_row_per_workspace_crate() {
    let rows: Vec<String> = table_rows(&crates_section())
        .into_iter()
        .map(|cells| code_spans(&cells[0]).first().map(|name| (*name).to_owned()).unwrap_or_default())
        .collect();
    let mut seen = BTreeSet::new();
    let twice: Vec<&String> = rows.iter().filter(|name| !seen.insert((*name).clone())).collect();
    assert!(twice.is_empty(), "crates with more than one row: {twice:?}");
    let crates = workspace_crates();
    let missing: Vec<&String> = crates.difference(&seen).collect();
    let unknown: Vec<&String> = seen.difference(&crates).collect();
    assert!(missing.is_empty(), "workspace crates missing from the crate table: {missing:?}");
    assert!(unknown.is_empty(), "crate table rows naming no workspace crate: {unknown:?}");
}

#[test]
fn the_dependency_diagram_shows_every_workspace_crate() {
    let section = crates_section();
    let diagram = section.split("```").nth(1).expect("a diagram in a code block");
    let words: BTreeSet<&str> =
        diagram.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).filter(|w| !w.is_empty()).collect();
    let missing: Vec<String> = workspace_crates().into_iter().filter(|name| !words.contains(name.as_str())).collect();
    assert!(missing.is_empty(), "workspace crates missing from the diagram: {missing:?}");
}
