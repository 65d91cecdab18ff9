//! Cinder's expression evaluator (`scheduler/evaluator/evaluator.py`), used by the
//! `filter_function` of [`crate::DriverFilter`] and the `goodness_function` of
//! [`crate::GoodnessWeigher`].
//!
//! Grammar, loosest first (as Cinder's pyparsing `operatorPrecedence` table):
//!
//! | Level | Operators |
//! |---|---|
//! | list | `a, b` (only meaningful as the argument of `max` / `min`) |
//! | or | `or` `OR` `\|\|` |
//! | and | `and` `AND` `&&` |
//! | ternary | `cond ? a : b` |
//! | comparison | `<` `<=` `>` `>=` `==` `!=` `<>`, chained like Python (`1 < x < 3`) |
//! | not | `not` `NOT` `!` (prefix; binds looser than arithmetic: `not 1 + 1` is `not 2`) |
//! | additive | `+` `-` |
//! | multiplicative | `*` `/` (always float division; by zero → error) |
//! | sign | unary `+` `-` (`-2 ^ 2` is −4) |
//! | power | `^` (right associative; the exponent cannot start with a sign) |
//! | function | `abs x`, `max(a, b, …)`, `min(a, b, …)` |
//!
//! Operands: integers and decimals (`12`, `1.5`; no exponents, no quoted strings — Cinder
//! supports neither), parentheses, and variables `dict.entry` (letters and `_` only, one
//! dot). A word that is not a variable is run through Python's `float()` (so `inf` and
//! `nan` are numbers, anything else an error). Values are Python's: `and` / `or` return an
//! operand, comparisons and `not` return booleans, booleans count as 0 / 1 in arithmetic.
//!
//! A variable's value goes through Python's `int()` then `float()`, like Cinder's
//! `EvalConstant`: text is parsed as a number (non-numeric text is an error), booleans become
//! 0 / 1, and **a number is truncated toward zero** (Python's `int(45.7)` is 45: Cinder's
//! quirk, kept so filter functions behave as they do in Cinder; literals keep their
//! fraction). What the variables are is the [`Scope`]'s business (see [`PoolScope`]).
//!
//! Deviations from Cinder: `a and b and c` / `a or b or c` use every operand (Cinder's
//! evaluator silently ignores all but the first two), chained ternaries
//! `a ? b : c ? d : e` fold left (Cinder ignores all but the first), `and` / `or` / `not`
//! are whole words only, and arithmetic on a list is an error (Python would concatenate).
//! Nesting deeper than 32 levels is refused rather than overflowing the stack.

use std::collections::BTreeMap;

mod eval;
mod scope;
#[cfg(test)]
mod tests;

pub use scope::PoolScope;

use crate::common::py_float;

/// A value: Python's bool, number (int or float alike), or list (from `,`).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Num(f64),
    List(Vec<Value>),
}

/// A variable's raw value, before Python's `int()` / `float()`.
#[derive(Debug, Clone, PartialEq)]
pub enum Var<'a> {
    Number(f64),
    Boolean(bool),
    Text(std::borrow::Cow<'a, str>),
    /// Present but `None` (Python: a `TypeError` when used).
    Null,
}

/// Where variables come from.
pub trait Scope {
    /// The value of `dict.entry`; `None` when there is no such variable (a `KeyError`).
    fn var(&self, dict: &str, entry: &str) -> Option<Var<'_>>;
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr(Node);

#[derive(Debug, Clone, Copy, PartialEq)]
enum ArOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Num(f64),
    Var(String, String),
    /// A word that is neither a variable nor a number: an error when evaluated.
    Word(String),
    Neg(Box<Node>),
    Not(Box<Node>),
    Pow(Box<Node>, Box<Node>),
    Arith(Box<Node>, Vec<(ArOp, Node)>),
    Cmp(Box<Node>, Vec<(CmpOp, Node)>),
    Ternary(Box<Node>, Vec<(Node, Node)>),
    And(Vec<Node>),
    Or(Vec<Node>),
    List(Vec<Node>),
    Call(String, Box<Node>),
}

const MAX_DEPTH: u32 = 32;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok<'s> {
    Num(f64),
    Word(&'s str),
    And,
    Or,
    Not,
    Sym(&'static str),
}

fn tokenize(src: &str) -> Result<Vec<(usize, Tok<'_>)>, String> {
    const SYMS: [&str; 21] = [
        "&&", "||", "<=", ">=", "==", "!=", "<>", "+", "-", "*", "/", "^", "?", ":", ",", "(", ")",
        "<", ">", "!", "=",
    ];
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j + 1 < b.len() && b[j] == b'.' && b[j + 1].is_ascii_digit() {
                j += 1;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
            }
            let n = src[i..j]
                .parse()
                .map_err(|_| format!("bad number at char {i}"))?;
            out.push((i, Tok::Num(n)));
            i = j;
        } else if c.is_ascii_alphabetic() || c == b'_' || c == b'.' {
            let mut j = i;
            while j < b.len() && (b[j].is_ascii_alphabetic() || b[j] == b'_' || b[j] == b'.') {
                j += 1;
            }
            let tok = match &src[i..j] {
                "and" | "AND" => Tok::And,
                "or" | "OR" => Tok::Or,
                "not" | "NOT" => Tok::Not,
                w => Tok::Word(w),
            };
            out.push((i, tok));
            i = j;
        } else {
            let sym = SYMS.iter().find(|s| src[i..].starts_with(**s));
            match sym {
                // A lone `=` is not an operator in Cinder's grammar either.
                Some(s) if *s != "=" => {
                    out.push((i, Tok::Sym(s)));
                    i += s.len();
                }
                _ => {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(format!("parse error at char {i}: unexpected '{ch}'"));
                }
            }
        }
    }
    Ok(out)
}

struct Parser<'s> {
    toks: Vec<(usize, Tok<'s>)>,
    pos: usize,
    depth: u32,
    end: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> Option<Tok<'s>> {
        self.toks.get(self.pos).map(|t| t.1)
    }

    fn at(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.0)
    }

    fn eat(&mut self, sym: &'static str) -> bool {
        if self.peek() == Some(Tok::Sym(sym)) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn error(&self, expected: &str) -> String {
        match self.toks.get(self.pos) {
            None => format!(
                "parse error at char {}: expected {expected}, found the end",
                self.end
            ),
            Some((at, tok)) => {
                let found = match tok {
                    Tok::Num(n) => kiln_plugin_sdk::format_number(*n),
                    Tok::Word(w) => (*w).to_string(),
                    Tok::And => "and".into(),
                    Tok::Or => "or".into(),
                    Tok::Not => "not".into(),
                    Tok::Sym(s) => (*s).to_string(),
                };
                format!("parse error at char {at}: expected {expected}, found '{found}'")
            }
        }
    }

    fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, String>) -> Result<T, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "parse error at char {}: nested too deeply",
                self.at()
            ));
        }
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn list(&mut self) -> Result<Node, String> {
        let mut items = vec![self.or()?];
        while self.eat(",") {
            items.push(self.or()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::List(items)
        })
    }

    fn or(&mut self) -> Result<Node, String> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(Tok::Or) || self.is_sym("||") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::Or(items)
        })
    }

    fn and(&mut self) -> Result<Node, String> {
        let mut items = vec![self.ternary()?];
        while self.peek() == Some(Tok::And) || self.is_sym("&&") {
            self.pos += 1;
            items.push(self.ternary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::And(items)
        })
    }

    /// Is the next token the symbol `sym` (without consuming it)?
    fn is_sym(&self, sym: &'static str) -> bool {
        self.peek() == Some(Tok::Sym(sym))
    }

    fn ternary(&mut self) -> Result<Node, String> {
        let first = self.comparison()?;
        let mut branches = Vec::new();
        while self.eat("?") {
            let yes = self.comparison()?;
            if !self.eat(":") {
                return Err(self.error("':'"));
            }
            branches.push((yes, self.comparison()?));
        }
        Ok(if branches.is_empty() {
            first
        } else {
            Node::Ternary(Box::new(first), branches)
        })
    }

    fn comparison(&mut self) -> Result<Node, String> {
        let first = self.not()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Some(Tok::Sym("<")) => CmpOp::Lt,
                Some(Tok::Sym("<=")) => CmpOp::Le,
                Some(Tok::Sym(">")) => CmpOp::Gt,
                Some(Tok::Sym(">=")) => CmpOp::Ge,
                Some(Tok::Sym("==")) => CmpOp::Eq,
                Some(Tok::Sym("!=")) | Some(Tok::Sym("<>")) => CmpOp::Ne,
                _ => break,
            };
            self.pos += 1;
            rest.push((op, self.not()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Node::Cmp(Box::new(first), rest)
        })
    }

    fn not(&mut self) -> Result<Node, String> {
        if self.peek() == Some(Tok::Not) || self.is_sym("!") {
            self.pos += 1;
            return self.nested(|p| Ok(Node::Not(Box::new(p.not()?))));
        }
        self.arith(true)
    }

    /// `additive` (`add` = true) or `multiplicative` level.
    fn arith(&mut self, add: bool) -> Result<Node, String> {
        let operand = |p: &mut Self| if add { p.arith(false) } else { p.sign() };
        let first = operand(self)?;
        let mut rest = Vec::new();
        loop {
            let op = match (add, self.peek()) {
                (true, Some(Tok::Sym("+"))) => ArOp::Add,
                (true, Some(Tok::Sym("-"))) => ArOp::Sub,
                (false, Some(Tok::Sym("*"))) => ArOp::Mul,
                (false, Some(Tok::Sym("/"))) => ArOp::Div,
                _ => break,
            };
            self.pos += 1;
            rest.push((op, operand(self)?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Node::Arith(Box::new(first), rest)
        })
    }

    fn sign(&mut self) -> Result<Node, String> {
        if self.eat("-") {
            return self.nested(|p| Ok(Node::Neg(Box::new(p.sign()?))));
        }
        if self.eat("+") {
            // `+x` is `1 * x`: a number, even for a boolean.
            return self.nested(|p| {
                Ok(Node::Arith(
                    Box::new(Node::Num(1.0)),
                    vec![(ArOp::Mul, p.sign()?)],
                ))
            });
        }
        self.power()
    }

    fn power(&mut self) -> Result<Node, String> {
        let base = self.call()?;
        if self.eat("^") {
            return self.nested(|p| Ok(Node::Pow(Box::new(base), Box::new(p.power()?))));
        }
        Ok(base)
    }

    fn call(&mut self) -> Result<Node, String> {
        if let Some(Tok::Word(name)) = self.peek() {
            let starts_operand = matches!(
                self.toks.get(self.pos + 1).map(|t| t.1),
                Some(Tok::Num(_) | Tok::Word(_) | Tok::Sym("("))
            );
            if starts_operand {
                self.pos += 1;
                return self.nested(|p| Ok(Node::Call(name.to_string(), Box::new(p.call()?))));
            }
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Node, String> {
        match self.peek() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Node::Num(n))
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                Ok(word(w))
            }
            Some(Tok::Sym("(")) => {
                self.pos += 1;
                let inner = self.nested(Self::list)?;
                if !self.eat(")") {
                    return Err(self.error("')'"));
                }
                Ok(inner)
            }
            _ => Err(self.error("a number, a variable or '('")),
        }
    }
}

/// A word: a variable `dict.entry`, else Python's `float()` of it.
fn word(w: &str) -> Node {
    if let Some((dict, entry)) = w.split_once('.') {
        let valid = |s: &str| !s.is_empty() && !s.contains('.');
        if valid(dict) && valid(entry) {
            return Node::Var(dict.into(), entry.into());
        }
    }
    match py_float(w) {
        Some(n) => Node::Num(n),
        None => Node::Word(w.into()),
    }
}

/// Parse `src`.
pub fn parse(src: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
        depth: 0,
        end: src.len(),
    };
    let node = p.list()?;
    if p.pos < p.toks.len() {
        return Err(p.error("an operator or the end"));
    }
    Ok(Expr(node))
}

/// Parsed expressions by source text, so pools sharing a function parse it once per request.
#[derive(Default)]
pub(crate) struct ExprCache<'s> {
    parsed: BTreeMap<&'s str, Result<Expr, String>>,
}

impl<'s> ExprCache<'s> {
    pub(crate) fn get(&mut self, src: &'s str) -> &Result<Expr, String> {
        self.parsed.entry(src).or_insert_with(|| parse(src))
    }
}
