//! The error of a catalog that cannot be read or is malformed.

use serde::Serialize;

/// A catalog that cannot be read, is not valid TOML, or breaks a rule of the catalog schema.
///
/// Displayed as `origin:line:column: message` (or `origin: message` when there is no position), where
/// `origin` names the file (or `builtin:…` for the embedded default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{origin}{}: {message}", location(.line, .column))]
pub struct CatalogError {
    /// The file the catalog came from.
    pub origin: String,
    /// 1-based line of the offending text, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending text, when known.
    pub column: Option<usize>,
    /// What is wrong and what to do about it.
    pub message: String,
}

fn location(line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

impl CatalogError {
    /// An error at byte offset `offset` of `src` (line and column are computed from it).
    pub(crate) fn at(
        origin: &str,
        src: &str,
        offset: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = match offset {
            Some(off) => {
                let (l, c) = line_col(src, off);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        CatalogError {
            origin: origin.to_owned(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of byte offset `offset` in `src`.
fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_from_one_and_in_characters() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        // 'é' is two bytes: the byte after it is the third character of line 2.
        assert_eq!(line_col(src, 9), (2, 3));
    }

    #[test]
    fn display_shows_origin_line_column_and_message() {
        let e = CatalogError::at("cat.toml", "x\ny = 1\n", Some(2), "bad");
        assert_eq!(e.to_string(), "cat.toml:2:1: bad");
        let e = CatalogError::at("cat.toml", "", None, "unreadable");
        assert_eq!(e.to_string(), "cat.toml: unreadable");
    }
}
