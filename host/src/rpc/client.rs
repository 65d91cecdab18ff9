//! The client side of RPC for one topic: builds messages, enforces the version cap, and
//! sends casts, calls and fanouts through the transport.
//!
//! The cap is the minimum RPC version recorded by the services of the target binary (set by
//! the service layer from the services table), so during a rolling upgrade new clients never
//! send a version that an old server cannot serve.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Message, RequestContext, RpcError, Target, Transport, Version};

#[derive(Clone)]
pub struct RpcClient {
    transport: Arc<dyn Transport>,
    topic: String,
    cap: Arc<ArcSwapOption<Version>>,
    timeout: Duration,
}

impl RpcClient {
    pub fn new(transport: Arc<dyn Transport>, topic: &str, timeout: Duration) -> Self {
        RpcClient {
            transport,
            topic: topic.to_string(),
            cap: Arc::new(ArcSwapOption::empty()),
            timeout,
        }
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Cap the versions this client sends; `None` removes the cap.
    pub fn set_version_cap(&self, cap: Option<Version>) {
        self.cap.store(cap.map(Arc::new));
    }

    pub fn version_cap(&self) -> Option<Version> {
        self.cap.load_full().map(|v| *v)
    }

    /// Whether a message at `version` may be sent under the current cap.
    pub fn can_send_version(&self, version: Version) -> bool {
        match self.version_cap() {
            Some(cap) => cap.serves(&version),
            None => true,
        }
    }

    fn build(
        &self,
        ctx: &RequestContext,
        method: &str,
        version: Version,
        args: impl Serialize,
    ) -> Result<Message, RpcError> {
        if !self.can_send_version(version) {
            return Err(RpcError::VersionCapped {
                method: method.to_string(),
                requested: version.to_string(),
                cap: self
                    .version_cap()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            });
        }
        Ok(Message::new(
            method,
            &version.to_string(),
            serde_json::to_value(args)?,
            ctx.clone(),
        ))
    }

    fn target(&self, server: Option<&str>) -> Target {
        match server {
            Some(s) => Target::server(&self.topic, s),
            None => Target::topic(&self.topic),
        }
    }

    /// Fire and forget to one server of the topic (or exactly `server`).
    pub async fn cast(
        &self,
        ctx: &RequestContext,
        server: Option<&str>,
        method: &str,
        version: Version,
        args: impl Serialize,
    ) -> Result<(), RpcError> {
        let msg = self.build(ctx, method, version, args)?;
        self.transport.cast(&self.target(server), msg).await
    }

    /// Request and reply, within the configured timeout.
    pub async fn call<R: DeserializeOwned>(
        &self,
        ctx: &RequestContext,
        server: Option<&str>,
        method: &str,
        version: Version,
        args: impl Serialize,
    ) -> Result<R, RpcError> {
        self.call_with_timeout(ctx, server, method, version, args, self.timeout)
            .await
    }

    pub async fn call_with_timeout<R: DeserializeOwned>(
        &self,
        ctx: &RequestContext,
        server: Option<&str>,
        method: &str,
        version: Version,
        args: impl Serialize,
        timeout: Duration,
    ) -> Result<R, RpcError> {
        let msg = self.build(ctx, method, version, args)?;
        let value = self
            .transport
            .call(&self.target(server), msg, timeout)
            .await?;
        Ok(serde_json::from_value(value)?)
    }

    /// Broadcast to every server of the topic.
    pub async fn fanout(
        &self,
        ctx: &RequestContext,
        method: &str,
        version: Version,
        args: impl Serialize,
    ) -> Result<(), RpcError> {
        let msg = self.build(ctx, method, version, args)?;
        self.transport.fanout(&self.topic, msg).await
    }
}
