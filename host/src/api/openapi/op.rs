//! One documented operation of the API: the entry type of the route tables
//! (`routes_*.rs`) and its `const` builders, so documenting a route is one short entry such as
//! `Op::post("/volumes", "Create a volume").body("VolumeCreateRequest").ok(202, "VolumeResponse")`.
//! What the entry does not say is derived when the document is built (`build.rs`): the path
//! parameters from the template, the microversion gate from `microversion::GATES`, the
//! admin-only rule from `policy.rs`, the error responses from the method.

use axum::http::Method;

/// An HTTP method a route serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    /// The OpenAPI path-item key (and axum's method-router name): `get`, `post`, ...
    pub fn key(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Put => "put",
            Verb::Delete => "delete",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }

    /// The verb of an axum method-router function name (`get`, `post`, ...).
    #[cfg(test)]
    pub fn from_key(key: &str) -> Option<Verb> {
        [Verb::Get, Verb::Post, Verb::Put, Verb::Delete]
            .into_iter()
            .find(|v| v.key() == key)
    }
}

/// Where a route is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mount {
    /// At the root of the listener (`/`, `/v3`, `/healthcheck`, ...), as declared.
    Root,
    /// In `v3_routes()`, nested at `/v3/{project_id}` and at `/v3` (Cinder 3.67's project-less
    /// URLs): documented under both paths.
    V3,
}

/// What a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    None,
    /// JSON described by the named component schema.
    Json(&'static str),
    /// Raw bytes (a WebAssembly component upload).
    Binary,
}

/// What a successful answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// JSON described by the named component schema.
    Json(&'static str),
    /// `text/plain` (health check, Prometheus metrics).
    Text,
    /// No body.
    Empty,
}

/// A query parameter: name, JSON Schema type (`string`, `integer`, `boolean`), meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    pub name: &'static str,
    pub kind: &'static str,
    pub about: &'static str,
}

pub const fn q(name: &'static str, kind: &'static str, about: &'static str) -> Query {
    Query { name, kind, about }
}

/// Equality filters of a Cinder listing, as the listing handlers declare them:
/// `(parameter, column, boolean?)` (e.g. `volumes::FILTERS`).
pub type Filters = &'static [(&'static str, &'static str, bool)];

/// One route + method, documented.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    pub mount: Mount,
    pub verb: Verb,
    /// The path as the `.route(...)` declaration spells it (axum `{param}` syntax).
    pub path: &'static str,
    pub summary: &'static str,
    pub body: Body,
    pub status: u16,
    pub reply: Reply,
    /// A Cinder listing (`listing.rs`): paging, sorting, `all_tenants`, metadata and these
    /// equality filters.
    pub listing: Option<Filters>,
    /// Other query parameters.
    pub query: &'static [Query],
    /// A second success answer some requests get (e.g. a volume action answering 200).
    pub also: Option<(u16, &'static str)>,
}

impl Op {
    const fn new(verb: Verb, path: &'static str, summary: &'static str) -> Op {
        Op {
            mount: Mount::V3,
            verb,
            path,
            summary,
            body: Body::None,
            status: 200,
            reply: Reply::Json("AnyObject"),
            listing: None,
            query: &[],
            also: None,
        }
    }
    pub const fn get(path: &'static str, summary: &'static str) -> Op {
        Op::new(Verb::Get, path, summary)
    }
    pub const fn post(path: &'static str, summary: &'static str) -> Op {
        Op::new(Verb::Post, path, summary)
    }
    pub const fn put(path: &'static str, summary: &'static str) -> Op {
        Op::new(Verb::Put, path, summary)
    }
    pub const fn delete(path: &'static str, summary: &'static str) -> Op {
        Op::new(Verb::Delete, path, summary)
    }
    /// Mounted at the listener's root rather than under `/v3[/{project_id}]`.
    pub const fn root(mut self) -> Op {
        self.mount = Mount::Root;
        self
    }
    /// A JSON request body (component schema name).
    pub const fn body(mut self, schema: &'static str) -> Op {
        self.body = Body::Json(schema);
        self
    }
    /// A raw byte request body.
    pub const fn binary(mut self) -> Op {
        self.body = Body::Binary;
        self
    }
    /// Success status and JSON body (component schema name).
    pub const fn ok(mut self, status: u16, schema: &'static str) -> Op {
        self.status = status;
        self.reply = Reply::Json(schema);
        self
    }
    /// Success status without a body.
    pub const fn empty(mut self, status: u16) -> Op {
        self.status = status;
        self.reply = Reply::Empty;
        self
    }
    /// A `text/plain` 200.
    pub const fn text(mut self) -> Op {
        self.status = 200;
        self.reply = Reply::Text;
        self
    }
    pub const fn listing(mut self, filters: Filters) -> Op {
        self.listing = Some(filters);
        self
    }
    /// A second success status with a JSON body (component schema name).
    pub const fn also(mut self, status: u16, schema: &'static str) -> Op {
        self.also = Some((status, schema));
        self
    }
    pub const fn query(mut self, query: &'static [Query]) -> Op {
        self.query = query;
        self
    }

    /// The path under which `mount` serves the declared path, for each form it is served in:
    /// `(path, project-less?)`.
    pub fn served_paths(&self) -> Vec<(String, bool)> {
        match self.mount {
            Mount::Root => vec![(self.path.to_string(), false)],
            Mount::V3 => vec![
                (format!("{}{}", super::PROJECT_PREFIX, self.path), false),
                (format!("{}{}", super::PROJECTLESS_PREFIX, self.path), true),
            ],
        }
    }
}
