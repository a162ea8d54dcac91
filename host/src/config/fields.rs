//! [`FieldReader`]: reads the fields of one JSON object of the config, each getter naming
//! the field in its problem (`customers[2] (org3): plugin.timeoutMs: 0 is not allowed; …`),
//! so a new field and all its error messages take one line in the parser.
//!
//! The fields an object may have are the ones its parser reads: the reader notes every name
//! it is asked for, and [`FieldReader::finish`] reports each field of the object that was
//! never asked for as unknown, with a "did you mean" among those that were. There is no
//! separate list of field names to keep in step with the parser.

use std::cell::RefCell;
use std::ops::RangeInclusive;

use serde_json::{Map, Value};

use super::kind;

/// The fields of one object, and where their problems go.
pub(crate) struct FieldReader<'a, 'p> {
    fields: &'a Map<String, Value>,
    /// What a problem is about, up to the field name: `customers[2] (org3): ` or
    /// `customers[2] (org3): plugin.`.
    context: String,
    problems: &'p mut Vec<String>,
    first_problem: usize,
    /// Where the unknown-field problems go, among `problems`: first of those found since
    /// the reader was made, or since its context was last set.
    unknown_at: usize,
    /// Every field name asked for so far, in the order first asked: the object's known fields.
    read: RefCell<Vec<String>>,
}

impl<'a, 'p> FieldReader<'a, 'p> {
    /// A reader of `fields` whose problems start with `context` and go to `problems`.
    pub(crate) fn new(
        fields: &'a Map<String, Value>,
        context: impl Into<String>,
        problems: &'p mut Vec<String>,
    ) -> Self {
        let first_problem = problems.len();
        FieldReader {
            fields,
            context: context.into(),
            problems,
            first_problem,
            unknown_at: first_problem,
            read: RefCell::new(Vec::new()),
        }
    }

    /// From now on, problems start with `context` (once the object's name is known); unknown
    /// fields are listed before the problems found after this.
    pub(crate) fn set_context(&mut self, context: impl Into<String>) {
        self.context = context.into();
        self.unknown_at = self.problems.len();
    }

    /// Done reading: reports every field of the object that no getter asked for, with a "did
    /// you mean" when an asked-for name is close (else the list of them), and returns whether
    /// no problem was recorded since the reader was made.
    pub(crate) fn finish(self) -> bool {
        let read = self.read.into_inner();
        let known: Vec<&str> = read.iter().map(String::as_str).collect();
        // `customers[0] (a): plugin.` names fields; unknown ones are "… plugin: unknown field".
        let context = match self.context.strip_suffix('.') {
            Some(object) => format!("{object}: "),
            None => self.context.clone(),
        };
        let unknown: Vec<String> = self
            .fields
            .keys()
            .filter(|name| !known.contains(&name.as_str()))
            .map(|name| {
                let hint = closest(name, &known)
                    .map(|k| format!("; did you mean {k:?}?"))
                    .unwrap_or_else(|| format!("; expected one of {}", known.join(", ")));
                format!("{context}unknown field {name:?}{hint}")
            })
            .collect();
        self.problems.splice(self.unknown_at..self.unknown_at, unknown);
        self.problems.len() == self.first_problem
    }

    /// Notes `name` as one of the object's fields.
    fn ask(&self, name: &str) {
        let mut read = self.read.borrow_mut();
        if !read.iter().any(|r| r == name) {
            read.push(name.to_string());
        }
    }

    /// Records a problem with field `name`: `rest` follows the name (`": expected …"`,
    /// `" is missing"`).
    pub(crate) fn problem(&mut self, name: &str, rest: impl std::fmt::Display) {
        self.problems.push(format!("{}{name}{rest}", self.context));
    }

    /// Where problems go, for a nested object's own reader.
    pub(crate) fn problems(&mut self) -> &mut Vec<String> {
        self.problems
    }

    /// The raw value of `name`, when present.
    pub(crate) fn value(&self, name: &str) -> Option<&'a Value> {
        self.ask(name);
        self.fields.get(name)
    }

    /// A string field; absent is `None`, another type is a problem naming `expected`.
    pub(crate) fn string(&mut self, name: &str, expected: &str) -> Option<&'a str> {
        match self.value(name)? {
            Value::String(s) => Some(s),
            other => {
                self.problem(name, format!(": expected {expected}, got {}", kind(other)));
                None
            }
        }
    }

    /// A string field that must be there: absent is the problem `name` + `missing`.
    pub(crate) fn required_string(&mut self, name: &str, expected: &str, missing: &str) -> Option<&'a str> {
        if self.value(name).is_none() {
            self.problem(name, missing);
            return None;
        }
        self.string(name, expected)
    }

    /// A whole number in `range`, `default` when absent (or wrong, after the problem).
    pub(crate) fn whole_number(&mut self, name: &str, default: u64, range: RangeInclusive<u64>) -> u64 {
        let (min, max) = (*range.start(), *range.end());
        match self.value(name) {
            None => default,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) if range.contains(&v) => v,
                Some(v) if v > max => {
                    self.problem(name, format!(": {v} is too large; expected {min} to {max}"));
                    default
                }
                _ => {
                    self.problem(
                        name,
                        format!(": {n} is not allowed; expected a whole number {min} to {max}"),
                    );
                    default
                }
            },
            Some(other) => {
                self.problem(
                    name,
                    format!(": expected a whole number {min} to {max}, got {}", kind(other)),
                );
                default
            }
        }
    }

    /// `true` or `false`, `default` when absent (or wrong, after the problem).
    pub(crate) fn boolean(&mut self, name: &str, default: bool) -> bool {
        match self.value(name) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(name, format!(": expected true or false, got {}", kind(other)));
                default
            }
        }
    }

    /// One of `choices` by its spelling, `default` when absent (or wrong, after the problem).
    pub(crate) fn choice<T: Copy>(&mut self, name: &str, default: T, choices: &[(&str, T)]) -> T {
        let spellings: Vec<String> = choices.iter().map(|(s, _)| format!("{s:?}")).collect();
        let expected = match spellings.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        };
        match self.string(name, &expected) {
            None => default,
            Some(s) => match choices.iter().find(|(spelling, _)| *spelling == s) {
                Some((_, value)) => *value,
                None => {
                    self.problem(name, format!(" {s:?} is not valid; expected {expected}"));
                    default
                }
            },
        }
    }
}

/// The known name nearest to `name`, when it is a plausible typo of it.
pub(crate) fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= k.len().div_ceil(2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1)
                .min(row[j] + 1)
                .min(diag + usize::from(ca != *cb));
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `f` returns, and the problems once the reader finished (unknown fields included).
    fn read<T>(json: &str, f: impl FnOnce(&mut FieldReader) -> T) -> (T, Vec<String>) {
        let (out, _, problems) = read_and_finish(json, f);
        (out, problems)
    }

    /// [`read`], and whether the reader finished clean.
    fn read_and_finish<T>(json: &str, f: impl FnOnce(&mut FieldReader) -> T) -> (T, bool, Vec<String>) {
        let value: Value = serde_json::from_str(json).unwrap();
        let mut problems = Vec::new();
        let mut reader = FieldReader::new(
            value.as_object().unwrap(),
            "customers[0] (a): plugin.",
            &mut problems,
        );
        let out = f(&mut reader);
        let clean = reader.finish();
        (out, clean, problems)
    }

    #[test]
    fn numbers_name_the_field_and_the_range() {
        assert_eq!(read(r#"{}"#, |r| r.whole_number("n", 7, 1..=10)), (7, vec![]));
        assert_eq!(
            read(r#"{"n":3}"#, |r| r.whole_number("n", 7, 1..=10)),
            (3, vec![])
        );
        assert_eq!(
            read(r#"{"n":11}"#, |r| r.whole_number("n", 7, 1..=10)).1,
            ["customers[0] (a): plugin.n: 11 is too large; expected 1 to 10"]
        );
        assert_eq!(
            read(r#"{"n":0}"#, |r| r.whole_number("n", 7, 1..=10)).1,
            ["customers[0] (a): plugin.n: 0 is not allowed; expected a whole number 1 to 10"]
        );
        assert_eq!(
            read(r#"{"n":"3"}"#, |r| r.whole_number("n", 7, 1..=10)).1,
            ["customers[0] (a): plugin.n: expected a whole number 1 to 10, got a string"]
        );
    }

    #[test]
    fn choices_list_every_spelling() {
        let choices = [("fail", 1), ("skip", 2), ("default", 3)];
        assert_eq!(
            read(r#"{"c":"skip"}"#, |r| r.choice("c", 0, &choices)),
            (2, vec![])
        );
        assert_eq!(
            read(r#"{"c":"later"}"#, |r| r.choice("c", 0, &choices)),
            (
                0,
                vec![r#"customers[0] (a): plugin.c "later" is not valid; expected "fail", "skip" or "default""#.to_string()]
            )
        );
    }

    #[test]
    fn unknown_fields_are_named_on_the_object() {
        let ((), clean, problems) = read_and_finish(r#"{"sourse":"x"}"#, |r| {
            r.string("source", "a string");
            r.string("sha256", "a string");
        });
        assert!(!clean);
        assert_eq!(
            problems,
            [r#"customers[0] (a): plugin: unknown field "sourse"; did you mean "source"?"#]
        );
    }

    #[test]
    fn the_known_fields_are_those_asked_for_in_that_order() {
        let ((), clean, problems) = read_and_finish(r#"{"a":1,"n":2,"zzzzzz":3}"#, |r| {
            r.whole_number("n", 0, 0..=9);
            r.value("a");
            // Asked for twice, listed once; asked for and absent, still known.
            r.whole_number("n", 0, 0..=9);
            r.boolean("b", false);
        });
        assert!(!clean);
        assert_eq!(
            problems,
            [r#"customers[0] (a): plugin: unknown field "zzzzzz"; expected one of n, a, b"#]
        );
    }

    #[test]
    fn unknown_fields_come_first_among_the_problems_after_the_context() {
        let value: Value = serde_json::from_str(r#"{"nn":1,"m":"x"}"#).unwrap();
        let mut problems = vec!["before".to_string()];
        let mut r = FieldReader::new(value.as_object().unwrap(), "o: ", &mut problems);
        r.problem("name", " is bad");
        r.set_context("o (named): ");
        r.whole_number("m", 0, 0..=9);
        r.string("n", "a string");
        assert!(!r.finish());
        assert_eq!(
            problems,
            [
                "before",
                "o: name is bad",
                r#"o (named): unknown field "nn"; did you mean "n"?"#,
                "o (named): m: expected a whole number 0 to 9, got a string",
            ]
        );
    }

    #[test]
    fn required_strings() {
        assert_eq!(
            read(r#"{}"#, |r| r
                .required_string("s", "a string", " is missing")
                .map(str::to_string))
            .1,
            ["customers[0] (a): plugin.s is missing"]
        );
        assert_eq!(
            read(r#"{"s":1}"#, |r| r
                .required_string("s", "a string", " is missing")
                .map(str::to_string))
            .1,
            ["customers[0] (a): plugin.s: expected a string, got a number"]
        );
    }
}
