//! Text from the host made safe to print: control characters are shown, not obeyed.
//!
//! Command lines, comm, container names, daemon messages and compose files are written by
//! whoever runs on the host. Printed raw, a newline in a command line breaks the screen's layout
//! and an escape sequence repaints the terminal, so every such field goes through `printable`.
//! Kept by hand: `str::escape_debug` would also escape quotes and backslashes, which command
//! lines are full of.

use std::borrow::Cow;

/// `s` with each control character (and each bidirectional override, which reorders what
/// follows it) written as an escape: `\n`, `\r`, `\t`, `\u{1b}`.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_acts_on_and_nothing_else() {
        assert_eq!(printable("a\nb\tc\r"), r"a\nb\tc\r");
        assert_eq!(printable("\u{1b}[2J"), r"\u{1b}[2J");
        assert_eq!(printable("x\u{202e}y"), r"x\u{202e}y");
        let plain = "python3 -c 'print(\"a\\b\")' — 0.0.0.0:8080 …";
        assert!(matches!(printable(plain), Cow::Borrowed(_)));
    }
}
