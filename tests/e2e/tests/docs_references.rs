//! The tests that `docs/SECURITY.md` names as proof must exist: a renamed or deleted test
//! would otherwise leave a threat that looks covered and is not.
//!
//! A reference is a code span `` `path/to/file.rs::function` ``; `` `::function` `` means the
//! same file as the reference before it, and `` `path/to/file.rs` `` names a whole file.

use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A test named by the docs: the file, and the function when one is named.
#[derive(Debug)]
struct Reference {
    file: String,
    function: Option<String>,
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_rust_path(text: &str) -> bool {
    text.ends_with(".rs")
        && text.contains('/')
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '.' | '-'))
}

/// Every reference in a markdown text, in order, with `::name` resolved to the file before.
fn references_in(markdown: &str) -> Vec<Reference> {
    let mut references = Vec::new();
    let mut last_file: Option<String> = None;
    for (index, span) in markdown.split('`').enumerate() {
        // Odd pieces are inside backticks.
        if index % 2 == 0 {
            continue;
        }
        let (file, function) = match span.split_once("::") {
            Some(("", function)) if is_identifier(function) => match &last_file {
                Some(file) => (file.clone(), Some(function.to_owned())),
                None => panic!("`{span}` names no file before it"),
            },
            Some((file, function)) if is_rust_path(file) && is_identifier(function) => {
                (file.to_owned(), Some(function.to_owned()))
            }
            None if is_rust_path(span) => (span.to_owned(), None),
            _ => continue,
        };
        last_file = Some(file.clone());
        references.push(Reference { file, function });
    }
    references
}

fn defines_function(source: &str, function: &str) -> bool {
    source
        .match_indices(&format!("fn {function}"))
        .any(|(at, matched)| {
            let next = source[at + matched.len()..].chars().next();
            matches!(next, Some('(' | '<' | ' '))
        })
}

fn missing_references(doc: &str) -> (usize, Vec<String>) {
    let markdown = std::fs::read_to_string(repo_root().join(doc)).expect("the doc is readable");
    let references = references_in(&markdown);
    let mut missing = Vec::new();
    for reference in &references {
        let Ok(source) = std::fs::read_to_string(repo_root().join(&reference.file)) else {
            missing.push(format!("{}: no such file", reference.file));
            continue;
        };
        if let Some(function) = &reference.function
            && !defines_function(&source, function)
        {
            missing.push(format!("{}::{function}: no such function", reference.file));
        }
    }
    (references.len(), missing)
}

#[test]
fn every_test_security_md_names_exists() {
    let (count, missing) = missing_references("docs/SECURITY.md");
    assert!(
        count >= 60,
        "only {count} references found: is the parser still right?"
    );
    assert!(
        missing.is_empty(),
        "docs/SECURITY.md names tests that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_reference_parser_resolves_shorthand_and_skips_other_code() {
    let references = references_in(
        "see `a/b.rs::one`, `::two`, `--flag`, `c/d.rs` and `ota_agent::sntp` and `e/f.rs::three`",
    );
    let rendered: Vec<String> = references
        .iter()
        .map(|r| format!("{}#{}", r.file, r.function.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        rendered,
        ["a/b.rs#one", "a/b.rs#two", "c/d.rs#", "e/f.rs#three"]
    );
}

#[test]
fn a_renamed_test_is_reported() {
    assert!(defines_function("#[test]\nfn kept() {}", "kept"));
    assert!(!defines_function("#[test]\nfn kept_longer() {}", "kept"));
}

/// Source files of the repository (Rust and shell), skipping build output and vendored code.
fn source_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | "third_party" | "node_modules")
                && !name.starts_with('.')
                || name == ".ci"
            {
                source_files(&path, found);
            }
        } else if name.ends_with(".rs") || name.ends_with(".sh") || name == "run" {
            found.push(path);
        }
    }
}

/// The `OTA_*` variable names a source text reads or sets: `"OTA_X"` string literals in
/// Rust, `$OTA_X` / `${OTA_X` in shell.
fn ota_variables_in(source: &str, shell: bool) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in source.match_indices("OTA_") {
        let before = &source[..at];
        let name: String = source[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
            .collect();
        let after = source[at + name.len()..].chars().next();
        let read = if shell {
            before.ends_with('$') || before.ends_with("${")
        } else {
            before.ends_with('"') && after == Some('"')
        };
        if read && name.len() > "OTA_".len() {
            names.push(name);
        }
    }
    names
}

#[test]
fn every_ota_variable_the_code_reads_is_in_the_readme() {
    let root = repo_root();
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md is readable");
    let mut files = Vec::new();
    source_files(&root, &mut files);
    let mut undocumented = std::collections::BTreeSet::new();
    let mut seen = 0;
    // This file names made-up variables to test the scan.
    let this_file = root.join("tests/e2e/tests/docs_references.rs");
    for file in files.iter().filter(|f| **f != this_file) {
        let source = std::fs::read_to_string(file).unwrap_or_default();
        let shell = file.extension().is_none_or(|e| e != "rs");
        for name in ota_variables_in(&source, shell) {
            seen += 1;
            if !readme.contains(&format!("`{name}")) {
                let shown = file.strip_prefix(&root).unwrap_or(file).display();
                undocumented.insert(format!("{name} (read in {shown})"));
            }
        }
    }
    assert!(
        seen >= 50,
        "only {seen} uses found: is the scan still right?"
    );
    assert!(
        undocumented.is_empty(),
        "README.md's \"Environment variables\" section misses:\n{}",
        undocumented.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_variable_scan_finds_literals_and_shell_expansions_only() {
    let rust = r#"var("OTA_A") "OTA_B_2" ${OTA_C} use a::{OTA_D}; "static OTA_E: u8" "OTA_""#;
    assert_eq!(ota_variables_in(rust, false), ["OTA_A", "OTA_B_2"]);
    let shell = r#"${OTA_C:-0} $OTA_D OTA_E "OTA_F" x{OTA_G}"#;
    assert_eq!(ota_variables_in(shell, true), ["OTA_C", "OTA_D"]);
}
