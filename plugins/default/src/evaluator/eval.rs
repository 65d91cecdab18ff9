//! Evaluation of a parsed [`Expr`] with Python's semantics.

use std::cmp::Ordering;

use super::{ArOp, CmpOp, Expr, Node, Scope, Value, Var};
use crate::common::py_float;

impl Expr {
    /// Evaluate with variables from `scope`. `Err` is the error Cinder would raise.
    pub fn eval(&self, scope: &dyn Scope) -> Result<Value, String> {
        eval(&self.0, scope)
    }
}

impl Value {
    /// Python truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Bool(b) => *b,
            Value::Num(n) => *n != 0.0,
            Value::List(l) => !l.is_empty(),
        }
    }
}

fn num(v: &Value) -> Result<f64, String> {
    match v {
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::Num(n) => Ok(*n),
        Value::List(_) => Err("a list (a, b) can only be the argument of max or min".into()),
    }
}

/// Python's `int()` then `float()` of a variable's value (Cinder's `EvalConstant`).
fn var_number(v: Var<'_>, dict: &str, entry: &str) -> Result<f64, String> {
    match v {
        Var::Number(n) if n.is_nan() => Ok(n),
        Var::Number(n) if n.is_infinite() => Err(format!("{dict}.{entry} is infinite")),
        Var::Number(n) => Ok(n.trunc()),
        Var::Boolean(b) => Ok(f64::from(u8::from(b))),
        Var::Text(s) => {
            py_float(&s).ok_or_else(|| format!("{dict}.{entry} is '{s}', not a number"))
        }
        Var::Null => Err(format!("{dict}.{entry} has no value")),
    }
}

fn eval(node: &Node, scope: &dyn Scope) -> Result<Value, String> {
    Ok(match node {
        Node::Num(n) => Value::Num(*n),
        Node::Var(dict, entry) => match scope.var(dict, entry) {
            Some(v) => Value::Num(var_number(v, dict, entry)?),
            None => return Err(format!("unknown variable {dict}.{entry}")),
        },
        Node::Word(w) => {
            return Err(format!(
                "'{w}' is neither a number nor a variable dict.name"
            ))
        }
        Node::Neg(n) => Value::Num(-num(&eval(n, scope)?)?),
        Node::Not(n) => Value::Bool(!eval(n, scope)?.truthy()),
        Node::Pow(a, b) => Value::Num(pow(num(&eval(a, scope)?)?, num(&eval(b, scope)?)?)?),
        Node::Arith(first, rest) => {
            let mut acc = eval(first, scope)?;
            for (op, n) in rest {
                let (x, y) = (num(&acc)?, num(&eval(n, scope)?)?);
                acc = Value::Num(match op {
                    ArOp::Add => x + y,
                    ArOp::Sub => x - y,
                    ArOp::Mul => x * y,
                    ArOp::Div if y == 0.0 => return Err("division by zero".into()),
                    ArOp::Div => x / y,
                });
            }
            acc
        }
        Node::Cmp(first, rest) => {
            // Python's chain: stop at the first false link, without evaluating the rest.
            let mut left = eval(first, scope)?;
            for (op, n) in rest {
                let right = eval(n, scope)?;
                if !compare(*op, &left, &right)? {
                    return Ok(Value::Bool(false));
                }
                left = right;
            }
            Value::Bool(true)
        }
        Node::Ternary(first, branches) => {
            let mut acc = eval(first, scope)?;
            for (yes, no) in branches {
                acc = eval(if acc.truthy() { yes } else { no }, scope)?;
            }
            acc
        }
        // Cinder evaluates both sides before `and` / `or` picks one (no short circuit).
        Node::And(items) => fold(items, scope, |acc| !acc.truthy())?,
        Node::Or(items) => fold(items, scope, Value::truthy)?,
        Node::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, n) in items.iter().enumerate() {
                match eval(n, scope)? {
                    // `a, (b, c)` is [a, b, c] while `(a, b), c` is [[a, b], c], as in Cinder.
                    Value::List(inner) if i + 1 == items.len() => out.extend(inner),
                    v => out.push(v),
                }
            }
            Value::List(out)
        }
        Node::Call(name, arg) => call(name, eval(arg, scope)?)?,
    })
}

/// Evaluate every item, then keep the accumulated value while `keep(acc)` holds, else take
/// the next one (Python's `a and b` / `a or b`).
fn fold(items: &[Node], scope: &dyn Scope, keep: impl Fn(&Value) -> bool) -> Result<Value, String> {
    let mut values = Vec::with_capacity(items.len());
    for n in items {
        values.push(eval(n, scope)?);
    }
    let mut it = values.into_iter();
    let mut acc = it.next().unwrap_or(Value::Bool(false));
    for v in it {
        if !keep(&acc) {
            acc = v;
        }
    }
    Ok(acc)
}

fn pow(x: f64, y: f64) -> Result<f64, String> {
    if x == 0.0 && y < 0.0 {
        return Err("division by zero (0 to a negative power)".into());
    }
    let r = x.powf(y);
    if r.is_nan() && !x.is_nan() && !y.is_nan() {
        return Err(format!("{x} ^ {y} is not a real number"));
    }
    Ok(r)
}

/// Python's ordering of two values; `Ok(None)` when unordered (NaN).
fn order(a: &Value, b: &Value) -> Result<Option<Ordering>, String> {
    match (a, b) {
        (Value::List(x), Value::List(y)) => {
            for (p, q) in x.iter().zip(y) {
                if !equal(p, q) {
                    return order(p, q);
                }
            }
            Ok(Some(x.len().cmp(&y.len())))
        }
        (Value::List(_), _) | (_, Value::List(_)) => {
            Err("cannot order a list against a number".into())
        }
        _ => Ok(num(a)?.partial_cmp(&num(b)?)),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| equal(p, q))
        }
        (Value::List(_), _) | (_, Value::List(_)) => false,
        _ => num(a).ok() == num(b).ok(),
    }
}

fn compare(op: CmpOp, a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match op {
        CmpOp::Eq => equal(a, b),
        CmpOp::Ne => !equal(a, b),
        _ => match order(a, b)? {
            None => false,
            Some(o) => match op {
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                _ => o != Ordering::Less,
            },
        },
    })
}

fn call(name: &str, arg: Value) -> Result<Value, String> {
    let want_max = match name {
        "abs" => {
            return match arg {
                Value::List(l) => Err(format!("abs takes one argument, got {}", l.len())),
                v => Ok(Value::Num(num(&v)?.abs())),
            }
        }
        "max" => true,
        "min" => false,
        _ => return Err(format!("unknown function {name}")),
    };
    let Value::List(items) = arg else {
        return Err(format!("{name} needs several arguments: {name}(a, b)"));
    };
    let mut it = items.into_iter();
    let mut best = it.next().unwrap_or(Value::Num(0.0));
    for v in it {
        let better = if want_max {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        if order(&v, &best)? == Some(better) {
            best = v;
        }
    }
    Ok(best)
}
