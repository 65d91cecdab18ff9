//! Versioned dispatch on the server side: a call names `method` and `version` "X.Y"; it is
//! served when the major matches and the server's minor is at least Y, and answered with an
//! explicit `UnsupportedVersion` error otherwise.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Message, RemoteError, RequestContext};

/// An RPC API version "X.Y".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32) -> Self {
        Version { major, minor }
    }

    /// Can a server at `self` serve a request for `requested`?
    pub fn serves(&self, requested: &Version) -> bool {
        self.major == requested.major && self.minor >= requested.minor
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for Version {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('.')
            .ok_or_else(|| format!("version `{s}` is not of the form X.Y"))?;
        let major = a
            .parse()
            .map_err(|_| format!("version `{s}` has a bad major"))?;
        let minor = b
            .parse()
            .map_err(|_| format!("version `{s}` has a bad minor"))?;
        Ok(Version { major, minor })
    }
}

type Handler = Arc<
    dyn Fn(
            RequestContext,
            serde_json::Value,
        ) -> BoxFuture<'static, Result<serde_json::Value, RemoteError>>
        + Send
        + Sync,
>;

/// The methods one service serves, at one API version.
#[derive(Clone)]
pub struct Dispatcher {
    version: Version,
    handlers: HashMap<String, Handler>,
}

impl Dispatcher {
    pub fn new(version: Version) -> Self {
        Dispatcher {
            version,
            handlers: HashMap::new(),
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// Register `method`; its arguments are decoded from JSON into `A`, its result encoded
    /// from `R`. A handler error string becomes a `HandlerError` reply.
    pub fn register<A, R, F, Fut>(&mut self, method: &str, f: F) -> &mut Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + 'static,
        F: Fn(RequestContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, RemoteError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let method_name = method.to_string();
        let handler: Handler = Arc::new(move |ctx, args| {
            let f = f.clone();
            let method_name = method_name.clone();
            Box::pin(async move {
                let args: A = serde_json::from_value(args).map_err(|e| {
                    RemoteError::new(
                        "BadRequest",
                        format!("arguments of {method_name} do not decode: {e}"),
                    )
                })?;
                let result = f(ctx, args).await?;
                serde_json::to_value(result).map_err(|e| {
                    RemoteError::new(
                        "HandlerError",
                        format!("result of {method_name} does not encode: {e}"),
                    )
                })
            })
        });
        self.handlers.insert(method.to_string(), handler);
        self
    }

    /// Check the version, find the method and run it.
    pub async fn dispatch(&self, msg: &Message) -> Result<serde_json::Value, RemoteError> {
        let requested: Version = msg
            .version
            .parse()
            .map_err(|e: String| RemoteError::new("UnsupportedVersion", e))?;
        if !self.version.serves(&requested) {
            return Err(RemoteError::new(
                "UnsupportedVersion",
                format!(
                    "{} requested version {requested}, this server speaks {}",
                    msg.method, self.version
                ),
            ));
        }
        let handler = self.handlers.get(&msg.method).ok_or_else(|| {
            RemoteError::new(
                "NoSuchMethod",
                format!("no method `{}` at version {}", msg.method, self.version),
            )
        })?;
        handler(msg.context.clone(), msg.args.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(method: &str, version: &str) -> Message {
        Message::new(
            method,
            version,
            serde_json::json!({"x": 2}),
            RequestContext::default(),
        )
    }

    fn dispatcher() -> Dispatcher {
        #[derive(serde::Deserialize)]
        struct Args {
            x: i64,
        }
        let mut d = Dispatcher::new(Version::new(3, 2));
        d.register("double", |_ctx, a: Args| async move { Ok(a.x * 2) });
        d
    }

    #[test]
    fn version_rules() {
        let server = Version::new(3, 2);
        assert!(server.serves(&Version::new(3, 0)));
        assert!(server.serves(&Version::new(3, 2)));
        assert!(
            !server.serves(&Version::new(3, 3)),
            "newer minor must be refused"
        );
        assert!(
            !server.serves(&Version::new(2, 0)),
            "other major must be refused"
        );
        assert!("3".parse::<Version>().is_err());
        assert_eq!("3.14".parse::<Version>().unwrap(), Version::new(3, 14));
    }

    #[tokio::test]
    async fn dispatches_matching_versions_and_refuses_others() {
        let d = dispatcher();
        assert_eq!(
            d.dispatch(&msg("double", "3.1")).await.unwrap(),
            serde_json::json!(4)
        );
        let e = d.dispatch(&msg("double", "3.3")).await.unwrap_err();
        assert_eq!(e.kind, "UnsupportedVersion");
        let e = d.dispatch(&msg("double", "4.0")).await.unwrap_err();
        assert_eq!(e.kind, "UnsupportedVersion");
        let e = d.dispatch(&msg("triple", "3.0")).await.unwrap_err();
        assert_eq!(e.kind, "NoSuchMethod");
    }

    #[tokio::test]
    async fn bad_arguments_are_a_bad_request() {
        let d = dispatcher();
        let mut m = msg("double", "3.0");
        m.args = serde_json::json!({"x": "two"});
        assert_eq!(d.dispatch(&m).await.unwrap_err().kind, "BadRequest");
    }
}
