//! Test support: reads the API's Rust source and finds every `.route(PATH, METHOD_ROUTER)`
//! declaration with the methods it serves, and every `.nest(PREFIX, ...)`, so a test can
//! compare the router with the documented route tables. Paths may be string literals,
//! `format!` strings whose `{var}` comes from an enclosing `for var in [...]` loop (or a
//! `const`), or such a variable itself. Anything the scanner cannot read (another method
//! router such as `any(...)`, an unresolvable path) is an error naming the file and line, so
//! a new way of declaring routes makes the test fail rather than go unseen.

use std::path::{Path, PathBuf};

use super::op::Verb;

/// One `.route(...)` declaration: the path as axum sees it and the methods it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub path: String,
    pub verbs: Vec<Verb>,
    /// `file:line`, for messages.
    pub at: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("{at}: {problem}")]
    Unreadable { at: String, problem: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Ident(String),
    Punct(char),
}

/// Tokens with their line numbers; comments are dropped, string literals kept whole.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let count_lines =
        |from: usize, to: usize| chars[from..to].iter().filter(|c| **c == '\n').count();
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let start = i;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i = (i + 2).min(chars.len());
            line += count_lines(start, i);
        } else if c == '"' {
            let start = i;
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    s.push(chars[i + 1]);
                    i += 2;
                } else {
                    s.push(chars[i]);
                    i += 1;
                }
            }
            i += 1;
            out.push((Tok::Str(s), line));
            line += count_lines(start, i.min(chars.len()));
        } else if c == 'r' && matches!(next, Some('"') | Some('#')) {
            // A raw string r"..." / r#"..."#.
            let start = i;
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push((Tok::Ident("r".into()), line));
                i += 1;
                continue;
            }
            j += 1;
            let close: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let rest: String = chars[j..].iter().collect();
            let end = rest.find(&close).unwrap_or(rest.len());
            out.push((Tok::Str(rest[..end].to_string()), line));
            i = j + rest[..end].chars().count() + close.chars().count();
            line += count_lines(start, i.min(chars.len()));
        } else if c == '\'' {
            // A char literal ('x', '\n', '{') or a lifetime ('static).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if word == "b" && chars.get(i) == Some(&'"') {
                continue; // b"...": the string follows.
            }
            out.push((Tok::Ident(word), line));
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

fn is_open(t: &Tok) -> bool {
    matches!(t, Tok::Punct('(' | '[' | '{'))
}

fn is_close(t: &Tok) -> bool {
    matches!(t, Tok::Punct(')' | ']' | '}'))
}

/// The arguments of the call whose `(` is at `open`: token ranges split at top-level commas,
/// and the index of the closing `)`.
fn call_args(toks: &[(Tok, usize)], open: usize) -> (Vec<std::ops::Range<usize>>, usize) {
    let (mut depth, mut start, mut args) = (0usize, open + 1, Vec::new());
    for (i, (t, _)) in toks.iter().enumerate().skip(open) {
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            depth -= 1;
            if depth == 0 {
                if start < i {
                    args.push(start..i);
                }
                return (args, i);
            }
        } else if depth == 1 && *t == Tok::Punct(',') {
            args.push(start..i);
            start = i + 1;
        }
    }
    (args, toks.len())
}

/// The values of variable `name` at token `at`: the `/...` strings of the array of an
/// enclosing `for ... name ... in [...]`, else of `const NAME: &str = "..."`.
fn resolve(toks: &[(Tok, usize)], at: usize, name: &str) -> Option<Vec<String>> {
    let ident = |t: &Tok, s: &str| matches!(t, Tok::Ident(w) if w == s);
    for f in (0..at).rev().filter(|&f| ident(&toks[f].0, "for")) {
        let Some(in_at) = (f..at).find(|&k| ident(&toks[k].0, "in")) else {
            continue;
        };
        if !toks[f..in_at].iter().any(|(t, _)| ident(t, name)) {
            continue;
        }
        if toks.get(in_at + 1).map(|t| &t.0) != Some(&Tok::Punct('[')) {
            return None;
        }
        let mut depth = 0;
        let mut values = Vec::new();
        for (t, _) in &toks[in_at + 1..] {
            if is_open(t) {
                depth += 1;
            } else if is_close(t) {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            } else if let Tok::Str(s) = t {
                if s.starts_with('/') {
                    values.push(s.clone());
                }
            }
        }
        return Some(values);
    }
    toks.windows(2)
        .position(|w| ident(&w[0].0, "const") && ident(&w[1].0, name))
        .and_then(|k| {
            toks[k..].iter().find_map(|(t, _)| match t {
                Tok::Str(s) => Some(vec![s.clone()]),
                _ => None,
            })
        })
}

/// Expand a `format!` string: `{{`/`}}` are braces, `{var}` every value of the variable.
fn expand(toks: &[(Tok, usize)], at: usize, fmt: &str) -> Result<Vec<String>, String> {
    let mut outs = vec![String::new()];
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
                outs.iter_mut().for_each(|o| o.push(c));
            }
            ('{', _) => {
                let name: String = chars.by_ref().take_while(|c| *c != '}').collect();
                if name.is_empty() || name.contains(':') {
                    return Err(format!(
                        "format argument `{{{name}}}` is not a named variable"
                    ));
                }
                let values = resolve(toks, at, &name)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("cannot resolve `{name}` (use a literal, a `for {name} in [...]` loop or a const)"))?;
                outs = outs
                    .iter()
                    .flat_map(|o| values.iter().map(move |v| format!("{o}{v}")))
                    .collect();
            }
            _ => outs.iter_mut().for_each(|o| o.push(c)),
        }
    }
    Ok(outs)
}

/// The paths the first argument of a `.route(` names.
fn route_paths(
    toks: &[(Tok, usize)],
    range: std::ops::Range<usize>,
) -> Result<Vec<String>, String> {
    let arg: Vec<&Tok> = toks[range.clone()]
        .iter()
        .map(|(t, _)| t)
        .filter(|t| **t != Tok::Punct('&'))
        .collect();
    match arg.as_slice() {
        [Tok::Str(s)] => Ok(vec![s.clone()]),
        [Tok::Ident(v)] => resolve(toks, range.start, v)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("cannot resolve route path variable `{v}`")),
        [Tok::Ident(f), Tok::Punct('!'), Tok::Punct('('), Tok::Str(fmt), ..] if f == "format" => {
            expand(toks, range.start, fmt)
        }
        other => Err(format!("unreadable route path {other:?}")),
    }
}

/// Methods of a method-router expression: the calls at its top level (`get(..)`,
/// `.post(..)`, `axum::routing::put(..)`); `.layer(..)` and friends are ignored.
fn route_verbs(toks: &[(Tok, usize)], range: std::ops::Range<usize>) -> Result<Vec<Verb>, String> {
    const IGNORED: &[&str] = &["layer", "route_layer", "with_state", "fallback"];
    let mut verbs = Vec::new();
    let mut depth = 0usize;
    for k in range.clone() {
        let t = &toks[k].0;
        if depth == 0 {
            if let (Tok::Ident(name), Some((Tok::Punct('('), _))) = (t, toks.get(k + 1)) {
                match Verb::from_key(name) {
                    Some(v) => verbs.push(v),
                    None if IGNORED.contains(&name.as_str()) => {}
                    None => return Err(format!("unsupported method router `{name}(...)`")),
                }
            }
        }
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            depth = depth.saturating_sub(1);
        }
    }
    if verbs.is_empty() {
        return Err("no method found in the method router".into());
    }
    Ok(verbs)
}

/// The `.route(...)` declarations of one source file.
pub fn scan(file: &str, src: &str) -> Result<Vec<Declared>, ScanError> {
    let toks = tokens(src);
    let mut out = Vec::new();
    for k in 0..toks.len().saturating_sub(2) {
        let is_route = toks[k].0 == Tok::Punct('.')
            && toks[k + 1].0 == Tok::Ident("route".into())
            && toks[k + 2].0 == Tok::Punct('(');
        if !is_route {
            continue;
        }
        let at = format!("{file}:{}", toks[k].1);
        let unreadable = |problem: String| ScanError::Unreadable {
            at: at.clone(),
            problem,
        };
        let (args, _) = call_args(&toks, k + 2);
        let [path_arg, router_arg] = args.as_slice() else {
            return Err(unreadable(format!(
                "expected 2 arguments, found {}",
                args.len()
            )));
        };
        let verbs = route_verbs(&toks, router_arg.clone()).map_err(&unreadable)?;
        for path in route_paths(&toks, path_arg.clone()).map_err(&unreadable)? {
            out.push(Declared {
                path,
                verbs: verbs.clone(),
                at: at.clone(),
            });
        }
    }
    Ok(out)
}

/// The prefixes of the `.nest("PREFIX", ...)` calls of a source file.
pub fn nests(src: &str) -> Vec<String> {
    let toks = tokens(src);
    toks.windows(4)
        .filter_map(|w| match (&w[0].0, &w[1].0, &w[2].0, &w[3].0) {
            (Tok::Punct('.'), Tok::Ident(n), Tok::Punct('('), Tok::Str(p)) if n == "nest" => {
                Some(p.clone())
            }
            _ => None,
        })
        .collect()
}

/// The string patterns of the top-level arms of the first `match` after `anchor`, e.g. the
/// action names a handler dispatches (`"os-extend" => ...`, `"a" | "b" => ...`).
pub fn match_arms(src: &str, anchor: &str) -> Vec<String> {
    let Some(start) = src.find(anchor) else {
        return Vec::new();
    };
    let toks = tokens(&src[start..]);
    let Some(open) = toks.iter().position(|(t, _)| *t == Tok::Punct('{')) else {
        return Vec::new();
    };
    let (mut depth, mut arms) = (0usize, Vec::new());
    for k in open..toks.len() {
        let t = &toks[k].0;
        if is_open(t) {
            depth += 1;
        } else if is_close(t) {
            depth -= 1;
            if depth == 0 {
                break;
            }
        } else if let (1, Tok::Str(s)) = (depth, t) {
            let arrow = matches!(
                (toks.get(k + 1).map(|t| &t.0), toks.get(k + 2).map(|t| &t.0)),
                (Some(Tok::Punct('=')), Some(Tok::Punct('>'))) | (Some(Tok::Punct('|')), _)
            );
            if arrow {
                arms.push(s.clone());
            }
        }
    }
    arms
}

/// `host/src/api`.
pub fn api_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join("api")
}

/// Every `.rs` file under `dir` except this documentation module, sorted.
pub fn sources(dir: &Path) -> Result<Vec<(String, String)>, ScanError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source: std::io::Error| ScanError::Io { path, source }
    };
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .collect::<Result<_, _>>()
        .map_err(io(dir))?;
    entries.sort_by_key(|e| e.path());
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "openapi") {
                continue;
            }
            out.extend(sources(&path)?);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let name = path
                .strip_prefix(api_dir())
                .unwrap_or(path.as_path())
                .display()
                .to_string();
            out.push((name, text));
        }
    }
    Ok(out)
}
