//! A minimal JSON writer: enough for `status json` without pulling serde into the binary.

use std::fmt::Write;

/// Appends `s` as a JSON string literal (quotes included), escaping what RFC 8259 requires.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Other control characters (and DEL/U+2028/U+2029, which break some JS
            // consumers) are written as \u escapes so the document stays on one line.
            c if (c as u32) < 0x20 || c == '\u{7f}' || c == '\u{2028}' || c == '\u{2029}' => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Builds one JSON object field by field; commas are placed automatically.
pub struct Object<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> Object<'a> {
    /// Opens an object (`{`) at the end of `out`.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Object { out, first: true }
    }

    /// Writes the key and returns the buffer, positioned for the value.
    pub fn key(&mut self, key: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        string(self.out, key);
        self.out.push(':');
        self.out
    }

    /// A string field.
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        let o = self.key(key);
        string(o, v);
        self
    }

    /// An unsigned integer field.
    pub fn u64(&mut self, key: &str, v: u64) -> &mut Self {
        let o = self.key(key);
        let _ = write!(o, "{v}");
        self
    }

    /// A signed integer field, or `null`.
    pub fn opt_i64(&mut self, key: &str, v: Option<i64>) -> &mut Self {
        let o = self.key(key);
        match v {
            Some(v) => {
                let _ = write!(o, "{v}");
            }
            None => o.push_str("null"),
        }
        self
    }

    /// A number field with millisecond precision (seconds), or `null`.
    pub fn opt_secs(&mut self, key: &str, v: Option<std::time::Duration>) -> &mut Self {
        let o = self.key(key);
        match v {
            Some(d) => {
                let _ = write!(o, "{}.{:03}", d.as_secs(), d.subsec_millis());
            }
            None => o.push_str("null"),
        }
        self
    }

    /// A field whose value the caller writes as raw JSON.
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key).push_str(json);
        self
    }

    /// Closes the object (`}`).
    pub fn end(self) {
        self.out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_through_a_real_parser() {
        let nasty = "a\"b\\c\nd\te\u{1}f\u{7f}g\u{2028}h é 🎉";
        let mut s = String::new();
        let mut o = Object::new(&mut s);
        o.str("k\"", nasty)
            .u64("n", 7)
            .opt_i64("x", None)
            .opt_i64("y", Some(-3));
        o.opt_secs("t", Some(std::time::Duration::from_millis(1500)));
        o.end();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["k\""], nasty);
        assert_eq!(v["n"], 7);
        assert!(v["x"].is_null());
        assert_eq!(v["y"], -3);
        assert_eq!(v["t"], 1.5);
        assert!(!s.contains('\n'));
    }
}
