//! AMQP 0-9-1 transport over RabbitMQ (lapin). Being written; see the foundation issue.

use std::time::Duration;

use async_trait::async_trait;

use super::{Listener, Message, Reply, RpcError, Target, Transport};

pub struct AmqpTransport;

impl AmqpTransport {
    pub async fn connect(_url: &str, _namespace: &str, _prefetch: u16) -> Result<Self, RpcError> {
        Err(RpcError::Transport("AMQP transport not built yet".into()))
    }
}

#[async_trait]
impl Transport for AmqpTransport {
    async fn cast(&self, _t: &Target, _m: Message) -> Result<(), RpcError> { Err(RpcError::Closed) }
    async fn call(&self, _t: &Target, _m: Message, _d: Duration) -> Result<serde_json::Value, RpcError> { Err(RpcError::Closed) }
    async fn fanout(&self, _t: &str, _m: Message) -> Result<(), RpcError> { Err(RpcError::Closed) }
    async fn reply(&self, _r: &str, _reply: Reply) -> Result<(), RpcError> { Err(RpcError::Closed) }
    async fn listen(&self, _t: &str, _s: &str) -> Result<Listener, RpcError> { Err(RpcError::Closed) }
    fn describe(&self) -> String { "amqp".into() }
}
