//! Extra-spec requirement matching: Cinder's `extra_specs_ops.py`, parsed once per
//! request and then matched against each pool's capability value.
//!
//! A requirement is the extra-spec value, split on whitespace; when its first word is an
//! operator the second word is the operand:
//!
//! | Operator | Meaning (x = capability, y = operand) |
//! |---|---|
//! | `=` | `float(x) >= float(y)` |
//! | `==` `!=` `>=` `<=` | numeric comparison after `float()` |
//! | `s==` `s!=` `s<` `s<=` `s>` `s>=` | string comparison |
//! | `<in>` | `y` is a substring of `x` |
//! | `<is>` | `bool_from_string(x) is bool_from_string(y)` |
//! | `<or> a <or> b …` | `x` equals one of the alternatives |
//! | none | `x == requirement` (the whole string) |
//!
//! Python's typing is mirrored exactly, with [`CapValue`](kiln_plugin_sdk::CapValue) taken
//! as the Python value a Cinder driver reports: `Text` is a `str`, `Number` an `int`/`float`,
//! `Boolean` a `bool`. So plain equality, `<or>` and `s==` only ever match `Text` (Python's
//! `5 == "5"` is False; `s!=` is therefore True for non-text), `float()` accepts numbers,
//! booleans (1.0 / 0.0) and numeric text, and `<is>` reads a `Number` as Python's
//! `str()` of it would (only 1 is true).
//!
//! Deviations: where Python raises an uncaught `TypeError` (`<in>` or `s<`-style ordering on
//! a non-string, which makes Cinder's whole scheduling request fail) and where it raises
//! `IndexError` (`<or>` with no alternative), the pool is rejected with that reason instead.
//! A `float()` that fails (`ValueError`) is a plain mismatch, as in Cinder.

use crate::common::{py_float, CapRef};

/// Numeric operators (both sides go through Python's `float()`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NumOp {
    /// `=`: at least.
    AtLeast,
    Eq,
    Ne,
    Ge,
    Le,
}

/// String operators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum StrOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A parsed extra-spec requirement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Requirement<'a> {
    /// No operator: the capability must be the text `requirement` exactly.
    Equals(&'a str),
    /// `<or>`: the alternatives Cinder compares (every other word after the operator).
    Or(Vec<&'a str>),
    /// `<or>` and nothing else (Python: `IndexError`).
    EmptyOr,
    /// An operator without operand: never matches.
    NoOperand,
    /// A numeric operator; `None` when the operand is not a number (never matches).
    Numeric(NumOp, Option<f64>),
    In(&'a str),
    Is(bool),
    Str(StrOp, &'a str),
}

/// Parse an extra-spec value.
pub(crate) fn parse(req: &str) -> Requirement<'_> {
    let mut words = req.split_whitespace();
    let Some(op) = words.next() else {
        return Requirement::Equals(req);
    };
    let operand = words.clone().next();
    let numeric = |o| operand.map(|w| Requirement::Numeric(o, py_float(w)));
    let parsed = match op {
        "<or>" => {
            let alternatives: Vec<&str> = words.step_by(2).collect();
            return if alternatives.is_empty() {
                Requirement::EmptyOr
            } else {
                Requirement::Or(alternatives)
            };
        }
        "=" => numeric(NumOp::AtLeast),
        "==" => numeric(NumOp::Eq),
        "!=" => numeric(NumOp::Ne),
        ">=" => numeric(NumOp::Ge),
        "<=" => numeric(NumOp::Le),
        "<in>" => operand.map(Requirement::In),
        "<is>" => operand.map(|w| Requirement::Is(bool_from_str(w))),
        "s==" => operand.map(|w| Requirement::Str(StrOp::Eq, w)),
        "s!=" => operand.map(|w| Requirement::Str(StrOp::Ne, w)),
        "s<" => operand.map(|w| Requirement::Str(StrOp::Lt, w)),
        "s<=" => operand.map(|w| Requirement::Str(StrOp::Le, w)),
        "s>" => operand.map(|w| Requirement::Str(StrOp::Gt, w)),
        "s>=" => operand.map(|w| Requirement::Str(StrOp::Ge, w)),
        _ => return Requirement::Equals(req),
    };
    parsed.unwrap_or(Requirement::NoOperand)
}

/// oslo's `strutils.bool_from_string` (not strict, default False) for a string.
fn bool_from_str(s: &str) -> bool {
    let t = s.trim();
    ["1", "t", "true", "on", "y", "yes"]
        .iter()
        .any(|w| t.eq_ignore_ascii_case(w))
}

/// Python's `float(x)` for a capability value.
fn float_of(v: CapRef<'_>) -> Option<f64> {
    match v {
        CapRef::Text(s) => py_float(s),
        CapRef::Number(n) => Some(n),
        CapRef::Boolean(b) => Some(if b { 1.0 } else { 0.0 }),
    }
}

impl Requirement<'_> {
    /// Does `value` satisfy the requirement? `Err` names the Python error Cinder would hit.
    pub(crate) fn matches(&self, value: CapRef<'_>) -> Result<bool, &'static str> {
        let text = match value {
            CapRef::Text(s) => Some(s),
            _ => None,
        };
        Ok(match self {
            Requirement::Equals(req) => text == Some(*req),
            Requirement::Or(alternatives) => text.is_some_and(|t| alternatives.contains(&t)),
            Requirement::EmptyOr => return Err("'<or>' needs at least one alternative"),
            Requirement::NoOperand => false,
            Requirement::Numeric(op, operand) => {
                let (Some(x), Some(y)) = (float_of(value), *operand) else {
                    return Ok(false);
                };
                match op {
                    NumOp::AtLeast | NumOp::Ge => x >= y,
                    NumOp::Eq => x == y,
                    NumOp::Ne => x != y,
                    NumOp::Le => x <= y,
                }
            }
            Requirement::In(needle) => match text {
                Some(t) => t.contains(needle),
                None => return Err("'<in>' needs a text capability"),
            },
            Requirement::Is(want) => {
                let got = match value {
                    CapRef::Boolean(b) => b,
                    CapRef::Text(s) => bool_from_str(s),
                    // Python's str() of the number, then bool_from_string: only "1" is true.
                    CapRef::Number(n) => n == 1.0,
                };
                got == *want
            }
            Requirement::Str(op, y) => match (op, text) {
                (StrOp::Eq, t) => t == Some(*y),
                (StrOp::Ne, t) => t != Some(*y),
                (_, None) => return Err("string ordering needs a text capability"),
                (StrOp::Lt, Some(x)) => x < *y,
                (StrOp::Le, Some(x)) => x <= *y,
                (StrOp::Gt, Some(x)) => x > *y,
                (StrOp::Ge, Some(x)) => x >= *y,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(value: CapRef<'_>, req: &str) -> bool {
        parse(req).matches(value).unwrap_or(false)
    }

    fn t(s: &str) -> CapRef<'_> {
        CapRef::Text(s)
    }

    #[test]
    fn unknown_operators_compare_the_whole_string() {
        assert!(!m(t("4"), "> 2")); // test_extra_specs_fails_with_bogus_ops
        assert!(m(t("> 2"), "> 2"));
    }

    #[test]
    fn plain_values_match_by_string_equality() {
        // test_extra_specs_matches_simple
        assert!(m(t("1"), "1"));
        assert!(!m(t(""), "1"));
        assert!(!m(t("3"), "1"));
        assert!(!m(t("222"), "2"));
        assert!(m(t(""), ""));
    }

    #[test]
    fn equals_sign_means_at_least() {
        // test_extra_specs_matches_with_op_eq
        assert!(m(t("123"), "= 123"));
        assert!(m(t("124"), "= 123"));
        assert!(!m(t("34"), "= 234"));
        assert!(!m(t("34"), "="));
    }

    #[test]
    fn numeric_comparisons() {
        // test_extra_specs_matches_with_op_not_eq
        assert!(m(t("2"), "<= 10"));
        assert!(!m(t("3"), "<= 2"));
        assert!(m(t("3"), ">= 1"));
        assert!(!m(t("2"), ">= 3"));
        assert!(m(t("2.0"), "== 2"));
        assert!(m(t("2"), "!= 3"));
        assert!(m(CapRef::Number(10.0), ">= 2"));
        assert!(m(CapRef::Boolean(true), "== 1"));
        assert!(!m(t("abc"), ">= 1"), "ValueError is a mismatch");
        assert!(!m(t("5"), ">= abc"));
    }

    #[test]
    fn string_equality_operators() {
        // test_extra_specs_matches_with_op_seq
        assert!(m(t("123"), "s== 123"));
        assert!(!m(t("1234"), "s== 123"));
        assert!(m(t("1234"), "s!= 123"));
        assert!(!m(t("123"), "s!= 123"));
    }

    #[test]
    fn string_ordering_is_lexicographic() {
        // test_extra_specs_fails_with_op_not_seq
        assert!(!m(t("1000"), "s>= 234"));
        assert!(!m(t("1234"), "s<= 1000"));
        assert!(!m(t("2"), "s< 12"));
        assert!(!m(t("12"), "s> 2"));
        assert!(m(t("abc"), "s< abd"));
    }

    #[test]
    fn in_operator_is_a_substring_test() {
        // test_extra_specs_matches_with_op_in
        assert!(m(t("12311321"), "<in> 11"));
        assert!(m(t("12311321"), "<in> 12311321"));
        assert!(m(t("12311321"), "<in> 12311321 <in>"));
        assert!(!m(t("12310321"), "<in> 11"));
        assert!(!m(t("12310321"), "<in> 11 <in>"));
    }

    #[test]
    fn is_operator_compares_booleans() {
        // test_extra_specs_matches_with_op_is
        assert!(m(CapRef::Boolean(true), "<is> True"));
        assert!(m(CapRef::Boolean(false), "<is> False"));
        assert!(m(CapRef::Boolean(false), "<is> Nonsense"));
        assert!(!m(CapRef::Boolean(true), "<is> False"));
        assert!(!m(CapRef::Boolean(false), "<is> True"));
        assert!(m(t("yes"), "<is> true"));
        assert!(m(CapRef::Number(1.0), "<is> True"));
        assert!(!m(CapRef::Number(2.0), "<is> True"));
    }

    #[test]
    fn or_operator_matches_any_alternative() {
        // test_extra_specs_matches_with_op_or
        assert!(m(t("12"), "<or> 11 <or> 12"));
        assert!(m(t("12"), "<or> 11 <or> 12 <or>"));
        assert!(!m(t("13"), "<or> 11 <or> 12"));
        assert!(!m(t("13"), "<or> 11 <or> 12 <or>"));
        // Cinder skips every other word without checking it is "<or>".
        assert!(m(t("c"), "<or> a b c"));
        assert!(!m(t("b"), "<or> a b c"));
    }

    #[test]
    fn python_typing_of_non_text_capabilities() {
        // Python: 10 == "10" is False; "10" != 10 is True.
        assert!(!m(CapRef::Number(10.0), "10"));
        assert!(!m(CapRef::Boolean(true), "True"));
        assert!(!m(CapRef::Number(10.0), "<or> 10 <or> 11"));
        assert!(!m(CapRef::Number(10.0), "s== 10"));
        assert!(m(CapRef::Number(10.0), "s!= 10"));
    }

    #[test]
    fn python_type_errors_are_reported() {
        assert!(parse("<in> 1").matches(CapRef::Number(10.0)).is_err());
        assert!(parse("s< 1").matches(CapRef::Boolean(true)).is_err());
        assert!(parse("<or>").matches(t("x")).is_err());
    }
}
