//! Keystone token validation, as keystonemiddleware's `auth_token` does it: the API holds a
//! service token (password auth of the `[keystone]` service user, scoped to its project,
//! renewed before it expires) and validates each user token with `GET /v3/auth/tokens`
//! (`X-Auth-Token`: the service token, `X-Subject-Token`: the user's). Outcomes, valid or
//! not, are cached (`cache.rs`); Keystone being unreachable is not cached.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::{debug, info, warn};

use super::cache::TokenCache;
use super::AuthError;
use crate::config::KeystoneConfig;

/// Who a valid user token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    /// `None` for domain- or system-scoped and unscoped tokens.
    pub project_id: Option<String>,
    pub roles: Vec<String>,
}

#[derive(Clone)]
struct ServiceToken {
    token: String,
    renew_at: Instant,
}

/// When to renew a token valid for `lifetime` from `issued`: two minutes before it expires,
/// or half-way through its life when it lives less than four minutes.
pub fn renew_at(issued: Instant, lifetime: Duration) -> Instant {
    let margin = Duration::from_secs(120).min(lifetime / 2);
    issued + (lifetime - margin)
}

/// `expires_at` of a Keystone token as an `Instant` (`None`: unparsable).
fn expiry(expires_at: &str, now: Instant) -> Option<(Instant, Duration)> {
    let at = OffsetDateTime::parse(expires_at, &Rfc3339).ok()?;
    let left = at - OffsetDateTime::now_utc();
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    Some((now + left, left))
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: String,
    user: Option<Named>,
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Named>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

/// The Keystone client of one API service.
pub struct Keystone {
    cfg: KeystoneConfig,
    http: reqwest::Client,
    service: tokio::sync::Mutex<Option<ServiceToken>>,
    cache: Mutex<TokenCache<Option<Identity>>>,
}

impl Keystone {
    pub fn new(cfg: KeystoneConfig) -> Result<Self, AuthError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout))
            .build()
            .map_err(|e| AuthError::Unreachable(e.to_string()))?;
        let cache = TokenCache::new(Duration::from_secs(cfg.cache_ttl), cfg.cache_size);
        Ok(Keystone {
            cfg,
            http,
            service: tokio::sync::Mutex::new(None),
            cache: Mutex::new(cache),
        })
    }

    pub fn www_authenticate(&self) -> String {
        format!("Keystone uri=\"{}\"", self.cfg.www_authenticate_uri())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.auth_url.trim_end_matches('/'))
    }

    /// The service token, issuing a new one when there is none or it is due for renewal.
    async fn service_token(&self, force_new: bool) -> Result<String, AuthError> {
        let mut held = self.service.lock().await;
        if let Some(t) = held.as_ref() {
            if !force_new && Instant::now() < t.renew_at {
                return Ok(t.token.clone());
            }
        }
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.cfg.username,
                "password": self.cfg.password,
                "domain": {"name": self.cfg.user_domain_name},
            }}},
            "scope": {"project": {
                "name": self.cfg.project_name,
                "domain": {"name": self.cfg.project_domain_name},
            }},
        }});
        let started = Instant::now();
        let resp = self
            .http
            .post(self.url("/auth/tokens?nocatalog"))
            .json(&body)
            .send()
            .await
            .map_err(|e| AuthError::Unreachable(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(AuthError::ServiceCredentials(format!(
                "{status} from Keystone for user {}: {text}",
                self.cfg.username
            )));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| AuthError::Protocol("no X-Subject-Token in the answer".into()))?;
        let info: TokenBody = resp
            .json()
            .await
            .map_err(|e| AuthError::Protocol(format!("token body: {e}")))?;
        let (_, lifetime) = expiry(&info.token.expires_at, started).ok_or_else(|| {
            AuthError::Protocol(format!("bad expires_at {}", info.token.expires_at))
        })?;
        info!(user = %self.cfg.username, lifetime_s = lifetime.as_secs(), "issued Keystone service token");
        *held = Some(ServiceToken {
            token: token.clone(),
            renew_at: renew_at(started, lifetime),
        });
        Ok(token)
    }

    /// Who `user_token` belongs to; `Ok(None)` when Keystone says it is not valid.
    pub async fn validate(&self, user_token: &str) -> Result<Option<Identity>, AuthError> {
        let now = Instant::now();
        if let Some(hit) = self
            .cache
            .lock()
            .expect("token cache lock")
            .get(user_token, now)
        {
            debug!(valid = hit.is_some(), "token validation from cache");
            return Ok(hit);
        }
        let mut renewed = false;
        loop {
            let service = self.service_token(renewed).await?;
            let resp = self
                .http
                .get(self.url("/auth/tokens?nocatalog"))
                .header("X-Auth-Token", &service)
                .header("X-Subject-Token", user_token)
                .send()
                .await
                .map_err(|e| AuthError::Unreachable(e.to_string()))?;
            let status = resp.status().as_u16();
            match status {
                200 => {
                    let body: TokenBody = resp
                        .json()
                        .await
                        .map_err(|e| AuthError::Protocol(format!("token body: {e}")))?;
                    let (outcome, expires) = identity(body, now)?;
                    self.cache.lock().expect("token cache lock").insert(
                        user_token,
                        outcome.clone(),
                        now,
                        expires,
                    );
                    return Ok(outcome);
                }
                // The service token itself was refused (expired, revoked): renew once.
                401 | 403 if !renewed => {
                    warn!(status, "Keystone refused the service token; renewing it");
                    renewed = true;
                }
                401 | 403 => {
                    return Err(AuthError::ServiceCredentials(format!(
                        "Keystone answers {status} to token validation even with a new \
                         service token: does user {} hold the admin or service role?",
                        self.cfg.username
                    )));
                }
                // The user's token is not valid (Keystone's answer for unknown, expired or
                // revoked subject tokens).
                404 => {
                    self.cache
                        .lock()
                        .expect("token cache lock")
                        .insert(user_token, None, now, None);
                    return Ok(None);
                }
                _ => {
                    let text = resp.text().await.unwrap_or_default();
                    return Err(AuthError::Protocol(format!(
                        "{status} validating a token: {text}"
                    )));
                }
            }
        }
    }
}

/// A validation answer as an identity (or `None` when already expired) and its expiry.
fn identity(
    body: TokenBody,
    now: Instant,
) -> Result<(Option<Identity>, Option<Instant>), AuthError> {
    let t = body.token;
    let (expires, left) = expiry(&t.expires_at, now)
        .ok_or_else(|| AuthError::Protocol(format!("bad expires_at {}", t.expires_at)))?;
    if left.is_zero() {
        return Ok((None, None));
    }
    let user = t
        .user
        .ok_or_else(|| AuthError::Protocol("token without a user".into()))?;
    let roles = t
        .roles
        .into_iter()
        .map(|r| r.name.unwrap_or(r.id))
        .collect();
    Ok((
        Some(Identity {
            user_id: user.id,
            project_id: t.project.map(|p| p.id),
            roles,
        }),
        Some(expires),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_tokens_renew_before_they_expire() {
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(renew_at(t0, hour), t0 + Duration::from_secs(3480));
        let four_min = Duration::from_secs(240);
        assert_eq!(renew_at(t0, four_min), t0 + Duration::from_secs(120));
        // Short-lived: half-way.
        let one_min = Duration::from_secs(60);
        assert_eq!(renew_at(t0, one_min), t0 + Duration::from_secs(30));
        assert_eq!(renew_at(t0, Duration::ZERO), t0);
    }

    #[test]
    fn validation_answers_map_to_identities() {
        let now = Instant::now();
        let later = (OffsetDateTime::now_utc() + time::Duration::hours(1))
            .format(&Rfc3339)
            .unwrap();
        let body: TokenBody = serde_json::from_value(json!({"token": {
            "expires_at": later,
            "user": {"id": "u1", "name": "alice"},
            "project": {"id": "p1", "name": "demo"},
            "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}],
        }}))
        .unwrap();
        let (who, expires) = identity(body, now).unwrap();
        assert_eq!(
            who.unwrap(),
            Identity {
                user_id: "u1".into(),
                project_id: Some("p1".into()),
                roles: vec!["member".into(), "reader".into()],
            }
        );
        let left = expires.unwrap() - now;
        assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600));

        let body: TokenBody = serde_json::from_value(json!({"token": {
            "expires_at": "2000-01-01T00:00:00.000000Z",
            "user": {"id": "u1"},
        }}))
        .unwrap();
        assert_eq!(identity(body, now).unwrap(), (None, None));
        let body: TokenBody =
            serde_json::from_value(json!({"token": {"expires_at": "soon", "user": {"id": "u"}}}))
                .unwrap();
        assert!(identity(body, now).is_err());
    }
}
