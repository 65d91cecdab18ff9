//! Cinder's JSON query grammar (`json_filter.py`), compiled once per request and evaluated
//! per pool.
//!
//! A query is a JSON list `[op, arg, …]`; `op` is one of `=`, `<`, `>`, `in`, `<=`, `>=`,
//! `not`, `or`, `and`. An argument is a nested query (any JSON list), a literal, or a
//! `$variable` string. Comparisons are true when the first argument compares true with every
//! other one (fewer than two arguments: false); `in` when the first equals one of the rest;
//! `not` yields the list of negated arguments; `or` / `and` are Python's `any` / `all`.
//! Arguments that resolve to nothing (JSON null, an empty string, an unknown variable) are
//! dropped before the operator sees them. A top-level list result passes when any element is
//! true. A falsy query (`[]`, `{}`, `null`, `""`, `0`, `false`) passes every pool.
//!
//! Variables: `$name` is the pool attribute Cinder's `BackendState` would have: `host` and
//! `backend_id` are the pool's full name `host@backend#pool` (Cinder's pool-level host),
//! `cluster_name` is absent, anything else is [`Pool::capability`] (so `$free_capacity_gb`,
//! `$pool_name`, `$vendor_name`…). `$capabilities.x` is `Pool::capability("x")`;
//! `$service.host`, `$service.availability_zone`, `$service.disabled` (always false: the host
//! only offers pools of enabled services) and `$service.frozen` (false) mirror the service
//! record. Values keep their Python types, so comparing a string with a number is an error
//! (Python's `TypeError`) while `=` between them is simply false.
//!
//! Deviations (all where Cinder would raise and fail the whole request; here the error
//! becomes the reject reason of each pool): an unknown operator, a non-list top-level query,
//! and ordering between incomparable types. Nested capability keys are flat in Kiln:
//! `$capabilities.a.b` looks up a capability literally named `a.b`. `$name.field` on a
//! pool attribute that is not a dictionary is an error (Python's `AttributeError`).

use std::borrow::Cow;
use std::cmp::Ordering;

use kiln_plugin_sdk::Pool;
use serde_json::{Map, Value};

use crate::common::{capability, CapRef};

/// A compiled query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Query {
    /// A falsy query: every pool passes.
    Always,
    Node(Node),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cmd {
    Eq,
    Lt,
    Gt,
    In,
    Le,
    Ge,
    Not,
    Or,
    And,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Cmd(Cmd, Vec<Node>),
    /// A nested empty list: true.
    Empty,
    Bool(bool),
    Num(f64),
    Str(String),
    Dict(Map<String, Value>),
    Var(Var),
}

/// A `$variable`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Var {
    /// `$name`, with `more` when a `.field` follows.
    Attr { name: String, more: bool },
    /// `$capabilities.key`.
    Capability(String),
    /// `$service.field`.
    Service(String),
}

/// A value during evaluation (Python's types).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum JVal<'a> {
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    /// The result of `not`.
    Bools(Vec<bool>),
    Dict(&'a Map<String, Value>),
    /// A dictionary of the pool (`$capabilities`, `$service`).
    Opaque,
}

/// Parse and compile the text of a `query` hint.
pub(crate) fn compile(text: &str) -> Result<Query, String> {
    if text.is_empty() {
        return Ok(Query::Always);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    match value {
        Value::Array(items) if !items.is_empty() => compile_list(&items).map(Query::Node),
        v if !truthy_json(&v) => Ok(Query::Always),
        _ => Err("the query must be a JSON list like [\">=\", \"$free_capacity_gb\", 100]".into()),
    }
}

fn truthy_json(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn compile_list(items: &[Value]) -> Result<Node, String> {
    let Some((head, rest)) = items.split_first() else {
        return Ok(Node::Empty);
    };
    let cmd = match head.as_str() {
        Some("=") => Cmd::Eq,
        Some("<") => Cmd::Lt,
        Some(">") => Cmd::Gt,
        Some("in") => Cmd::In,
        Some("<=") => Cmd::Le,
        Some(">=") => Cmd::Ge,
        Some("not") => Cmd::Not,
        Some("or") => Cmd::Or,
        Some("and") => Cmd::And,
        _ => return Err(format!("unknown operator {head}")),
    };
    let mut args = Vec::with_capacity(rest.len());
    for arg in rest {
        match arg {
            Value::Array(items) => args.push(compile_list(items)?),
            Value::String(s) if s.is_empty() => {}
            Value::String(s) => args.push(match s.strip_prefix('$') {
                Some(path) => Node::Var(compile_var(path)),
                None => Node::Str(s.clone()),
            }),
            Value::Null => {}
            Value::Bool(b) => args.push(Node::Bool(*b)),
            Value::Number(n) => args.push(Node::Num(n.as_f64().unwrap_or(f64::NAN))),
            Value::Object(o) => args.push(Node::Dict(o.clone())),
        }
    }
    Ok(Node::Cmd(cmd, args))
}

fn compile_var(path: &str) -> Var {
    let (name, rest) = match path.split_once('.') {
        Some((n, r)) => (n, Some(r)),
        None => (path, None),
    };
    match (name, rest) {
        ("capabilities", Some(key)) => Var::Capability(key.to_string()),
        ("service", Some(field)) => Var::Service(field.to_string()),
        _ => Var::Attr {
            name: name.to_string(),
            more: rest.is_some(),
        },
    }
}

fn cap_val(c: CapRef<'_>) -> JVal<'_> {
    match c {
        CapRef::Text(s) => JVal::Str(Cow::Borrowed(s)),
        CapRef::Number(n) => JVal::Num(n),
        CapRef::Boolean(b) => JVal::Bool(b),
    }
}

fn resolve<'a>(var: &Var, pool: &'a Pool) -> Result<Option<JVal<'a>>, String> {
    Ok(match var {
        Var::Capability(key) => capability(pool, key).map(cap_val),
        Var::Service(field) => match field.as_str() {
            "host" => Some(JVal::Str(Cow::Borrowed(&pool.host))),
            "availability_zone" => Some(JVal::Str(Cow::Borrowed(&pool.availability_zone))),
            "disabled" | "frozen" => Some(JVal::Bool(false)),
            _ => None,
        },
        Var::Attr { name, more } => {
            let value = match name.as_str() {
                "host" | "backend_id" => Some(JVal::Str(Cow::Owned(pool.name()))),
                "capabilities" | "service" => Some(JVal::Opaque),
                "cluster_name" => None,
                _ => capability(pool, name).map(cap_val),
            };
            match (value, more) {
                (Some(_), true) => return Err(format!("${name} has no fields")),
                (_, true) => None,
                (v, false) => v,
            }
        }
    })
}

/// Python truthiness.
fn truthy(v: &JVal<'_>) -> bool {
    match v {
        JVal::Bool(b) => *b,
        JVal::Num(n) => *n != 0.0,
        JVal::Str(s) => !s.is_empty(),
        JVal::Bools(v) => !v.is_empty(),
        JVal::Dict(d) => !d.is_empty(),
        JVal::Opaque => true,
    }
}

fn as_num(v: &JVal<'_>) -> Option<f64> {
    match v {
        JVal::Num(n) => Some(*n),
        JVal::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Python `==`.
fn py_eq(a: &JVal<'_>, b: &JVal<'_>) -> bool {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return x == y;
    }
    match (a, b) {
        (JVal::Str(x), JVal::Str(y)) => x == y,
        (JVal::Bools(x), JVal::Bools(y)) => x == y,
        (JVal::Dict(x), JVal::Dict(y)) => x == y,
        _ => false,
    }
}

fn type_name(v: &JVal<'_>) -> &'static str {
    match v {
        JVal::Bool(_) => "boolean",
        JVal::Num(_) => "number",
        JVal::Str(_) => "string",
        JVal::Bools(_) => "list",
        JVal::Dict(_) | JVal::Opaque => "dictionary",
    }
}

/// Python ordering; `Ok(None)` for NaN (every comparison false).
fn py_cmp(a: &JVal<'_>, b: &JVal<'_>) -> Result<Option<Ordering>, String> {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return Ok(x.partial_cmp(&y));
    }
    match (a, b) {
        (JVal::Str(x), JVal::Str(y)) => Ok(Some(x.cmp(y))),
        (JVal::Bools(x), JVal::Bools(y)) => Ok(Some(x.cmp(y))),
        _ => Err(format!(
            "cannot order a {} against a {}",
            type_name(a),
            type_name(b)
        )),
    }
}

fn compare(cmd: Cmd, a: &JVal<'_>, b: &JVal<'_>) -> Result<bool, String> {
    if cmd == Cmd::Eq {
        return Ok(py_eq(a, b));
    }
    let Some(ord) = py_cmp(a, b)? else {
        return Ok(false);
    };
    Ok(match cmd {
        Cmd::Lt => ord == Ordering::Less,
        Cmd::Gt => ord == Ordering::Greater,
        Cmd::Le => ord != Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}

fn eval<'a>(node: &'a Node, pool: &'a Pool) -> Result<Option<JVal<'a>>, String> {
    Ok(Some(match node {
        Node::Empty => JVal::Bool(true),
        Node::Bool(b) => JVal::Bool(*b),
        Node::Num(n) => JVal::Num(*n),
        Node::Str(s) => JVal::Str(Cow::Borrowed(s)),
        Node::Dict(d) => JVal::Dict(d),
        Node::Var(v) => return resolve(v, pool),
        Node::Cmd(cmd, arg_nodes) => {
            let mut args = Vec::with_capacity(arg_nodes.len());
            for a in arg_nodes {
                if let Some(v) = eval(a, pool)? {
                    args.push(v);
                }
            }
            match cmd {
                Cmd::Not => JVal::Bools(args.iter().map(|a| !truthy(a)).collect()),
                Cmd::Or => JVal::Bool(args.iter().any(truthy)),
                Cmd::And => JVal::Bool(args.iter().all(truthy)),
                _ if args.len() < 2 => JVal::Bool(false),
                Cmd::In => JVal::Bool(args[1..].iter().any(|x| py_eq(&args[0], x))),
                _ => {
                    // Python evaluates every comparison, so a type error anywhere surfaces.
                    let mut all = true;
                    for x in &args[1..] {
                        all &= compare(*cmd, &args[0], x)?;
                    }
                    JVal::Bool(all)
                }
            }
        }
    }))
}

impl Query {
    /// Does `pool` satisfy the query? `Err` is the evaluation error.
    pub(crate) fn passes(&self, pool: &Pool) -> Result<bool, String> {
        let Query::Node(node) = self else {
            return Ok(true);
        };
        Ok(match eval(node, pool)? {
            Some(JVal::Bools(list)) => list.iter().any(|b| *b),
            Some(v) => truthy(&v),
            None => false,
        })
    }
}

#[cfg(test)]
mod tests;
