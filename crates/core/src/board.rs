//! The whiteboard's elements: what one value of the document's `board` map may hold.
//!
//! The board is a root `Y.Map` named [`BOARD`]. Its keys are element ids; each value is one
//! Excalidraw element as a JSON string (never a nested Yjs type, which [`crate::validate`]
//! refuses). This file says which strings are acceptable elements; where they may go in the
//! document is the validator's business.
//!
//! An element is accepted if it is a JSON object of at most [`MAX_ELEMENT_BYTES`], with a string
//! `id` (at most [`MAX_KEY_BYTES`]) and a string `type`, that carries no file: not an `image`
//! (nor an `embeddable` or `iframe`, which make every other browser load a URL), no `fileId`,
//! and no string anywhere in it that is a `data:` URL. So no picture or upload ever lands in the
//! log; everything else about the element (its geometry, its text) is the author's data, which
//! pages render as data.

use crate::validate::Invalid;
use serde_json::Value;

pub use duet_protocol::BOARD;

/// Largest element, in bytes of its JSON.
pub const MAX_ELEMENT_BYTES: usize = 64 * 1024;
/// Most elements (keys) the board may hold.
pub const MAX_ELEMENTS: usize = 5_000;
/// Longest element id (the key it is stored under), in bytes.
pub const MAX_KEY_BYTES: usize = 128;

/// Element types that are files or load one: refused.
const REFUSED_TYPES: [&str; 3] = ["image", "embeddable", "iframe"];

/// Checks one board value; returns the element's `id`.
pub fn check_element(json: &str) -> Result<Box<str>, Invalid> {
    if json.len() > MAX_ELEMENT_BYTES {
        return Err(Invalid(format!(
            "a board element of {} bytes is over the {} KiB cap",
            json.len(),
            MAX_ELEMENT_BYTES / 1024
        )));
    }
    let value: Value = serde_json::from_str(json)
        .map_err(|_| Invalid("a board element is not JSON (it must be a JSON object)".into()))?;
    let Value::Object(element) = &value else {
        return Err(Invalid("a board element must be a JSON object".into()));
    };
    let Some(Value::String(kind)) = element.get("type") else {
        return Err(Invalid("a board element needs a string \"type\"".into()));
    };
    if REFUSED_TYPES.contains(&kind.as_str()) {
        return Err(Invalid(format!(
            "board elements of type {kind:?} are not accepted (no images or embeds on the board)"
        )));
    }
    if element.get("fileId").is_some_and(|f| !f.is_null()) {
        return Err(Invalid(
            "a board element with a \"fileId\" is not accepted (no images on the board)".into(),
        ));
    }
    // serde_json nests at most 128 levels; the walk keeps its own stack, never recursing.
    let mut stack: Vec<&Value> = vec![&value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) if is_data_url(s) => {
                return Err(Invalid(
                    "a board element holds a data: URL (no embedded files on the board)".into(),
                ))
            }
            Value::Array(items) => stack.extend(items),
            Value::Object(fields) => stack.extend(fields.values()),
            _ => {}
        }
    }
    match element.get("id") {
        Some(Value::String(id)) if !id.is_empty() && id.len() <= MAX_KEY_BYTES => {
            Ok(id.as_str().into())
        }
        Some(Value::String(_)) => Err(Invalid(format!(
            "a board element's id must be 1 to {MAX_KEY_BYTES} bytes"
        ))),
        _ => Err(Invalid("a board element needs a string \"id\"".into())),
    }
}

fn is_data_url(s: &str) -> bool {
    s.trim_start()
        .get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("data:"))
}
