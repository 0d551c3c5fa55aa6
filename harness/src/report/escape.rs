//! Escaping for HTML and SVG text and attributes. Every value that comes from
//! the system under test (node names, keys, errors, `meta`, summaries) goes
//! through here before it reaches the page.

use std::fmt::Write;

/// Escapes `&`, `<`, `>`, `"` and `'`: safe in text and in quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than whitespace are not valid in XML (SVG).
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes JSON for embedding inside `<script type="application/json">`:
/// `<`, `>` and `&` become `\u003c` etc., so no value can close the element.
pub fn json_in_script(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// A stable, attribute-safe id fragment (letters, digits, `-`).
pub fn id_fragment(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_becomes_text() {
        assert_eq!(
            esc(r#"<img src=x onerror="alert('1')">&"#),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
        assert_eq!(esc("a\u{1}b"), "a\\u{1}b");
        assert_eq!(
            json_in_script(r#"{"a":"</script>"}"#),
            r#"{"a":"\u003c/script\u003e"}"#
        );
        assert_eq!(id_fragment("lost-write 1<"), "lost-write-1-");
    }
}
