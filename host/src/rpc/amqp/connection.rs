//! The one broker connection of an [`super::AmqpTransport`]: a supervisor task connects with
//! exponential back-off, declares and consumes the transport's reply queue, publishes each
//! live connection as a new generation on a `watch` channel, and tears it down once it is
//! lost. Also owns the per-connection publishing channel (publisher confirms) and the cache
//! of queues and exchanges already declared on that connection.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicConsumeOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{Channel, Connection, ConnectionProperties, Consumer, Event};
use tokio::sync::{oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::rpc::{Reply, RpcError};

/// First pause after a failed connection attempt; doubled on each failure up to [`BACKOFF_MAX`].
pub(super) const BACKOFF_START: Duration = Duration::from_millis(100);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// One connection attempt (TCP + AMQP handshake + reply queue) may take this long.
const CONNECT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the supervisor re-checks the connection state even without a wake-up.
const STATUS_POLL: Duration = Duration::from_secs(1);

/// Where the broker is. `uri` carries the credentials and is never logged; `display` and
/// `host_port` are safe for logs and error messages.
pub(super) struct BrokerAddress {
    uri: String,
    pub display: String,
    pub host_port: String,
}

impl BrokerAddress {
    pub fn parse(url: &str) -> Result<Self, RpcError> {
        // The parser's message never echoes the URL, so the password cannot leak through it.
        let parsed: AMQPUri = url
            .parse()
            .map_err(|e| RpcError::Transport(format!("malformed messaging url: {e}")))?;
        let host_port = format!("{}:{}", parsed.authority.host, parsed.authority.port);
        let vhost = parsed.vhost.replace('%', "%25").replace('/', "%2f");
        Ok(BrokerAddress {
            uri: url.to_string(),
            display: format!("amqp://{host_port}/{vhost}"),
            host_port,
        })
    }
}

/// One established connection and what hangs off it.
pub(super) struct Live {
    pub generation: u64,
    pub conn: Connection,
    publisher: tokio::sync::Mutex<Option<Channel>>,
    declared: Mutex<HashSet<String>>,
}

impl Live {
    fn new(generation: u64, conn: Connection) -> Self {
        Live {
            generation,
            conn,
            publisher: tokio::sync::Mutex::new(None),
            declared: Mutex::new(HashSet::new()),
        }
    }

    /// The connection is still up as far as the client knows.
    pub fn usable(&self) -> bool {
        self.conn.status().connected()
    }

    /// The publishing channel in confirm mode, re-opened if a channel error closed it.
    pub async fn publisher(&self) -> Result<Channel, lapin::Error> {
        let mut slot = self.publisher.lock().await;
        if let Some(channel) = slot.as_ref() {
            if channel.status().connected() {
                return Ok(channel.clone());
            }
        }
        let channel = self.conn.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        *slot = Some(channel.clone());
        Ok(channel)
    }

    pub fn is_declared(&self, name: &str) -> bool {
        self.declared
            .lock()
            .expect("declared set poisoned")
            .contains(name)
    }

    pub fn mark_declared(&self, name: &str) {
        self.declared
            .lock()
            .expect("declared set poisoned")
            .insert(name.to_string());
    }

    pub fn forget_declared(&self, name: &str) {
        self.declared
            .lock()
            .expect("declared set poisoned")
            .remove(name);
    }
}

/// State shared by the transport handle, the supervisor and the listener tasks.
pub(super) struct Shared {
    pub addr: BrokerAddress,
    pub namespace: String,
    pub prefetch: u16,
    /// This transport's reply queue; the same name is re-declared on every connection.
    pub reply_queue: String,
    /// Calls waiting for their reply, by correlation id.
    pub pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    live: watch::Sender<Option<Arc<Live>>>,
    shutdown: watch::Sender<bool>,
    broken: Notify,
}

impl Shared {
    pub fn new(addr: BrokerAddress, namespace: &str, prefetch: u16) -> Self {
        Shared {
            addr,
            namespace: namespace.to_string(),
            prefetch: prefetch.max(1),
            reply_queue: format!("{namespace}.reply_{}", uuid::Uuid::new_v4().simple()),
            pending: Mutex::new(HashMap::new()),
            live: watch::channel(None).0,
            shutdown: watch::channel(false).0,
            broken: Notify::new(),
        }
    }

    /// Prefix `name` with the namespace: `{ns}.{name}`.
    pub fn name(&self, name: &str) -> String {
        format!("{}.{name}", self.namespace)
    }

    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// An operation failed in a way that may mean the connection is gone: have the
    /// supervisor look at it now rather than at its next poll.
    pub fn report_broken(&self) {
        self.broken.notify_one();
    }

    pub fn take_pending(&self, msg_id: &str) -> Option<oneshot::Sender<Reply>> {
        self.pending
            .lock()
            .expect("pending map poisoned")
            .remove(msg_id)
    }

    /// Wait for a usable connection, until `deadline` (None: as long as it takes).
    /// Fails with [`RpcError::Closed`] once the transport is shut down.
    pub async fn wait_live(&self, deadline: Option<Instant>) -> Result<Arc<Live>, RpcError> {
        let mut live_rx = self.live.subscribe();
        let mut shutdown_rx = self.shutdown.subscribe();
        loop {
            if *shutdown_rx.borrow_and_update() {
                return Err(RpcError::Closed);
            }
            if let Some(live) = live_rx.borrow_and_update().clone() {
                if live.usable() {
                    return Ok(live);
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(RpcError::Transport(format!(
                    "the message broker at {} is not reachable",
                    self.addr.host_port
                )));
            }
            // The status of a published connection can change without a watch update, so poll too.
            tokio::select! {
                _ = live_rx.changed() => {}
                _ = shutdown_rx.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

/// Shuts the transport down when the last holder goes: the transport handle, its listeners
/// and every unsettled delivery each hold one, so a listener keeps working (and its
/// deliveries can still be acked) after the handle that made it is dropped.
pub(super) struct KeepAlive(pub Arc<Shared>);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// Keep the transport connected until it is shut down: connect (retrying with back-off),
/// publish the connection, wait for its loss, repeat.
pub(super) async fn supervise(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    let mut delay = BACKOFF_START;
    let mut generation = 0u64;
    while !*shutdown.borrow_and_update() {
        let attempt = tokio::time::timeout(CONNECT_ATTEMPT_TIMEOUT, establish(&shared))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {CONNECT_ATTEMPT_TIMEOUT:?}")));
        let (conn, mut reply_task) = match attempt {
            Ok(ok) => ok,
            Err(error) => {
                warn!(
                    broker = %shared.addr.display,
                    error = %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "cannot reach the message broker at {}: {error}; retrying in {delay:?}",
                    shared.addr.host_port
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => {}
                }
                delay = (delay * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        generation += 1;
        delay = BACKOFF_START;
        let live = Arc::new(Live::new(generation, conn));
        info!(broker = %shared.addr.display, generation, "connected to the message broker");
        shared.live.send_replace(Some(live.clone()));

        let reason = watch_connection(&shared, &live, &mut reply_task, &mut shutdown).await;
        shared.live.send_replace(None);
        reply_task.abort();
        if live.usable() {
            // Lost only in part (e.g. the reply consumer died) or shutting down: close it so
            // that every channel of this generation ends and everyone moves to the next one.
            let _ = tokio::time::timeout(Duration::from_secs(5), live.conn.close(200, "OK".into()))
                .await;
        }
        if shared.is_shut_down() {
            info!(broker = %shared.addr.display, generation, "closed the connection to the message broker");
            break;
        }
        warn!(broker = %shared.addr.display, generation, reason = %reason, "lost the connection to the message broker; reconnecting");
    }
    // Calls still waiting can no longer get a reply: dropping their senders fails them with `Closed`.
    shared.pending.lock().expect("pending map poisoned").clear();
}

/// Connect, then declare and consume the reply queue (exclusive to this connection).
async fn establish(shared: &Arc<Shared>) -> Result<(Connection, JoinHandle<()>), String> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("kiln {}", shared.namespace).into());
    let conn = Connection::connect(&shared.addr.uri, properties)
        .await
        .map_err(|e| e.to_string())?;
    let channel = conn.create_channel().await.map_err(|e| e.to_string())?;
    let queue_options = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    channel
        .queue_declare(
            shared.reply_queue.as_str().into(),
            queue_options,
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("cannot declare the reply queue: {e}"))?;
    let consumer_options = BasicConsumeOptions {
        no_ack: true,
        ..Default::default()
    };
    let consumer = channel
        .basic_consume(
            shared.reply_queue.as_str().into(),
            "".into(),
            consumer_options,
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("cannot consume the reply queue: {e}"))?;
    let task = tokio::spawn(route_replies(shared.clone(), consumer, channel));
    Ok((conn, task))
}

/// Hand each reply to the call waiting for it; replies nobody waits for (timed out) are dropped.
async fn route_replies(shared: Arc<Shared>, mut consumer: Consumer, _channel: Channel) {
    while let Some(delivery) = consumer.next().await {
        let delivery = match delivery {
            Ok(d) => d,
            Err(e) => {
                debug!(error = %e, "reply consumer stopped");
                return;
            }
        };
        match serde_json::from_slice::<Reply>(&delivery.data) {
            Ok(reply) => match shared.take_pending(&reply.msg_id) {
                Some(waiter) => {
                    let _ = waiter.send(reply);
                }
                None => {
                    debug!(msg_id = %reply.msg_id, "dropping a reply nobody waits for (the call timed out)")
                }
            },
            Err(e) => warn!(error = %e, "dropping an undecodable RPC reply"),
        }
    }
}

/// Wait until the connection is lost (or the transport shuts down); returns why.
async fn watch_connection(
    shared: &Shared,
    live: &Live,
    reply_task: &mut JoinHandle<()>,
    shutdown: &mut watch::Receiver<bool>,
) -> String {
    // Errors are reported as events (channel errors too), so they are only a prompt to look;
    // the last one is the best explanation when the connection turns out to be gone.
    let mut events = live.conn.events_listener();
    let mut last_error = None;
    loop {
        if *shutdown.borrow_and_update() {
            return "the transport is shutting down".into();
        }
        if !live.usable() {
            let state = live.conn.status().state_name();
            return match last_error {
                Some(e) => format!("{e} (connection {state})"),
                None => format!("connection {state}"),
            };
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            event = events.next() => match event {
                Some(Event::Error(e)) => {
                    debug!(error = %e, "the message broker connection reported an error");
                    last_error = Some(e.to_string());
                }
                Some(_) => {}
                None => return "the connection's event stream ended".into(),
            },
            _ = shared.broken.notified() => {}
            _ = &mut *reply_task => return "the reply queue consumer stopped".into(),
            _ = tokio::time::sleep(STATUS_POLL) => {}
        }
    }
}

/// A short name of the connection state for logs.
trait StateName {
    fn state_name(&self) -> &'static str;
}

impl StateName for lapin::ConnectionStatus {
    fn state_name(&self) -> &'static str {
        if self.closed() {
            "closed"
        } else if self.errored() {
            "error"
        } else if self.closing() {
            "closing"
        } else if self.connecting() || self.reconnecting() {
            "connecting"
        } else {
            "connected"
        }
    }
}
