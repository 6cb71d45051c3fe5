//! Each generated type held to the JSON the server sends: for samples of every kind of value,
//! the keys of the JSON are exactly the keys the TypeScript declares (a `?` key may be absent),
//! a `null` appears only where the TypeScript allows one, and a tagged union's tag picks the
//! alternative. The TypeScript is read from ts-rs's own output (`TS::inline`), so a serde
//! attribute ts-rs misread would fail here.

use super::*;
use crate::*;
use serde::Serialize;
use serde_json::{json, Value};

mod bodies;
mod events;

/// One field of a TypeScript object type: its name, whether it has `?`, its type.
#[derive(Debug, Clone)]
struct Field {
    name: String,
    optional: bool,
    ty: String,
}

fn strip_comments(ts: &str) -> String {
    let mut out = String::new();
    let mut rest = ts;
    while let Some(start) = rest.find("/**") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("*/")
            .map_or(rest.len(), |e| start + e + 2);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Splits `s` at `sep` where no bracket or string is open.
fn split_top(s: &str, sep: char) -> Vec<String> {
    let (mut parts, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '{' | '<' | '(' | '[' if !quoted => depth += 1,
            '}' | '>' | ')' | ']' if !quoted => depth -= 1,
            _ => {}
        }
        if c == sep && depth == 0 && !quoted {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The fields of one object type `{ a: T, b?: U, }`.
fn object_fields(alt: &str) -> Vec<Field> {
    let body = alt
        .strip_prefix('{')
        .and_then(|a| a.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not an object type: {alt}"));
    split_top(body, ',')
        .into_iter()
        .map(|f| {
            let (name, ty) = f.split_once(':').unwrap_or_else(|| panic!("{f}"));
            let name = name.trim().trim_matches('"');
            Field {
                name: name.trim_end_matches('?').to_owned(),
                optional: name.ends_with('?'),
                ty: ty.trim().to_owned(),
            }
        })
        .collect()
}

/// The alternatives of a union of object types, each alternative's fields. A flattened part
/// is an intersection, `{ head } & ({ a } | { b })`: each alternative is the head's fields and
/// one of the union's.
fn alternatives<T: TS + ?Sized>() -> Vec<Vec<Field>> {
    let cfg = config(Path::new("."));
    let ts = strip_comments(&T::inline(&cfg));
    let mut alts: Vec<Vec<Field>> = vec![Vec::new()];
    for part in split_top(&ts, '&') {
        let part = part
            .strip_prefix('(')
            .and_then(|p| p.strip_suffix(')'))
            .unwrap_or(&part);
        let options: Vec<Vec<Field>> = split_top(part, '|')
            .into_iter()
            .map(|alt| object_fields(&alt))
            .collect();
        alts = alts
            .into_iter()
            .flat_map(|fields| {
                options.iter().map(move |more| {
                    let mut all = fields.clone();
                    all.extend(more.iter().cloned());
                    all
                })
            })
            .collect();
    }
    alts
}

/// Whether a JSON value fits a field's declared type at the top level: `null` only where
/// the type names it, a string literal (a tag) only with that string.
fn fits(value: &Value, ty: &str) -> bool {
    let options = split_top(ty, '|');
    match value {
        Value::Null => options.iter().any(|o| o == "null"),
        Value::String(s) if options.iter().all(|o| o.starts_with('"')) => {
            options.iter().any(|o| o.trim_matches('"') == s)
        }
        _ => options.iter().any(|o| o != "null"),
    }
}

/// Serializes `value` as the server does and checks it against `T`'s TypeScript.
fn check<T: TS + Serialize>(value: &T) -> Value {
    let json = serde_json::to_value(value).expect("serializes");
    let Value::Object(map) = &json else {
        panic!("{json} is not an object")
    };
    let alts = alternatives::<T>();
    let matching: Vec<_> = alts
        .iter()
        .filter(|fields| {
            fields
                .iter()
                .filter(|f| f.ty.starts_with('"'))
                .all(|f| map.get(&f.name).is_some_and(|v| fits(v, &f.ty)))
        })
        .collect();
    assert_eq!(matching.len(), 1, "{json}: one alternative of {alts:?}");
    let fields = matching[0];
    for f in fields {
        match map.get(&f.name) {
            None => assert!(f.optional, "{json}: `{}` is required in TS", f.name),
            Some(v) => assert!(fits(v, &f.ty), "{json}: `{}` is not {}", f.name, f.ty),
        }
    }
    for key in map.keys() {
        assert!(
            fields.iter().any(|f| &f.name == key),
            "{json}: `{key}` is not declared in {fields:?}"
        );
    }
    json
}

/// The names the TypeScript requires (no `?`).
fn required<T: TS>() -> Vec<String> {
    let alts = alternatives::<T>();
    assert_eq!(alts.len(), 1);
    alts[0]
        .iter()
        .filter(|f| !f.optional)
        .map(|f| f.name.clone())
        .collect()
}
