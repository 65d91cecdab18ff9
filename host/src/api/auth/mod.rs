//! Authentication and authorization at the API edge, one middleware for every routed request
//! except version discovery (`/`, `/v3`, `/v3/`), `/healthcheck`, `/metrics` and
//! `/openapi.json`:
//! `X-Auth-Token` → [`RequestContext`] (`api.auth_strategy`: `noauth` takes `USER:PROJECT`
//! and grants admin like Cinder's noauth; `keystone` validates the token with Keystone,
//! `keystone.rs`, cached in `cache.rs`), then the `{project_id}` URL check and the admin-only
//! rules of `policy.rs`. The context goes into the request extensions, where the `Ctx`
//! extractor finds it. A missing or invalid Keystone token gets keystonemiddleware's 401 with
//! `WWW-Authenticate: Keystone uri="..."`.

pub mod cache;
mod keystone;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub use keystone::{Identity, Keystone};

use super::error::ApiError;
use super::policy;
use crate::config::Config;
use crate::rpc::RequestContext;

/// Routes answered without a token.
pub(in crate::api) const PUBLIC: &[&str] = &[
    "/",
    "/v3",
    "/v3/",
    "/healthcheck",
    "/metrics",
    "/openapi.json",
];

/// Action bodies are read by the middleware (for the admin-action rules) up to this size.
const ACTION_BODY_LIMIT: usize = 1 << 20;

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("The request you have made requires authentication.")]
    Missing,
    #[error("The request you have made requires authentication.")]
    Invalid,
    #[error("cannot reach Keystone: {0}")]
    Unreachable(String),
    #[error("Keystone refused the service credentials: {0}")]
    ServiceCredentials(String),
    #[error("unexpected answer from Keystone: {0}")]
    Protocol(String),
}

/// The configured way of turning tokens into contexts.
#[derive(Clone)]
pub enum Auth {
    NoAuth,
    Keystone(Arc<Keystone>),
}

impl Auth {
    pub fn from_config(config: &Config) -> Result<Auth, AuthError> {
        match config.api.auth_strategy.as_str() {
            "keystone" => Ok(Auth::Keystone(Arc::new(Keystone::new(
                config.keystone.clone(),
            )?))),
            _ => Ok(Auth::NoAuth),
        }
    }

    /// The caller's context for `token`.
    pub async fn context(
        &self,
        token: Option<&str>,
        request_id: String,
    ) -> Result<RequestContext, AuthError> {
        let token = token.filter(|t| !t.is_empty()).ok_or(AuthError::Missing)?;
        match self {
            Auth::NoAuth => {
                let (user, project) = token.split_once(':').unwrap_or((token, token));
                Ok(RequestContext {
                    request_id,
                    user_id: Some(user.to_string()),
                    project_id: Some(project.to_string()),
                    roles: vec!["admin".into(), "member".into(), "reader".into()],
                    is_admin: true,
                })
            }
            Auth::Keystone(ks) => {
                let who = ks.validate(token).await?.ok_or(AuthError::Invalid)?;
                Ok(context_of(who, request_id))
            }
        }
    }

    /// The answer to a request that failed authentication.
    fn reject(&self, e: AuthError) -> Response {
        match (self, &e) {
            (Auth::NoAuth, _) => ApiError::Unauthorized(
                "Authentication required: send X-Auth-Token (noauth: USER:PROJECT).".into(),
            )
            .into_response(),
            (Auth::Keystone(ks), AuthError::Missing | AuthError::Invalid) => {
                let body = serde_json::json!({"error": {
                    "code": 401, "title": "Unauthorized", "message": e.to_string(),
                }});
                let mut resp = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
                if let Ok(v) = HeaderValue::from_str(&ks.www_authenticate()) {
                    resp.headers_mut().insert("www-authenticate", v);
                }
                resp
            }
            (Auth::Keystone(_), _) => {
                tracing::error!(error = %e, "token validation failed");
                ApiError::Unavailable("The identity service is not available.".into())
                    .into_response()
            }
        }
    }
}

/// A Keystone identity as a request context: admin when it holds the `admin` role.
pub fn context_of(who: Identity, request_id: String) -> RequestContext {
    let is_admin = who.roles.iter().any(|r| r.eq_ignore_ascii_case("admin"));
    RequestContext {
        request_id,
        user_id: Some(who.user_id),
        project_id: who.project_id,
        roles: who.roles,
        is_admin,
    }
}

/// `(project in the URL, path without the /v3[/{project_id}] prefix)` of a routed request.
fn split_path<'a>(matched: &str, path: &'a str) -> (Option<&'a str>, &'a str) {
    let rest = path.strip_prefix("/v3").unwrap_or(path);
    if !matched.starts_with("/v3/{project_id}") {
        return (None, rest);
    }
    let after = rest.strip_prefix('/').unwrap_or(rest);
    match after.find('/') {
        Some(i) => (Some(&after[..i]), &after[i..]),
        None => (Some(after), ""),
    }
}

/// The action named by a JSON action body (its only key).
fn action_name(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<serde_json::Value>(body).ok()? {
        serde_json::Value::Object(m) if m.len() == 1 => m.keys().next().cloned(),
        _ => None,
    }
}

/// The middleware: authenticate, check the URL project and the admin-only rules.
pub async fn middleware(State(auth): State<Auth>, req: Request, next: Next) -> Response {
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    if PUBLIC.contains(&matched.as_str()) {
        return next.run(req).await;
    }
    let (request_id, token) = {
        let header = |name: &str| -> Option<String> {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        (
            header("x-openstack-request-id").unwrap_or_default(),
            header("x-auth-token"),
        )
    };
    let ctx = match auth.context(token.as_deref(), request_id).await {
        Ok(ctx) => ctx,
        Err(e) => return auth.reject(e),
    };
    let path = req.uri().path().to_string();
    let (url_project, rest) = split_path(&matched, &path);
    if let Err(e) = policy::check_url_project(&ctx, url_project) {
        return e.into_response();
    }
    if let Some(rule) = policy::route_rule(req.method(), rest) {
        if let Err(e) = policy::authorize_admin(&ctx, rule) {
            return e.into_response();
        }
    }
    let mut req = req;
    if req.method() == Method::POST && rest.ends_with("/action") && !ctx.is_admin {
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, ACTION_BODY_LIMIT).await {
            Ok(b) => b,
            Err(e) => {
                return ApiError::BadRequest(format!("Malformed request body: {e}")).into_response()
            }
        };
        if let Some(rule) = action_name(&bytes).and_then(|a| policy::action_rule(rest, &a)) {
            return policy::forbidden(rule).into_response();
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(ctx);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_projects_are_found_only_in_project_scoped_routes() {
        assert_eq!(
            split_path("/v3/{project_id}/volumes/{id}", "/v3/p1/volumes/v9"),
            (Some("p1"), "/volumes/v9")
        );
        assert_eq!(
            split_path("/v3/{project_id}/volumes", "/v3/p1/volumes"),
            (Some("p1"), "/volumes")
        );
        assert_eq!(
            split_path("/v3/volumes/{id}", "/v3/volumes/v9"),
            (None, "/volumes/v9")
        );
        assert_eq!(
            action_name(br#"{"os-reset_status": {"status": "error"}}"#).as_deref(),
            Some("os-reset_status")
        );
        assert_eq!(action_name(b"{}"), None);
        assert_eq!(action_name(b"nope"), None);
    }

    #[tokio::test]
    async fn noauth_takes_user_and_project_from_the_token() {
        let ctx = Auth::NoAuth
            .context(Some("alice:demo"), "req-1".into())
            .await
            .unwrap();
        assert_eq!(ctx.user_id.as_deref(), Some("alice"));
        assert_eq!(ctx.project_id.as_deref(), Some("demo"));
        assert!(ctx.is_admin);
        assert!(matches!(
            Auth::NoAuth.context(None, "req-2".into()).await,
            Err(AuthError::Missing)
        ));
        let who = Identity {
            user_id: "u".into(),
            project_id: Some("p".into()),
            roles: vec!["reader".into(), "Admin".into()],
        };
        assert!(context_of(who.clone(), "r".into()).is_admin);
        let member = Identity {
            roles: vec!["member".into()],
            ..who
        };
        let ctx = context_of(member, "r".into());
        assert!(!ctx.is_admin);
        assert_eq!(ctx.roles, vec!["member".to_string()]);
    }
}
