//! A tiny glob matcher for S3 keys.
//!
//! - `*` matches any run of characters except `/` (possibly none);
//! - `?` matches exactly one character except `/`;
//! - `**` matches any run of characters including `/` (possibly none); when it stands for a
//!   whole path segment followed by `/` (`**/` at the start or after a `/`), it matches zero
//!   or more whole segments, so `**/*.jpg` matches `a.jpg` as well as `x/y/a.jpg`, and
//!   `a/**/b` matches `a/b` and `a/x/y/b`;
//! - every other character matches itself (case-sensitive). There is no escaping and no
//!   `[...]` class.
//!
//! The whole key must match. Matching is a dynamic programme over (pattern position, key
//! position), so it takes `O(pattern × key)` time whatever the pattern: no exponential
//! backtracking on hostile patterns.

/// One compiled pattern element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A literal character.
    Char(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**` (not followed by `/`, or not at a segment start)
    AnyPath,
    /// `**/` at a segment start: empty, or anything ending in `/`
    Dirs,
}

/// A compiled glob pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    source: String,
    tokens: Vec<Token>,
}

impl Glob {
    /// Compiles `pattern`. Fails only on an empty pattern (which could match only an empty
    /// key, and S3 keys are never empty).
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty pattern".into());
        }
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    let run = chars[i..].iter().take_while(|&&c| c == '*').count();
                    if run == 1 {
                        tokens.push(Token::Star);
                        i += 1;
                        continue;
                    }
                    // Two or more stars are one `**`.
                    let at_segment_start = i == 0 || chars[i - 1] == '/';
                    let slash_follows = chars.get(i + run) == Some(&'/');
                    if at_segment_start && slash_follows {
                        tokens.push(Token::Dirs);
                        i += run + 1;
                    } else {
                        tokens.push(Token::AnyPath);
                        i += run;
                    }
                }
                '?' => {
                    tokens.push(Token::One);
                    i += 1;
                }
                c => {
                    tokens.push(Token::Char(c));
                    i += 1;
                }
            }
        }
        Ok(Glob {
            source: pattern.to_string(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the whole of `key` matches.
    pub fn matches(&self, key: &str) -> bool {
        let key: Vec<char> = key.chars().collect();
        let (p, k) = (self.tokens.len(), key.len());
        // m[i][j]: tokens[i..] match key[j..]. d[j] (for the current `Dirs` token i): some
        // non-empty key[j..e] ending in '/' is followed by a match of tokens[i+1..] at e.
        let width = k + 1;
        let mut next = vec![false; width]; // row i + 1
        next[k] = true; // empty pattern matches empty rest
        let mut row = vec![false; width];
        for i in (0..p).rev() {
            let token = self.tokens[i];
            let mut d_next = false; // d[j + 1]
            for j in (0..=k).rev() {
                let here = key.get(j).copied();
                row[j] = match token {
                    Token::Char(c) => here == Some(c) && next[j + 1],
                    Token::One => here.is_some_and(|c| c != '/') && next[j + 1],
                    Token::Star => next[j] || (here.is_some_and(|c| c != '/') && row[j + 1]),
                    Token::AnyPath => next[j] || (here.is_some() && row[j + 1]),
                    Token::Dirs => {
                        let d = here.is_some() && ((here == Some('/') && next[j + 1]) || d_next);
                        d_next = d;
                        next[j] || d
                    }
                };
            }
            std::mem::swap(&mut row, &mut next);
        }
        next[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, key: &str) -> bool {
        Glob::new(pattern).unwrap().matches(key)
    }

    #[test]
    fn literals_and_single_star() {
        assert!(m("a.jpg", "a.jpg"));
        assert!(!m("a.jpg", "a.jpgx"));
        assert!(!m("a.jpg", "A.jpg"));
        assert!(m("*.jpg", "a.jpg"));
        assert!(m("*.jpg", ".jpg"));
        assert!(!m("*.jpg", "x/a.jpg"));
        assert!(m("org2/*/a.jpg", "org2/photos/a.jpg"));
        assert!(!m("org2/*/a.jpg", "org2/p/q/a.jpg"));
        assert!(m("org2/*", "org2/"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b*", "xxbxxaxx"));
    }

    #[test]
    fn question_mark() {
        assert!(m("?.jpg", "a.jpg"));
        assert!(!m("?.jpg", ".jpg"));
        assert!(!m("?.jpg", "ab.jpg"));
        assert!(!m("a?b", "a/b"));
        assert!(m("?.jpg", "é.jpg"), "one character, not one byte");
    }

    #[test]
    fn double_star_segments() {
        assert!(m("**/*.jpg", "a.jpg"));
        assert!(m("**/*.jpg", "x/a.jpg"));
        assert!(m("**/*.jpg", "x/y/z/a.jpg"));
        assert!(!m("**/*.jpg", "x/a.jpeg"));
        assert!(m("raw/**", "raw/a"));
        assert!(m("raw/**", "raw/a/b/c"));
        assert!(m("raw/**", "raw/"));
        assert!(!m("raw/**", "raw"));
        assert!(!m("raw/**", "rawx/a"));
        assert!(!m("raw/**", "x/raw/a"));
        assert!(m("**/tmp/**", "tmp/a"));
        assert!(m("**/tmp/**", "org2/x/tmp/y/z.jpg"));
        assert!(!m("**/tmp/**", "org2/x/tmpfile/z.jpg"));
        assert!(!m("**/tmp/**", "org2/x/mytmp/z.jpg"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/xb"));
        assert!(m("**", "anything/at/all"));
        assert!(m("***/x", "a/b/x"));
    }

    #[test]
    fn double_star_inside_a_segment() {
        assert!(m("**.jpg", "a/b.jpg"));
        assert!(m("a**b", "a/x/b"));
        assert!(m("a**b", "ab"));
        assert!(m("x/**b/c", "x/y/zb/c"));
        assert!(m("x/**b/c", "x/b/c"));
    }

    #[test]
    fn empty_pattern_rejected() {
        assert!(Glob::new("").is_err());
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let pattern = "*a".repeat(50) + "b";
        let key = "a".repeat(1024);
        assert!(!m(&pattern, &key));
        let pattern = "**/".repeat(40) + "x";
        assert!(!m(&pattern, &"a/".repeat(500)));
    }
}
