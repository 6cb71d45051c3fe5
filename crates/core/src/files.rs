//! The candidate's files: which names a file may have, and which files the document shows.
//!
//! Each file's text is a root `Y.Text` named by a relative path (`main.py`, `shop/cart.py`,
//! `data/orders.csv`): a stock Yjs client creates a file by writing into `doc.getText(path)`.
//! Yjs root types can never be removed, so deletes and renames go through a second root, the
//! `Y.Map` named [`FILES`], which maps a path to a plain object (never a nested type):
//! - `{"deleted": true}`: the path is gone (its text stays in the document, unlisted);
//! - `{"text": ROOT}`: the path shows the text of the root `ROOT`. A rename of `a.py` to `b.py`
//!   is one transaction writing `files["b.py"] = {"text": "a.py"}` and
//!   `files["a.py"] = {"deleted": true}`: the text is not copied, so what the other person types
//!   into it during the rename is kept.
//!
//! A path with no entry is listed when a root text of that name exists (`main.py` always does). After every update
//! that writes or deletes an entry of `files`, or starts a new root text, the room checks that:
//! no two listed paths show the same text, every `{"text": ROOT}` names a text the document
//! has, nothing was written onto a path listed before that showed another text (a rename onto
//! an existing file), at most [`MAX_FILES`] paths are listed and at most [`MAX_TEXTS`] texts
//! exist (deleted files keep theirs). The document's size cap covers every text.

use crate::validate::Invalid;
use std::collections::BTreeMap;
use yrs::{Doc, GetString, Map, Out, ReadTxn, Transact};

pub use duet_protocol::{FILES, MAIN_FILE};

/// Longest path, in bytes (every byte is ASCII).
pub const MAX_PATH_BYTES: usize = 128;
/// Most files listed at once.
pub const MAX_FILES: usize = 64;
/// Most root texts a document may hold, deleted files' texts included.
pub const MAX_TEXTS: usize = 256;
/// The extensions a file may have.
pub const EXTENSIONS: [&str; 9] = [
    "py", "txt", "md", "csv", "json", "toml", "ini", "cfg", "sql",
];

/// Checks a file's path: relative, at most [`MAX_PATH_BYTES`] of `[A-Za-z0-9_./-]`, no empty,
/// `.` or `..` segment, ending in one of [`EXTENSIONS`].
pub fn check_path(path: &str) -> Result<(), Invalid> {
    let refuse = |why: &str| Err(Invalid(format!("file name {path:.140?}: {why}")));
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return refuse(&format!("must be 1 to {MAX_PATH_BYTES} characters"));
    }
    if let Some(c) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')))
    {
        return refuse(&format!(
            "{c:?} is not allowed (only letters, digits, _ . / -)"
        ));
    }
    if path.starts_with('/') {
        return refuse("must be relative (no leading /)");
    }
    if path.split('/').any(|s| s == "..") {
        return refuse("must not contain ..");
    }
    if path.split('/').any(|s| s.is_empty() || s == ".") {
        return refuse("has an empty or . segment");
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && EXTENSIONS.contains(&ext) => Ok(()),
        _ => refuse(&format!("must end in one of .{}", EXTENSIONS.join(" ."))),
    }
}

/// One value of the `files` map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `{"deleted": true}`: the path is gone.
    Deleted,
    /// `{"text": ROOT}`: the path shows the root text `ROOT`.
    Shows(Box<str>),
}

/// The files a document lists: path to the root text it shows, for every listed path, plus
/// how many root texts it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// Listed path to the root it shows (`None` when it names a root the document lacks).
    pub paths: BTreeMap<String, Option<String>>,
    /// Every root text's name.
    pub texts: Vec<String>,
}

/// Reads which files `doc` lists.
pub fn listing(doc: &Doc) -> Listing {
    let txn = doc.transact();
    let mut texts: Vec<String> = txn
        .root_refs()
        .filter(|(name, _)| check_path(name).is_ok())
        .map(|(name, _)| name.to_owned())
        .collect();
    if !texts.iter().any(|t| t == MAIN_FILE) {
        texts.push(MAIN_FILE.to_owned()); // every document holds it, empty until typed into
    }
    let mut entries = BTreeMap::new();
    if let Some(map) = txn.get_map(FILES) {
        for (path, value) in map.iter(&txn) {
            entries.insert(path.to_owned(), entry_of(&value));
        }
    }
    let mut paths = BTreeMap::new();
    for text in &texts {
        if !entries.contains_key(text) {
            paths.insert(text.clone(), Some(text.clone()));
        }
    }
    for (path, entry) in entries {
        if let Some(Entry::Shows(root)) = entry {
            let root = texts.iter().find(|t| **t == *root).cloned();
            paths.insert(path, root);
        }
    }
    Listing { paths, texts }
}

/// The entry a stored value is (`None` for anything the validator would not have let in).
fn entry_of(value: &Out) -> Option<Entry> {
    let Out::Any(yrs::Any::Map(fields)) = value else {
        return None;
    };
    match (fields.get("deleted"), fields.get("text")) {
        (Some(yrs::Any::Bool(true)), None) => Some(Entry::Deleted),
        (None, Some(yrs::Any::String(root))) => Some(Entry::Shows(root.as_ref().into())),
        _ => None,
    }
}

/// Checks the files `after` lists against those `before` listed, where the update in between
/// wrote the `files` entries `written`.
pub fn check_change(before: &Listing, after: &Listing, written: &[&str]) -> Result<(), Invalid> {
    for path in written {
        let (Some(Some(old)), Some(Some(new))) = (before.paths.get(*path), after.paths.get(*path))
        else {
            continue;
        };
        if old != new {
            return Err(Invalid(format!(
                "{path:?} already exists: a file cannot be renamed or moved onto it"
            )));
        }
    }
    let main = Some(MAIN_FILE.to_owned());
    if before.paths.get(MAIN_FILE) == Some(&main) && after.paths.get(MAIN_FILE) != Some(&main) {
        return Err(Invalid(format!(
            "{MAIN_FILE:?} is the program every run starts: it cannot be deleted or renamed"
        )));
    }
    let mut shown: BTreeMap<&str, &str> = BTreeMap::new();
    for (path, root) in &after.paths {
        let Some(root) = root else {
            return Err(Invalid(format!(
                "{path:?} would show a text the document does not have"
            )));
        };
        if let Some(other) = shown.insert(root, path) {
            return Err(Invalid(format!(
                "{other:?} and {path:?} would show the same text {root:?}"
            )));
        }
    }
    if after.paths.len() > MAX_FILES && after.paths.len() > before.paths.len() {
        return Err(Invalid(format!(
            "at most {MAX_FILES} files (this would make {})",
            after.paths.len()
        )));
    }
    if after.texts.len() > MAX_TEXTS && after.texts.len() > before.texts.len() {
        return Err(Invalid(format!(
            "at most {MAX_TEXTS} file texts, deleted files' included (this would make {})",
            after.texts.len()
        )));
    }
    Ok(())
}

/// The listed files and their text, by path.
pub fn contents(doc: &Doc) -> Vec<(String, String)> {
    let listed = listing(doc);
    let txn = doc.transact();
    listed
        .paths
        .into_iter()
        .filter_map(|(path, root)| {
            let text = txn.get_text(root?.as_str());
            Some((path, text.map(|t| t.get_string(&txn)).unwrap_or_default()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_rules() {
        for ok in [
            "main.py",
            "shop/cart.py",
            "tests/test_cart.py",
            "data/orders.csv",
            "a-b_c.d.json",
            "conf/app.toml",
            "q.sql",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        let long = format!("{}.py", "a".repeat(MAX_PATH_BYTES));
        for (bad, why) in [
            ("", "1 to 128"),
            ("/etc/passwd.txt", "relative"),
            ("../up.py", ".."),
            ("a/../b.py", ".."),
            ("a//b.py", "empty"),
            ("./a.py", "empty or ."),
            ("a b.py", "not allowed"),
            ("é.py", "not allowed"),
            ("run.sh", "must end in"),
            ("board", "must end in"),
            (".py", "must end in"),
            ("dir/", "empty"),
            (long.as_str(), "1 to 128"),
        ] {
            let said = check_path(bad).expect_err(bad).0;
            assert!(said.contains(why), "{bad:?}: {said}");
        }
    }
}
