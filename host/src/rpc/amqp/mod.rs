//! AMQP 0-9-1 transport over RabbitMQ (lapin). Owns the broker topology of one namespace —
//! durable work queues `{ns}.{topic}` and `{ns}.{topic}.{server}` on the default exchange,
//! durable fanout exchanges `{ns}.{topic}_fanout` with one exclusive queue per listener, and
//! one exclusive reply queue `{ns}.reply_{uuid}` per transport — and the delivery guarantees:
//! persistent messages, publisher confirms with retry across reconnects, and acks only after
//! the handler finished, so nothing accepted is lost when a service or the broker restarts
//! (at-least-once; duplicates are possible).
//!
//! [`connection`] keeps the one connection alive (reconnecting with back-off); [`listener`]
//! runs the consumers; this file publishes.

mod connection;
mod listener;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Confirmation, ErrorKind, ExchangeKind};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{info, warn};

use self::connection::{BrokerAddress, KeepAlive, Live, Shared, BACKOFF_START};
use super::{Listener, Message, Reply, RpcError, Target, Transport};

/// How long a cast, fanout or `listen` keeps retrying through broker outages before failing.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(300);
/// How long a reply keeps retrying; the caller has usually given up by then.
const REPLY_DEADLINE: Duration = Duration::from_secs(60);
/// How long `connect` waits for the first connection.
const CONNECT_DEADLINE: Duration = Duration::from_secs(300);
/// One publish attempt waits this long for the broker's confirm before trying again.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause between two publish attempts.
const RETRY_PAUSE_MAX: Duration = Duration::from_secs(1);

/// The AMQP transport: one connection, supervised. The connection is closed once the
/// transport, its listeners and their unsettled deliveries are all dropped (or at
/// [`AmqpTransport::shutdown`]); unacked deliveries then go back to their queues.
pub struct AmqpTransport {
    shared: Arc<Shared>,
    alive: Arc<KeepAlive>,
}

impl AmqpTransport {
    /// Connect to the broker at `url`, retrying with back-off for up to 5 minutes while it is
    /// unreachable. A malformed URL fails at once.
    pub async fn connect(url: &str, namespace: &str, prefetch: u16) -> Result<Self, RpcError> {
        let addr = BrokerAddress::parse(url)?;
        let shared = Arc::new(Shared::new(addr, namespace, prefetch));
        tokio::spawn(connection::supervise(shared.clone()));
        // On failure `transport` is dropped, which stops the supervisor.
        let transport = AmqpTransport {
            alive: Arc::new(KeepAlive(shared.clone())),
            shared,
        };
        transport
            .shared
            .wait_live(Some(Instant::now() + CONNECT_DEADLINE))
            .await?;
        Ok(transport)
    }

    /// Close the connection now, even while other handles exist (as when the process exits).
    /// Every later operation fails with [`RpcError::Closed`].
    pub fn shutdown(&self) {
        self.shared.shutdown();
    }

    async fn publish(
        &self,
        route: Route<'_>,
        body: &[u8],
        properties: BasicProperties,
        deadline: Instant,
    ) -> Result<(), RpcError> {
        let mut attempt = 1u32;
        let mut pause = BACKOFF_START;
        loop {
            let live = self
                .shared
                .wait_live(Some(deadline))
                .await
                .map_err(|e| match e {
                    RpcError::Transport(reason) => RpcError::Transport(format!(
                        "cannot publish to {}: {reason}",
                        route.describe()
                    )),
                    other => other,
                })?;
            let outcome = tokio::time::timeout(
                CONFIRM_TIMEOUT,
                try_publish(&live, &route, body, properties.clone()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Failure::Retry(format!(
                    "no publisher confirm within {CONFIRM_TIMEOUT:?}"
                )))
            });
            let reason = match outcome {
                Ok(()) => {
                    if attempt > 1 {
                        info!(destination = %route.describe(), attempt, "published after retrying");
                    }
                    return Ok(());
                }
                Err(Failure::Fatal(reason)) => {
                    return Err(RpcError::Transport(format!(
                        "cannot publish to {}: {reason}",
                        route.describe()
                    )));
                }
                Err(Failure::Retry(reason)) => reason,
            };
            self.shared.report_broken();
            if Instant::now() + pause >= deadline {
                return Err(RpcError::Transport(format!(
                    "cannot publish to {} after {attempt} attempts: {reason}",
                    route.describe()
                )));
            }
            warn!(destination = %route.describe(), attempt, error = %reason, retry_in_ms = pause.as_millis() as u64, "publishing to the message broker failed; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_PAUSE_MAX);
            attempt += 1;
        }
    }
}

/// Where a publish goes.
enum Route<'a> {
    /// A durable work queue, declared first (cached per connection), via the default exchange.
    Queue(&'a str),
    /// A durable fanout exchange, declared first.
    Fanout(&'a str),
    /// A reply queue via the default exchange; if it is gone the reply is dropped.
    Reply(&'a str),
}

impl Route<'_> {
    fn describe(&self) -> String {
        match self {
            Route::Queue(q) => format!("queue {q}"),
            Route::Fanout(x) => format!("exchange {x}"),
            Route::Reply(q) => format!("reply queue {q}"),
        }
    }
}

enum Failure {
    /// Worth retrying, possibly on the next connection.
    Retry(String),
    /// Retrying cannot help (permissions, inequivalent declarations).
    Fatal(String),
}

impl From<lapin::Error> for Failure {
    fn from(e: lapin::Error) -> Self {
        if is_fatal(&e) {
            Failure::Fatal(e.to_string())
        } else {
            Failure::Retry(e.to_string())
        }
    }
}

/// Broker refusals that no reconnect will change.
fn is_fatal(e: &lapin::Error) -> bool {
    matches!(e.kind(), ErrorKind::ProtocolError(amqp) if matches!(
        amqp.kind(),
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED | AMQPSoftError::PRECONDITIONFAILED)
    ))
}

/// One publish attempt on the current connection: declare if needed, publish, await the confirm.
async fn try_publish(
    live: &Live,
    route: &Route<'_>,
    body: &[u8],
    properties: BasicProperties,
) -> Result<(), Failure> {
    let channel = live.publisher().await?;
    let (exchange, routing_key, mandatory) = match route {
        Route::Queue(queue) => {
            if !live.is_declared(queue) {
                let durable = QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                };
                channel
                    .queue_declare((*queue).into(), durable, FieldTable::default())
                    .await?;
                live.mark_declared(queue);
            }
            ("", *queue, true)
        }
        Route::Fanout(exchange) => {
            if !live.is_declared(exchange) {
                let durable = ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                };
                channel
                    .exchange_declare(
                        (*exchange).into(),
                        ExchangeKind::Fanout,
                        durable,
                        FieldTable::default(),
                    )
                    .await?;
                live.mark_declared(exchange);
            }
            (*exchange, "", false)
        }
        Route::Reply(queue) => ("", *queue, false),
    };
    let options = BasicPublishOptions {
        mandatory,
        ..Default::default()
    };
    let confirmation = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            options,
            body,
            properties,
        )
        .await?
        .await?;
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(returned)) => {
            // The queue vanished after we declared it (deleted by an operator): declare again.
            live.forget_declared(routing_key);
            Err(Failure::Retry(format!(
                "the broker returned the message: {}",
                returned.reply_text
            )))
        }
        Confirmation::Nack(_) => Err(Failure::Retry(
            "the broker refused (nacked) the message".into(),
        )),
    }
}

fn json_properties() -> BasicProperties {
    BasicProperties::default().with_content_type("application/json".into())
}

/// Removes a call's reply slot however the call ends (reply, timeout, error, cancellation).
struct PendingSlot<'a> {
    shared: &'a Shared,
    msg_id: String,
}

impl Drop for PendingSlot<'_> {
    fn drop(&mut self) {
        self.shared.take_pending(&self.msg_id);
    }
}

#[async_trait]
impl Transport for AmqpTransport {
    async fn cast(&self, target: &Target, msg: Message) -> Result<(), RpcError> {
        let body = serde_json::to_vec(&msg)?;
        let queue = self.shared.name(&target.queue());
        let properties = json_properties().with_delivery_mode(2);
        self.publish(
            Route::Queue(&queue),
            &body,
            properties,
            Instant::now() + PUBLISH_DEADLINE,
        )
        .await
    }

    async fn call(
        &self,
        target: &Target,
        mut msg: Message,
        timeout: Duration,
    ) -> Result<serde_json::Value, RpcError> {
        let deadline = Instant::now() + timeout;
        let msg_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.shared
            .pending
            .lock()
            .expect("pending map poisoned")
            .insert(msg_id.clone(), tx);
        let _slot = PendingSlot {
            shared: &self.shared,
            msg_id: msg_id.clone(),
        };
        msg.msg_id = Some(msg_id.clone());
        msg.reply_to = Some(self.shared.reply_queue.clone());
        let method = msg.method.clone();
        let body = serde_json::to_vec(&msg)?;
        let queue = self.shared.name(&target.queue());
        // A call nobody took before the caller gave up expires instead of running late.
        let properties = json_properties()
            .with_delivery_mode(2)
            .with_correlation_id(msg_id.as_str().into())
            .with_reply_to(self.shared.reply_queue.as_str().into())
            .with_expiration(timeout.as_millis().max(1).to_string().into());
        let timed_out = || RpcError::Timeout {
            method: method.clone(),
            target: target.queue(),
            timeout,
        };
        // The whole call, publishing included, is bounded by `timeout`.
        let publish = self.publish(Route::Queue(&queue), &body, properties, deadline);
        tokio::time::timeout_at(deadline, publish)
            .await
            .map_err(|_| timed_out())??;
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(reply)) => reply.result.map_err(RpcError::Remote),
            Ok(Err(_)) => Err(RpcError::Closed),
            Err(_) => Err(timed_out()),
        }
    }

    async fn fanout(&self, topic: &str, msg: Message) -> Result<(), RpcError> {
        let body = serde_json::to_vec(&msg)?;
        let exchange = listener::fanout_exchange(&self.shared, topic);
        self.publish(
            Route::Fanout(&exchange),
            &body,
            json_properties(),
            Instant::now() + PUBLISH_DEADLINE,
        )
        .await
    }

    async fn reply(&self, reply_to: &str, reply: Reply) -> Result<(), RpcError> {
        let body = serde_json::to_vec(&reply)?;
        let properties = json_properties().with_correlation_id(reply.msg_id.as_str().into());
        self.publish(
            Route::Reply(reply_to),
            &body,
            properties,
            Instant::now() + REPLY_DEADLINE,
        )
        .await
    }

    async fn listen(&self, topic: &str, server: &str) -> Result<Listener, RpcError> {
        listener::listen(
            self.alive.clone(),
            topic,
            server,
            Instant::now() + PUBLISH_DEADLINE,
        )
        .await
    }

    fn describe(&self) -> String {
        self.shared.addr.display.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::connection::BrokerAddress;

    #[test]
    fn describe_hides_credentials() {
        let a = BrokerAddress::parse("amqp://kiln:s3cret@broker.example:5673/%2f").unwrap();
        assert_eq!(a.display, "amqp://broker.example:5673/%2f");
        assert_eq!(a.host_port, "broker.example:5673");
        let a = BrokerAddress::parse("amqp://kiln:s3cret@broker.example/prod").unwrap();
        assert_eq!(a.display, "amqp://broker.example:5672/prod");
        assert!(!a.display.contains("s3cret"));
    }

    #[test]
    fn malformed_url_is_a_transport_error_without_the_password() {
        let Err(e) = BrokerAddress::parse("amqp://kiln:s3cret@:notaport/") else {
            panic!("a malformed url must be refused");
        };
        assert!(matches!(e, super::RpcError::Transport(_)));
        assert!(!e.to_string().contains("s3cret"));
    }
}
