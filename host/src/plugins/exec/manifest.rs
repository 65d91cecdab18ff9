//! The exec manifest of a driver plugin (`<name>.toml` beside its component) and the matcher
//! that decides whether one command is granted. Deny by default: a program runs only when a
//! grant names its absolute path and every argument matches that grant's pattern for its
//! position (or the variadic tail pattern), every environment variable is one the grant
//! allows, and the working directory is under the grant's root. Nothing here runs anything.
//!
//! ```toml
//! [roots]
//! volumes = { config = "root" }        # the plugin's `root` setting
//! # scratch = { dir = "/srv/scratch" }   # or a fixed directory
//!
//! [target]
//! roots = ["volumes"]                  # backing paths `target.create-export` may name
//!
//! [[grant]]
//! program = "/usr/bin/qemu-img"
//! args = ["create", "-f", "raw", { path = "volumes" }, { size = true }]
//! tail = { regex = "-[a-z]" }          # optional: any number of further arguments
//! env = ["TMPDIR"]                     # variables the plugin may set
//! cwd = "volumes"                      # working directory root (default `/`, not settable)
//! timeout_ms = 600000                  # default 60 s; the plugin may only ask for less
//! output_cap = 1048576                 # bytes kept of stdout and of stderr (default 1 MiB)
//! user = "nobody"                      # run as this user and its group (only when the host
//!                                      # runs as root); or `uid = 107` / `gid = 113`
//! ```

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default deadline of a granted command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on each of stdout and stderr.
pub const DEFAULT_OUTPUT_CAP: usize = 1 << 20;

/// The manifest as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    #[serde(default)]
    roots: BTreeMap<String, RootSpec>,
    #[serde(default)]
    target: TargetSpec,
    #[serde(default)]
    grant: Vec<GrantSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum RootSpec {
    /// The value of one of the plugin's settings.
    Config(String),
    /// A fixed directory.
    Dir(PathBuf),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetSpec {
    #[serde(default)]
    roots: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantSpec {
    program: String,
    #[serde(default)]
    args: Vec<PatternSpec>,
    tail: Option<PatternSpec>,
    #[serde(default)]
    env: Vec<String>,
    cwd: Option<String>,
    timeout_ms: Option<u64>,
    output_cap: Option<usize>,
    uid: Option<u32>,
    gid: Option<u32>,
    /// Run as this user (name): its uid, and its primary gid unless `gid` is given.
    user: Option<String>,
}

/// A pattern as written: a bare string is a literal.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum PatternSpec {
    Literal(String),
    Table(TablePattern),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
enum TablePattern {
    Literal(String),
    Regex(String),
    Uuid(bool),
    Size(bool),
    Path(String),
}

/// One argument pattern, compiled.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// Exactly this string.
    Literal(String),
    /// The whole argument matches the regex (anchored by the host).
    Regex(regex::Regex),
    /// A hyphenated lowercase UUID.
    Uuid,
    /// A size: digits with an optional `K`, `M`, `G` or `T` suffix (`10G`, `1024M`, `4096`).
    Size,
    /// An absolute path that is the root or beneath it, lexically and through symlinks.
    Path { root_name: String, root: PathBuf },
}

/// One granted program.
#[derive(Debug, Clone)]
pub struct Grant {
    pub program: String,
    pub args: Vec<Pattern>,
    pub tail: Option<Pattern>,
    pub env: Vec<String>,
    /// Working directory root (and default working directory); `None`: `/`, not settable.
    pub cwd: Option<PathBuf>,
    pub timeout: Duration,
    pub output_cap: usize,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// A loaded manifest: the grants of one plugin with its roots resolved.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    pub grants: Vec<Grant>,
    /// Directories `target.create-export` / `ensure-export` backing paths must be under.
    pub target_roots: Vec<PathBuf>,
}

/// A command the plugin asked for, as far as the matcher cares.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub program: &'a str,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: Option<&'a str>,
}

impl Manifest {
    /// Parse `text`; `config` resolves `{ config = KEY }` roots; `origin` names the file in
    /// errors.
    pub fn parse(
        text: &str,
        config: &BTreeMap<String, String>,
        origin: &str,
    ) -> Result<Manifest, String> {
        let file: ManifestFile =
            toml::from_str(text).map_err(|e| format!("{origin}: {}", e.message()))?;
        let mut roots = BTreeMap::new();
        for (name, spec) in &file.roots {
            let dir = match spec {
                RootSpec::Dir(d) => d.clone(),
                RootSpec::Config(key) => PathBuf::from(config.get(key).ok_or_else(|| {
                    format!(
                        "{origin}: root `{name}` is the plugin setting `{key}`, which is not set"
                    )
                })?),
            };
            let dir = normalise(&dir)
                .map_err(|e| format!("{origin}: root `{name}` ({}): {e}", dir.display()))?;
            roots.insert(name.clone(), dir);
        }
        let root = |name: &str| {
            roots
                .get(name)
                .cloned()
                .ok_or_else(|| format!("{origin}: unknown root `{name}` (declare it in [roots])"))
        };
        let pattern = |spec: &PatternSpec| -> Result<Pattern, String> {
            Ok(match spec {
                PatternSpec::Literal(s) | PatternSpec::Table(TablePattern::Literal(s)) => {
                    Pattern::Literal(s.clone())
                }
                PatternSpec::Table(TablePattern::Regex(r)) => Pattern::Regex(
                    regex::Regex::new(&format!("^(?:{r})$"))
                        .map_err(|e| format!("{origin}: bad regex `{r}`: {e}"))?,
                ),
                PatternSpec::Table(TablePattern::Uuid(true)) => Pattern::Uuid,
                PatternSpec::Table(TablePattern::Size(true)) => Pattern::Size,
                PatternSpec::Table(TablePattern::Uuid(false) | TablePattern::Size(false)) => {
                    return Err(format!("{origin}: write `uuid = true` / `size = true`"))
                }
                PatternSpec::Table(TablePattern::Path(name)) => Pattern::Path {
                    root_name: name.clone(),
                    root: root(name)?,
                },
            })
        };
        let mut grants = Vec::new();
        for g in &file.grant {
            if !Path::new(&g.program).is_absolute() || g.program.contains("..") {
                return Err(format!(
                    "{origin}: program `{}` must be an absolute path without `..`",
                    g.program
                ));
            }
            if let Some(bad) = g
                .env
                .iter()
                .find(|v| v.starts_with("LD_") || *v == "PATH" || *v == "LC_ALL" || v.contains('='))
            {
                return Err(format!(
                    "{origin}: {}: environment variable `{bad}` cannot be granted",
                    g.program
                ));
            }
            let (uid, gid) = match (&g.user, g.uid) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{origin}: {}: give `user` or `uid`, not both",
                        g.program
                    ))
                }
                (Some(user), None) => {
                    let (uid, gid) = super::user::lookup(user)
                        .map_err(|e| format!("{origin}: {}: {e}", g.program))?;
                    (Some(uid), Some(g.gid.unwrap_or(gid)))
                }
                (None, uid) => (uid, g.gid),
            };
            grants.push(Grant {
                program: g.program.clone(),
                args: g.args.iter().map(pattern).collect::<Result<_, _>>()?,
                tail: g.tail.as_ref().map(pattern).transpose()?,
                env: g.env.clone(),
                cwd: g.cwd.as_deref().map(root).transpose()?,
                timeout: g
                    .timeout_ms
                    .map(Duration::from_millis)
                    .unwrap_or(DEFAULT_TIMEOUT),
                output_cap: g.output_cap.unwrap_or(DEFAULT_OUTPUT_CAP),
                uid,
                gid,
            });
        }
        let target_roots = file
            .target
            .roots
            .iter()
            .map(|n| root(n))
            .collect::<Result<_, _>>()?;
        Ok(Manifest {
            grants,
            target_roots,
        })
    }

    /// Keep only the grants of `programs` (the operator's narrowing). Naming a program the
    /// manifest does not grant is an error: configuration can narrow a manifest, not widen it.
    pub fn narrow(&mut self, programs: &[String]) -> Result<(), String> {
        if let Some(p) = programs
            .iter()
            .find(|p| !self.grants.iter().any(|g| &g.program == *p))
        {
            return Err(format!(
                "`{p}` is not granted by the plugin's manifest; exec allow-lists can only narrow it"
            ));
        }
        self.grants.retain(|g| programs.contains(&g.program));
        Ok(())
    }

    /// The grant that allows `req`, or why none does. The reason names the program, the
    /// argument position or variable at fault, and the closest grant's expectation.
    pub fn check(&self, req: &Request<'_>) -> Result<&Grant, String> {
        let candidates: Vec<&Grant> = self
            .grants
            .iter()
            .filter(|g| g.program == req.program)
            .collect();
        if candidates.is_empty() {
            return Err(format!("program `{}` is not granted", req.program));
        }
        // Explain with the grant that matched the most leading arguments: the one the plugin
        // most likely meant.
        let mut best: Option<(usize, String)> = None;
        for g in candidates {
            match g.allows(req) {
                Ok(()) => return Ok(g),
                Err(reason) => {
                    let score = g.leading_matches(req.args);
                    if best.as_ref().is_none_or(|(s, _)| score > *s) {
                        best = Some((score, reason));
                    }
                }
            }
        }
        Err(best.map(|(_, r)| r).unwrap_or_default())
    }

    /// Check a backing path handed to the `target` interface.
    pub fn check_target_path(&self, path: &str) -> Result<PathBuf, String> {
        if self.target_roots.is_empty() {
            return Err("the manifest grants no [target] roots".into());
        }
        let mut last = String::new();
        for root in &self.target_roots {
            match under_root(path, root) {
                Ok(p) => return Ok(p),
                Err(e) => last = e,
            }
        }
        Err(format!("backing path: {last}"))
    }
}

impl Grant {
    fn leading_matches(&self, args: &[String]) -> usize {
        self.args
            .iter()
            .zip(args)
            .take_while(|(p, a)| p.matches(a).is_ok())
            .count()
    }

    fn allows(&self, req: &Request<'_>) -> Result<(), String> {
        let prog = req.program;
        if req.args.len() < self.args.len()
            || (self.tail.is_none() && req.args.len() > self.args.len())
        {
            return Err(format!(
                "{prog}: {} arguments given, the grant takes {}{}",
                req.args.len(),
                self.args.len(),
                if self.tail.is_some() { " or more" } else { "" }
            ));
        }
        for (i, arg) in req.args.iter().enumerate() {
            let pattern = self.args.get(i).or(self.tail.as_ref()).expect("checked");
            pattern
                .matches(arg)
                .map_err(|why| format!("{prog}: argument {} `{arg}` {why}", i + 1))?;
        }
        for (name, _) in req.env {
            if !self.env.iter().any(|n| n == name) {
                return Err(format!(
                    "{prog}: environment variable `{name}` is not allowed"
                ));
            }
        }
        if let Some(cwd) = req.cwd {
            let root = self.cwd.as_ref().ok_or_else(|| {
                format!("{prog}: the grant allows no working directory (asked for `{cwd}`)")
            })?;
            under_root(cwd, root).map_err(|e| format!("{prog}: working directory {e}"))?;
        }
        Ok(())
    }
}

impl Pattern {
    /// `Ok` when `arg` matches; otherwise what was expected.
    pub fn matches(&self, arg: &str) -> Result<(), String> {
        if arg.contains('\0') {
            return Err("contains a NUL byte".into());
        }
        match self {
            Pattern::Literal(s) if s == arg => Ok(()),
            Pattern::Literal(s) => Err(format!("is not `{s}`")),
            Pattern::Regex(r) if r.is_match(arg) => Ok(()),
            Pattern::Regex(r) => Err(format!("does not match `{}`", r.as_str())),
            Pattern::Uuid => match uuid::Uuid::parse_str(arg) {
                Ok(u) if u.hyphenated().to_string() == arg => Ok(()),
                _ => Err("is not a lowercase hyphenated UUID".into()),
            },
            Pattern::Size => {
                let digits = arg.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(arg);
                if !digits.is_empty()
                    && digits.len() <= 15
                    && digits.bytes().all(|b| b.is_ascii_digit())
                {
                    Ok(())
                } else {
                    Err("is not a size (digits with an optional K, M, G or T)".into())
                }
            }
            Pattern::Path { root_name, root } => under_root(arg, root)
                .map(|_| ())
                .map_err(|e| format!("(root `{root_name}`): {e}")),
        }
    }
}

/// `path` made absolute-lexical: `.` dropped; `..` refused outright (a path naming `..` is
/// never needed by a driver and is the classic escape).
fn normalise(path: &Path) -> Result<PathBuf, String> {
    if !path.is_absolute() {
        return Err("is not an absolute path".into());
    }
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::RootDir => out.push("/"),
            Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir => return Err("contains `..`".into()),
            Component::Prefix(_) => return Err("has a prefix".into()),
        }
    }
    Ok(out)
}

/// Check that `path` is `root` or beneath it: lexically (no `..`), and through symlinks for
/// the part of the path that exists (its deepest existing ancestor, canonicalised, must be
/// under the canonical root). Returns the lexically normalised path.
pub fn under_root(path: &str, root: &Path) -> Result<PathBuf, String> {
    let p = normalise(Path::new(path)).map_err(|e| format!("`{path}` {e}"))?;
    if !p.starts_with(root) {
        return Err(format!("`{path}` is not under {}", root.display()));
    }
    let mut existing = p.as_path();
    loop {
        // symlink_metadata: a dangling symlink exists too, and is resolved (or fails) below.
        if existing.symlink_metadata().is_ok() {
            break;
        }
        match existing.parent() {
            Some(parent) => existing = parent,
            None => return Ok(p),
        }
    }
    if !existing.starts_with(root) {
        // The root itself does not exist (yet): nothing beneath it can be a symlink.
        return Ok(p);
    }
    let real = std::fs::canonicalize(existing)
        .map_err(|e| format!("`{path}`: cannot resolve {}: {e}", existing.display()))?;
    let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    if !real.starts_with(&real_root) {
        return Err(format!(
            "`{path}` leaves {} through a symlink (resolves to {})",
            root.display(),
            real.display()
        ));
    }
    Ok(p)
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
