//! The indexes are complete: `docs/README.md` links every document in `docs/`,
//! `scripts/README.md` describes every script (in its folders too), and each names nothing that is gone. The one
//! configuration table is what the README and the runbook point to.

use pfs_docs_check::{files_in, files_under, read, root};

/// The targets of the Markdown links `[text](target)` in `text`, without `#fragments`.
fn links(text: &str) -> Vec<&str> {
    text.split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|t| t.split('#').next().unwrap_or(t))
        .collect()
}

#[test]
fn the_docs_index_links_every_document() {
    let index = read("docs/README.md");
    let linked = links(&index);
    let missing: Vec<String> = files_in("docs")
        .into_iter()
        .filter(|name| name.ends_with(".md") && name != "README.md" && !linked.contains(&name.as_str()))
        .collect();
    assert!(missing.is_empty(), "documents docs/README.md does not link: {missing:?}");
    let broken: Vec<&&str> = linked
        .iter()
        .filter(|target| !target.contains("://") && !target.is_empty() && !root().join("docs").join(target).exists())
        .collect();
    assert!(broken.is_empty(), "links in docs/README.md to nothing: {broken:?}");
    assert!(links(&read("README.md")).contains(&"docs/README.md"), "the README links the docs index");
}

#[test]
fn the_scripts_index_describes_every_script() {
    let index = read("scripts/README.md");
    let scripts: Vec<String> = files_under("scripts").into_iter().filter(|name| name != "README.md").collect();
    let missing: Vec<&String> = scripts.iter().filter(|name| !index.contains(&format!("`{name}`"))).collect();
    assert!(missing.is_empty(), "scripts scripts/README.md does not describe: {missing:?}");
    let named: Vec<&str> = index
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|span| !span.contains(' ') && [".sh", ".py", ".lua"].iter().any(|ext| span.ends_with(ext)))
        .map(|span| span.trim_start_matches("scripts/"))
        .collect();
    let gone: Vec<&&str> = named.iter().filter(|name| !scripts.iter().any(|s| s == *name)).collect();
    assert!(gone.is_empty(), "scripts/README.md names scripts that do not exist: {gone:?}");
}

#[test]
fn the_readme_and_the_runbook_point_to_the_one_configuration_table() {
    for (doc, target) in [("README.md", "docs/CONFIGURATION.md"), ("docs/OPERATIONS.md", "CONFIGURATION.md")] {
        let text = read(doc);
        assert!(links(&text).contains(&target), "{doc} links {target}");
        assert!(!text.contains("| variable | config key |"), "{doc} keeps a configuration table of its own");
    }
}
