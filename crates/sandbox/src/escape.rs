//! Text from inside a sandbox made safe for a log line.

use std::fmt::Write;

/// `text` with every control character (ESC, `\r`, `\n`, DEL, C1), every invisible direction
/// or zero-width mark, and the backslash escaped as `\u{..}` / `\\`: a log line shows what was
/// sent and cannot be rewritten, recoloured or split by it.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let invisible = matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}'
        );
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() || invisible {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_cannot_reach_the_log() {
        assert_eq!(
            escape("ok\x1b[2J\rfake\nline\\ \u{202e}x é"),
            "ok\\u{1b}[2J\\u{d}fake\\u{a}line\\\\ \\u{202e}x é"
        );
    }
}
