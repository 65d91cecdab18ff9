//! Who is calling: the request context built from the auth headers. `noauth` takes the token
//! `USER:PROJECT` (Cinder's noauth format) and, like Cinder's noauth middleware, grants admin.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use crate::rpc::RequestContext;

/// The caller's context, extracted from `X-Auth-Token` and the request id.
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "Authentication required: send X-Auth-Token (noauth: USER:PROJECT).".into(),
                )
            })?;
        let (user, project) = token.split_once(':').unwrap_or((token, token));
        let request_id = parts
            .headers
            .get("x-openstack-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        Ok(Ctx(RequestContext {
            request_id,
            user_id: Some(user.to_string()),
            project_id: Some(project.to_string()),
            roles: vec!["admin".into(), "member".into(), "reader".into()],
            is_admin: true,
        }))
    }
}
