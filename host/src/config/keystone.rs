//! The `[keystone]` table: where Keystone is, the service credentials the API validates user
//! tokens with, and the validation cache. Used when `api.auth_strategy = "keystone"`.

use serde::{Deserialize, Serialize};

use super::{invalid, ConfigError};

/// Keystone (identity v3) settings of the API service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeystoneConfig {
    /// Keystone's v3 endpoint, e.g. `http://127.0.0.1:5000/v3`.
    pub auth_url: String,
    /// Sent to clients in `WWW-Authenticate: Keystone uri="..."` on 401; defaults to
    /// `auth_url` without its `/v3` suffix.
    pub www_authenticate_uri: Option<String>,
    /// The service user validating tokens (needs the `admin` or `service` role).
    pub username: String,
    pub password: String,
    /// The project the service token is scoped to.
    pub project_name: String,
    pub user_domain_name: String,
    pub project_domain_name: String,
    /// Seconds a validated (or rejected) user token is remembered; 0 disables the cache.
    pub cache_ttl: u64,
    /// Tokens remembered at most; the oldest are dropped first.
    pub cache_size: usize,
    /// Seconds a request to Keystone may take.
    pub timeout: u64,
}

impl Default for KeystoneConfig {
    fn default() -> Self {
        KeystoneConfig {
            auth_url: "http://127.0.0.1:5000/v3".into(),
            www_authenticate_uri: None,
            username: "cinder".into(),
            password: String::new(),
            project_name: "service".into(),
            user_domain_name: "Default".into(),
            project_domain_name: "Default".into(),
            cache_ttl: 300,
            cache_size: 10_000,
            timeout: 10,
        }
    }
}

impl KeystoneConfig {
    /// `www_authenticate_uri`, or `auth_url` without a trailing `/v3`.
    pub fn www_authenticate_uri(&self) -> String {
        self.www_authenticate_uri.clone().unwrap_or_else(|| {
            let url = self.auth_url.trim_end_matches('/');
            url.strip_suffix("/v3").unwrap_or(url).to_string()
        })
    }

    /// Rules checked when Keystone is the auth strategy.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.auth_url.starts_with("http://") || self.auth_url.starts_with("https://")) {
            return Err(invalid(
                "keystone.auth_url",
                format!("`{}` is not an http(s):// URL", self.auth_url),
            ));
        }
        if self.auth_url.starts_with("https://") {
            return Err(invalid(
                "keystone.auth_url",
                "https is not supported by this build (no TLS stack); use http:// or a local proxy",
            ));
        }
        for (key, value) in [
            ("keystone.username", &self.username),
            ("keystone.password", &self.password),
            ("keystone.project_name", &self.project_name),
            ("keystone.user_domain_name", &self.user_domain_name),
            ("keystone.project_domain_name", &self.project_domain_name),
        ] {
            if value.is_empty() {
                return Err(invalid(
                    key,
                    "must be set when api.auth_strategy = \"keystone\"",
                ));
            }
        }
        if self.timeout == 0 {
            return Err(invalid("keystone.timeout", "must be at least 1 second"));
        }
        if self.cache_ttl > 0 && self.cache_size == 0 {
            return Err(invalid(
                "keystone.cache_size",
                "must be at least 1 while cache_ttl is not 0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticate_uri_defaults_to_the_unversioned_auth_url() {
        let mut k = KeystoneConfig {
            auth_url: "http://ks:5000/v3/".into(),
            password: "x".into(),
            ..Default::default()
        };
        assert_eq!(k.www_authenticate_uri(), "http://ks:5000");
        k.validate().unwrap();
        k.www_authenticate_uri = Some("http://public/identity".into());
        assert_eq!(k.www_authenticate_uri(), "http://public/identity");
        k.password.clear();
        assert!(k.validate().is_err());
        k.password = "x".into();
        k.auth_url = "ks:5000".into();
        assert!(k.validate().is_err());
    }
}
