//! Microversion negotiation (Cinder's `OpenStack-API-Version: volume X.Y`, and the legacy
//! `OpenStack-Volume-microversion: X.Y`): no header → 3.0, `latest` → [`MAX`], a version
//! outside [`MIN`]..=[`MAX`] → 406, a malformed one → 400, both with Cinder's messages. The
//! middleware stores the negotiated [`ApiVersion`] in the request extensions, where handlers
//! read it with the [`Microversion`] extractor, and stamps every negotiated response with
//! `OpenStack-API-Version` and `Vary: OpenStack-API-Version`.

use std::fmt;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

pub const HEADER: &str = "openstack-api-version";
pub const LEGACY_HEADER: &str = "openstack-volume-microversion";
const SERVICE_TYPE: &str = "volume";

/// The oldest microversion served.
pub const MIN: ApiVersion = ApiVersion::new(3, 0);
/// The newest microversion served (Cinder 2023.2+: 3.71 "os-extend_volume_completion").
pub const MAX: ApiVersion = ApiVersion::new(3, 71);

/// A v3 microversion `major.minor`; ordered major first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }

    /// True when this is 3.`minor` or newer: the gate of a feature added in 3.`minor`.
    pub fn at_least(&self, minor: u32) -> bool {
        *self >= ApiVersion::new(3, minor)
    }

    /// Cinder's format: `^([1-9]\d*)\.([1-9]\d*|0)$` (no leading zeros, no sign, no spaces).
    pub fn parse(s: &str) -> Result<Self, MicroversionError> {
        let malformed = || MicroversionError::Malformed(s.to_string());
        let (major, minor) = s.split_once('.').ok_or_else(malformed)?;
        let number = |part: &str, zero_ok: bool| -> Option<u32> {
            let digits_only = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            let leading_zero = part.len() > 1 && part.starts_with('0');
            if !digits_only || leading_zero || (!zero_ok && part == "0") {
                return None;
            }
            part.parse().ok()
        };
        match (number(major, false), number(minor, true)) {
            (Some(major), Some(minor)) => Ok(ApiVersion { major, minor }),
            _ => Err(malformed()),
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a requested microversion cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MicroversionError {
    #[error("API Version String {0} is of invalid format. Must be of format MajorNum.MinorNum.")]
    Malformed(String),
    #[error("Version {0} is not supported by the API. Minimum is {MIN} and maximum is {MAX}.")]
    Unsupported(ApiVersion),
}

impl From<MicroversionError> for ApiError {
    fn from(e: MicroversionError) -> Self {
        match e {
            MicroversionError::Malformed(_) => ApiError::BadRequest(e.to_string()),
            MicroversionError::Unsupported(_) => ApiError::NotAcceptable(e.to_string()),
        }
    }
}

/// The version string the client asked for, like `microversion_parse.get_version`: the
/// `volume` entry of the (possibly repeated, comma-separated) `OpenStack-API-Version`
/// header, else the legacy header; `None` when neither names one.
fn requested(headers: &HeaderMap) -> Option<String> {
    let standard = headers
        .get_all(HEADER)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|entry| {
            let mut words = entry.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(service), Some(version), None)
                    if service.eq_ignore_ascii_case(SERVICE_TYPE) =>
                {
                    Some(version.to_string())
                }
                _ => None,
            }
        });
    standard.or_else(|| {
        headers
            .get(LEGACY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    })
}

/// The microversion a request is served at.
pub fn negotiate(headers: &HeaderMap) -> Result<ApiVersion, MicroversionError> {
    let Some(asked) = requested(headers) else {
        return Ok(MIN);
    };
    if asked.eq_ignore_ascii_case("latest") {
        return Ok(MAX);
    }
    let version = ApiVersion::parse(&asked)?;
    if version < MIN || version > MAX {
        return Err(MicroversionError::Unsupported(version));
    }
    Ok(version)
}

/// Middleware: negotiate, expose the version to handlers, stamp the response.
pub async fn middleware(mut req: Request, next: Next) -> Response {
    let version = match negotiate(req.headers()) {
        Ok(v) => v,
        Err(e) => {
            tracing::debug!(error = %e, "microversion refused");
            let mut resp = ApiError::from(e).into_response();
            resp.headers_mut()
                .insert("vary", HeaderValue::from_static("OpenStack-API-Version"));
            return resp;
        }
    };
    req.extensions_mut().insert(version);
    let mut resp = next.run(req).await;
    let value = HeaderValue::from_str(&format!("{SERVICE_TYPE} {version}"))
        .expect("a version is a valid header value");
    resp.headers_mut().insert(HEADER, value);
    resp.headers_mut()
        .insert("vary", HeaderValue::from_static("OpenStack-API-Version"));
    resp
}

/// The negotiated microversion of the request (3.0 when the middleware did not run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Microversion(pub ApiVersion);

impl Microversion {
    pub fn at_least(&self, minor: u32) -> bool {
        self.0.at_least(minor)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Microversion {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Microversion(
            parts.extensions.get::<ApiVersion>().copied().unwrap_or(MIN),
        ))
    }
}

/// 404 like Cinder's `VersionNotFoundForAPIMethod` unless the request is at 3.`minor` or newer.
pub fn require(version: Microversion, minor: u32) -> Result<(), ApiError> {
    if version.at_least(minor) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "API version {} is not supported on this method.",
            version.0
        )))
    }
}

/// Resources that exist only from a microversion on: `(path pattern without the
/// /v3[/{project_id}] prefix, minor)`, patterns as in `policy.rs`.
const GATES: &[(&str, u32)] = &[
    ("/messages/**", 3),
    ("/clusters/**", 7),
    ("/manageable_volumes/**", 8),
    ("/manageable_snapshots/**", 8),
    ("/group_types/**", 11),
    ("/volumes/summary", 12),
    ("/groups/**", 13),
    ("/group_snapshots/**", 14),
    ("/workers/**", 24),
    ("/attachments/**", 27),
    ("/resource_filters", 33),
    ("/volume-transfers/**", 55),
    ("/default-types/**", 62),
];

/// The microversion a route needs, from its matched path (e.g. `/v3/{project_id}/messages`).
pub fn gate_of(matched: &str) -> Option<u32> {
    let rest = matched
        .strip_prefix("/v3/{project_id}")
        .or_else(|| matched.strip_prefix("/v3"))?;
    GATES
        .iter()
        .find(|(pattern, _)| super::policy::matches(pattern, rest))
        .map(|(_, minor)| *minor)
}

/// Route middleware: 404 for a resource newer than the request's microversion.
pub async fn gate(req: Request, next: Next) -> Response {
    let needed = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .and_then(|m| gate_of(m.as_str()));
    let version = req.extensions().get::<ApiVersion>().copied().unwrap_or(MIN);
    if let Some(minor) = needed {
        if let Err(e) = require(Microversion(version), minor) {
            return e.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn parses_cinder_version_strings() {
        assert_eq!(ApiVersion::parse("3.0").unwrap(), ApiVersion::new(3, 0));
        assert_eq!(ApiVersion::parse("3.71").unwrap(), ApiVersion::new(3, 71));
        assert_eq!(ApiVersion::parse("10.10").unwrap(), ApiVersion::new(10, 10));
        for bad in [
            "3", "3.", ".1", "3.05", "03.1", "0.1", "3.1.2", "a.b", "3.-1", " 3.1", "3.x", "",
        ] {
            assert!(
                ApiVersion::parse(bad).is_err(),
                "{bad:?} should be malformed"
            );
        }
        assert!(ApiVersion::new(3, 9) < ApiVersion::new(3, 10));
        assert!(ApiVersion::new(3, 71) < ApiVersion::new(4, 0));
        assert_eq!(ApiVersion::new(3, 7).to_string(), "3.7");
    }

    #[test]
    fn negotiates_like_cinder() {
        assert_eq!(negotiate(&headers(&[])).unwrap(), MIN);
        let std = |v: &str| negotiate(&headers(&[("OpenStack-API-Version", v)]));
        assert_eq!(std("volume 3.27").unwrap(), ApiVersion::new(3, 27));
        assert_eq!(std("volume latest").unwrap(), MAX);
        assert_eq!(std("VOLUME 3.5").unwrap(), ApiVersion::new(3, 5));
        // Another service's entry only: as if absent.
        assert_eq!(std("compute 2.1").unwrap(), MIN);
        assert_eq!(
            std("compute 2.1, volume 3.40").unwrap(),
            ApiVersion::new(3, 40)
        );
        assert_eq!(
            std("volume 3.72"),
            Err(MicroversionError::Unsupported(ApiVersion::new(3, 72)))
        );
        assert_eq!(
            std("volume 2.0"),
            Err(MicroversionError::Unsupported(ApiVersion::new(2, 0)))
        );
        assert_eq!(
            std("volume 3.a"),
            Err(MicroversionError::Malformed("3.a".into()))
        );
        let legacy = |v: &str| negotiate(&headers(&[("OpenStack-Volume-microversion", v)]));
        assert_eq!(legacy("3.12").unwrap(), ApiVersion::new(3, 12));
        assert_eq!(legacy("latest").unwrap(), MAX);
        assert!(matches!(
            legacy("3.1000"),
            Err(MicroversionError::Unsupported(_))
        ));
        // The standard header wins over the legacy one.
        let both = headers(&[
            ("OpenStack-API-Version", "volume 3.3"),
            ("OpenStack-Volume-microversion", "3.9"),
        ]);
        assert_eq!(negotiate(&both).unwrap(), ApiVersion::new(3, 3));
        // Repeated headers are folded.
        let repeated = headers(&[
            ("OpenStack-API-Version", "compute 2.5"),
            ("OpenStack-API-Version", "volume 3.44"),
        ]);
        assert_eq!(negotiate(&repeated).unwrap(), ApiVersion::new(3, 44));
    }

    #[test]
    fn messages_are_cinders() {
        assert_eq!(
            MicroversionError::Unsupported(ApiVersion::new(3, 99)).to_string(),
            "Version 3.99 is not supported by the API. Minimum is 3.0 and maximum is 3.71."
        );
        assert!(Microversion(ApiVersion::new(3, 12)).at_least(12));
        assert!(!Microversion(ApiVersion::new(3, 11)).at_least(12));
        assert!(require(Microversion(ApiVersion::new(3, 2)), 3).is_err());
        assert_eq!(gate_of("/v3/{project_id}/messages"), Some(3));
        assert_eq!(gate_of("/v3/messages/{id}"), Some(3));
        assert_eq!(gate_of("/v3/{project_id}/volumes/summary"), Some(12));
        assert_eq!(
            gate_of("/v3/{project_id}/attachments/{id}/action"),
            Some(27)
        );
        assert_eq!(gate_of("/v3/{project_id}/volumes/{id}"), None);
        assert_eq!(gate_of("/"), None);
    }
}
