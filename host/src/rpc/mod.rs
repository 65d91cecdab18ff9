//! RPC between Kiln services: one [`Transport`] abstraction with two implementations —
//! in-process ([`inproc`], the all-in-one default) and AMQP 0-9-1 over RabbitMQ ([`amqp`]).
//!
//! Semantics shared by both (DESIGN.md §4):
//! - `cast`: fire and forget to a work queue. `topic` is shared by every server of the topic
//!   (one of them takes each message); `topic.server` reaches exactly that server.
//! - `call`: like cast, plus a reply routed back by correlation id, or [`RpcError::Timeout`].
//! - `fanout`: broadcast to every server listening on the topic.
//! - every message carries a [`RequestContext`] and an API version "X.Y"; servers dispatch by
//!   method and version in [`dispatch`], clients cap versions in [`client`].
//! - delivery is at-least-once: a message is acknowledged only after its handler returned, so
//!   handlers must be idempotent.

pub mod amqp;
pub mod client;
pub mod dispatch;
pub mod inproc;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use client::RpcClient;
pub use dispatch::{Dispatcher, Version};

/// Who asked, carried in every message so logs and handlers see the original request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestContext {
    pub request_id: String,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
    pub is_admin: bool,
}

impl RequestContext {
    /// A context for work the service starts itself (periodic tasks, start-up).
    pub fn internal() -> Self {
        RequestContext {
            request_id: format!("req-{}", uuid::Uuid::new_v4()),
            user_id: None,
            project_id: None,
            roles: vec!["admin".into()],
            is_admin: true,
        }
    }
}

/// The envelope on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub method: String,
    /// Requested API version, "X.Y".
    pub version: String,
    #[serde(default)]
    pub args: serde_json::Value,
    pub context: RequestContext,
    /// Set on calls: the correlation id the reply must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg_id: Option<String>,
    /// Set on calls: where the reply goes (transport specific).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

impl Message {
    pub fn new(
        method: &str,
        version: &str,
        args: serde_json::Value,
        context: RequestContext,
    ) -> Self {
        Message {
            method: method.to_string(),
            version: version.to_string(),
            args,
            context,
            msg_id: None,
            reply_to: None,
        }
    }
}

/// A reply to a call: the handler's result or the error it raised.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub msg_id: String,
    pub result: Result<serde_json::Value, RemoteError>,
}

/// An error raised on the server side of a call, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RemoteError {
    /// Machine-readable kind: `UnsupportedVersion`, `NoSuchMethod`, `BadRequest`, `HandlerError`.
    pub kind: String,
    pub message: String,
}

impl RemoteError {
    pub fn new(kind: &str, message: impl Into<String>) -> Self {
        RemoteError {
            kind: kind.to_string(),
            message: message.into(),
        }
    }
}

/// Where a cast or call goes: the shared `topic` queue, or `topic.server` when `server` is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub topic: String,
    pub server: Option<String>,
}

impl Target {
    pub fn topic(topic: &str) -> Self {
        Target {
            topic: topic.to_string(),
            server: None,
        }
    }
    pub fn server(topic: &str, server: &str) -> Self {
        Target {
            topic: topic.to_string(),
            server: Some(server.to_string()),
        }
    }
    /// The work-queue name, without the transport's namespace: `topic` or `topic.server`.
    pub fn queue(&self) -> String {
        match &self.server {
            Some(s) => format!("{}.{}", self.topic, s),
            None => self.topic.clone(),
        }
    }
}

/// Failures of the messaging layer, as seen by a caller.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("RPC call {method} to {target} timed out after {timeout:?}; is a {target} service running and up (`kiln status`)?")]
    Timeout {
        method: String,
        target: String,
        timeout: Duration,
    },
    #[error("remote {0}")]
    Remote(#[from] RemoteError),
    #[error("cannot send {method} at version {requested}: the running services only support up to {cap}; finish the upgrade of every service first")]
    VersionCapped {
        method: String,
        requested: String,
        cap: String,
    },
    #[error("message transport failed: {0}; check the messaging.url setting and that the broker is reachable")]
    Transport(String),
    #[error("cannot encode or decode an RPC message: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("the transport is shut down")]
    Closed,
}

/// How a received message is settled once its handler has finished.
#[async_trait]
pub trait Acknowledger: Send + Sync {
    /// The handler finished (successfully or with an error reply): drop the message.
    async fn ack(self: Box<Self>);
    /// The service is stopping before the handler ran: give the message back to the queue.
    async fn requeue(self: Box<Self>);
}

/// One received message with the means to settle it.
pub struct Incoming {
    pub message: Message,
    pub acker: Box<dyn Acknowledger>,
}

/// A subscription of one server: its `topic` and `topic.server` work queues and the topic's
/// fanout, merged into one stream. Dropping it or calling [`Listener::close`] stops consuming;
/// messages not yet taken stay in their (durable) queues.
pub struct Listener {
    pub(crate) rx: tokio::sync::mpsc::Receiver<Incoming>,
    pub(crate) close: Option<Box<dyn FnOnce() + Send>>,
}

impl Listener {
    /// Build a listener from a channel that the transport feeds and a hook that stops feeding it.
    pub fn new(rx: tokio::sync::mpsc::Receiver<Incoming>, close: Box<dyn FnOnce() + Send>) -> Self {
        Listener {
            rx,
            close: Some(close),
        }
    }

    /// The next message, or `None` once the listener is closed and drained.
    pub async fn next(&mut self) -> Option<Incoming> {
        self.rx.recv().await
    }

    /// Stop consuming: the transport stops feeding; already-buffered messages are requeued.
    pub async fn close(&mut self) {
        if let Some(close) = self.close.take() {
            close();
        }
        self.rx.close();
        while let Some(incoming) = self.rx.recv().await {
            incoming.acker.requeue().await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(close) = self.close.take() {
            close();
        }
    }
}

/// The messaging transport. Implementations: [`inproc::InProcTransport`], [`amqp::AmqpTransport`].
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Deliver `msg` to one server of `target`; returns once the transport has accepted it
    /// (AMQP: the broker confirmed it, retrying across reconnects).
    async fn cast(&self, target: &Target, msg: Message) -> Result<(), RpcError>;
    /// Deliver `msg` and wait up to `timeout` for the reply.
    async fn call(
        &self,
        target: &Target,
        msg: Message,
        timeout: Duration,
    ) -> Result<serde_json::Value, RpcError>;
    /// Deliver `msg` to every server currently listening on `topic`.
    async fn fanout(&self, topic: &str, msg: Message) -> Result<(), RpcError>;
    /// Send the reply of a call to `reply_to`.
    async fn reply(&self, reply_to: &str, reply: Reply) -> Result<(), RpcError>;
    /// Subscribe `server` to `topic`, `topic.server` and the `topic` fanout.
    async fn listen(&self, topic: &str, server: &str) -> Result<Listener, RpcError>;
    /// Human-readable name for logs ("inproc", "amqp://host:port").
    fn describe(&self) -> String;
}

/// Open the transport named by `messaging.url`.
pub async fn connect(
    url: &str,
    namespace: &str,
    prefetch: u16,
) -> Result<Arc<dyn Transport>, RpcError> {
    if url.starts_with("inproc://") {
        Ok(Arc::new(inproc::InProcTransport::new()))
    } else if url.starts_with("amqp://") {
        Ok(Arc::new(
            amqp::AmqpTransport::connect(url, namespace, prefetch).await?,
        ))
    } else {
        Err(RpcError::Transport(format!(
            "unsupported messaging url `{url}`"
        )))
    }
}
