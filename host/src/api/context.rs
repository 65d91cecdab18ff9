//! Who is calling: the `Ctx` extractor hands handlers the [`RequestContext`] the auth
//! middleware (`auth/`) built from `X-Auth-Token` and stored in the request extensions.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::rpc::RequestContext;

/// The caller's context (user, project, roles, admin flag, request id).
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Only a route outside the auth middleware (a router assembled without it) gets here
        // without a context: refuse rather than guess.
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .map(Ctx)
            .ok_or_else(|| {
                ApiError::Unauthorized("The request you have made requires authentication.".into())
            })
    }
}
