//! Templates: a file's content or a closing text with `{{fact}}` placeholders, split once when
//! the key is loaded so that an unknown name is found then, not in the middle of a run.
//!
//! A placeholder is `{{` + a name of letters, digits and `_` + `}}`; anything else with braces
//! (`{{}}` in a Rust format string, `style={{ color: 'red' }}` in JSX) is text.

/// A piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Fact(String),
}

/// A text with `{{fact}}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Splits `text` into text and placeholders.
    pub(crate) fn parse(text: &str) -> Self {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut literal = String::new();
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_len > 0 && after[name_len..].starts_with("}}") {
                literal.push_str(&rest[..open]);
                if !literal.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Fact(after[..name_len].to_owned()));
                rest = &after[name_len + 2..];
            } else {
                // Not a placeholder: keep one brace and look again from the next one.
                literal.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Self { pieces }
    }

    /// The facts the template names, in order (a name used twice comes twice).
    pub(crate) fn facts(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Fact(name) => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    /// The text with each placeholder replaced by `value(name)`.
    pub(crate) fn fill(&self, mut value: impl FnMut(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Fact(name) => out.push_str(&value(name)),
            }
        }
        out
    }
}
