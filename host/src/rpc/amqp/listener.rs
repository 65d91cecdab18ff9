//! The consuming side of the AMQP transport: one task per [`Listener`] that subscribes a
//! server to its `topic` and `topic.server` work queues and a fresh fanout queue on one
//! channel, merges the three consumers into the listener's stream, and re-subscribes on the
//! next connection when the channel or connection is lost. Also the [`Acknowledger`] that
//! settles each delivery once its handler finished.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
    BasicRejectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Acker, Channel, ExchangeKind};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::connection::{KeepAlive, Live, Shared, BACKOFF_MAX, BACKOFF_START};
use crate::rpc::{Acknowledger, Incoming, Listener, Message, RpcError};

/// The broker names one listener consumes, without the per-subscription fanout queue.
pub(super) struct Names {
    pub topic: String,
    pub server: String,
    work_queue: String,
    server_queue: String,
    fanout_exchange: String,
}

impl Names {
    pub fn new(shared: &Shared, topic: &str, server: &str) -> Self {
        Names {
            topic: topic.to_string(),
            server: server.to_string(),
            work_queue: shared.name(topic),
            server_queue: shared.name(&format!("{topic}.{server}")),
            fanout_exchange: fanout_exchange(shared, topic),
        }
    }
}

/// `{ns}.{topic}_fanout`, the durable fanout exchange of a topic.
pub(super) fn fanout_exchange(shared: &Shared, topic: &str) -> String {
    shared.name(&format!("{topic}_fanout"))
}

/// Closes its channel once the listener and every delivery handed out from it are done, so
/// that deliveries nobody settled go back to their queues.
struct ChannelGuard(Channel);

impl Drop for ChannelGuard {
    fn drop(&mut self) {
        if !self.0.status().connected() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let channel = self.0.clone();
            runtime.spawn(async move {
                let _ = channel.close(200, "OK".into()).await;
            });
        }
    }
}

/// One subscription on one connection: the channel and its three consumers.
pub(super) struct Subscription {
    guard: Arc<ChannelGuard>,
    tags: Vec<String>,
    deliveries: BoxStream<'static, Option<lapin::Result<Delivery>>>,
}

/// Declare the queues and exchange and start the three consumers on a new channel.
pub(super) async fn subscribe(
    shared: &Shared,
    live: &Live,
    names: &Names,
) -> Result<Subscription, lapin::Error> {
    let channel = live.conn.create_channel().await?;
    let subscribed = subscribe_on(&channel, shared, live, names).await;
    if subscribed.is_err() {
        // A consumer started before the failure would otherwise sit on prefetched messages.
        let _ = channel.close(200, "OK".into()).await;
    }
    subscribed
}

async fn subscribe_on(
    channel: &Channel,
    shared: &Shared,
    live: &Live,
    names: &Names,
) -> Result<Subscription, lapin::Error> {
    // Per-consumer prefetch: each of the three consumers holds at most `prefetch` unacked.
    channel
        .basic_qos(shared.prefetch, BasicQosOptions { global: false })
        .await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for queue in [&names.work_queue, &names.server_queue] {
        channel
            .queue_declare(queue.as_str().into(), durable, FieldTable::default())
            .await?;
        live.mark_declared(queue);
    }
    let exchange_options = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            names.fanout_exchange.as_str().into(),
            ExchangeKind::Fanout,
            exchange_options,
            FieldTable::default(),
        )
        .await?;
    let fanout_queue = format!(
        "{}_{}",
        names.fanout_exchange,
        uuid::Uuid::new_v4().simple()
    );
    let private = QueueDeclareOptions {
        exclusive: true,
        auto_delete: true,
        ..Default::default()
    };
    channel
        .queue_declare(fanout_queue.as_str().into(), private, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            fanout_queue.as_str().into(),
            names.fanout_exchange.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let guard = Arc::new(ChannelGuard(channel.clone()));
    let mut tags = Vec::new();
    let mut streams = Vec::new();
    for queue in [&names.server_queue, &names.work_queue, &fanout_queue] {
        let consumer = channel
            .basic_consume(
                queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        tags.push(consumer.tag().to_string());
        // `None` marks the end of one consumer (cancelled by us or by the broker).
        streams.push(
            consumer
                .map(Some)
                .chain(stream::once(async { None }))
                .boxed(),
        );
    }
    Ok(Subscription {
        guard,
        tags,
        deliveries: stream::select_all(streams).boxed(),
    })
}

enum Outcome {
    Stopped,
    Lost(String),
}

/// Feed `tx` from a subscription, re-subscribing after losses, until stopped. `first` is the
/// subscription `listen` already made.
async fn run(
    alive: Arc<KeepAlive>,
    names: Names,
    tx: mpsc::Sender<Incoming>,
    mut stop: watch::Receiver<bool>,
    first: (Arc<Live>, Subscription),
) {
    let shared = &alive.0;
    let mut current = Some(first);
    let mut pause = BACKOFF_START;
    loop {
        let (live, mut sub) = match current.take() {
            Some(c) => c,
            None => {
                let live = tokio::select! {
                    live = shared.wait_live(None) => match live { Ok(l) => l, Err(_) => break },
                    _ = stop.changed() => break,
                };
                match subscribe(shared, &live, &names).await {
                    Ok(sub) => {
                        info!(topic = %names.topic, server = %names.server, generation = live.generation, "re-subscribed to the message broker");
                        (live, sub)
                    }
                    Err(e) => {
                        warn!(topic = %names.topic, server = %names.server, error = %e, retry_in_ms = pause.as_millis() as u64, "cannot subscribe; retrying");
                        shared.report_broken();
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = stop.changed() => break,
                        }
                        pause = (pause * 2).min(BACKOFF_MAX);
                        continue;
                    }
                }
            }
        };
        pause = BACKOFF_START;
        match pump(&alive, &mut sub, &tx, &mut stop).await {
            Outcome::Stopped => {
                stop_consuming(sub).await;
                break;
            }
            Outcome::Lost(reason) => {
                if shared.is_shut_down() || *stop.borrow() {
                    break;
                }
                warn!(topic = %names.topic, server = %names.server, generation = live.generation, reason = %reason, "subscription lost; re-subscribing");
                shared.report_broken();
            }
        }
    }
    debug!(topic = %names.topic, server = %names.server, "listener stopped");
}

/// Move deliveries into the listener until it is stopped or the subscription ends.
async fn pump(
    alive: &Arc<KeepAlive>,
    sub: &mut Subscription,
    tx: &mpsc::Sender<Incoming>,
    stop: &mut watch::Receiver<bool>,
) -> Outcome {
    loop {
        if *stop.borrow_and_update() {
            return Outcome::Stopped;
        }
        let item = tokio::select! {
            biased;
            _ = stop.changed() => return Outcome::Stopped,
            item = sub.deliveries.next() => item,
        };
        let delivery = match item {
            Some(Some(Ok(delivery))) => delivery,
            Some(Some(Err(e))) => return Outcome::Lost(e.to_string()),
            Some(None) | None => return Outcome::Lost("a consumer was cancelled".into()),
        };
        let Delivery {
            data,
            acker,
            routing_key,
            ..
        } = delivery;
        let message = match serde_json::from_slice::<Message>(&data) {
            Ok(m) => m,
            Err(e) => {
                // Requeueing would loop forever: drop it, loudly.
                warn!(queue = %routing_key, error = %e, "dropping an undecodable RPC message");
                let _ = acker.reject(BasicRejectOptions { requeue: false }).await;
                continue;
            }
        };
        let incoming = Incoming {
            message,
            acker: Box::new(AmqpAck {
                acker: Some(acker),
                _guard: sub.guard.clone(),
                _alive: alive.clone(),
            }),
        };
        let permit = tokio::select! {
            biased;
            _ = stop.changed() => None,
            permit = tx.reserve() => permit.ok(),
        };
        match permit {
            Some(permit) => permit.send(incoming),
            None => {
                incoming.acker.requeue().await;
                return Outcome::Stopped;
            }
        }
    }
}

/// Cancel the consumers so no new message is taken, then give back what they had prefetched.
async fn stop_consuming(mut sub: Subscription) {
    let channel = &sub.guard.0;
    for tag in &sub.tags {
        let cancel = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default());
        if tokio::time::timeout(Duration::from_secs(5), cancel)
            .await
            .is_err()
        {
            break;
        }
    }
    while let Some(Some(item)) = sub.deliveries.next().now_or_never() {
        if let Some(Ok(delivery)) = item {
            let _ = delivery.acker.nack(requeue()).await;
        }
    }
    // Dropping `sub` drops its guard; the channel closes once handed-out deliveries are settled.
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        multiple: false,
        requeue: true,
    }
}

/// How long settling a delivery may take. An ack is one frame on an open channel; when the
/// connection died under it, lapin may never answer, and an unbounded wait would hold the
/// handler's concurrency slot for good (a server that lived through a broker restart could
/// not then shut down in its grace period). The broker redelivers what was not settled.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(3);

/// Settles one delivery. Errors are ignored: if the channel died meanwhile, the broker has
/// already put the message back and will redeliver it (at-least-once).
struct AmqpAck {
    acker: Option<Acker>,
    _guard: Arc<ChannelGuard>,
    _alive: Arc<KeepAlive>,
}

#[async_trait]
impl Acknowledger for AmqpAck {
    async fn ack(mut self: Box<Self>) {
        if let Some(acker) = self.acker.take() {
            settle("ack", acker.ack(BasicAckOptions::default())).await;
        }
    }

    async fn requeue(mut self: Box<Self>) {
        if let Some(acker) = self.acker.take() {
            settle("requeue", acker.nack(requeue())).await;
        }
    }
}

/// Wait up to [`SETTLE_TIMEOUT`] for an ack or nack (`what`, for the log); a failure or no
/// answer only logs, since the broker redelivers what was not settled.
async fn settle(what: &str, settling: impl std::future::Future<Output = lapin::Result<bool>>) {
    match tokio::time::timeout(SETTLE_TIMEOUT, settling).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            debug!(error = %e, "cannot {what}; the broker will redeliver the message")
        }
        Err(_) => warn!(
            timeout_s = SETTLE_TIMEOUT.as_secs(),
            "{what} unanswered (connection lost?); the broker will redeliver the message"
        ),
    }
}

impl Drop for AmqpAck {
    /// Dropped unsettled (its handler was abandoned): give the message back now rather than
    /// when the channel closes.
    fn drop(&mut self) {
        if let Some(acker) = self.acker.take() {
            if acker.usable() {
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    runtime.spawn(async move {
                        let _ = acker.nack(requeue()).await;
                    });
                }
            }
        }
    }
}

/// `listen`: subscribe once (retrying until `deadline`), then hand the rest to [`run`].
pub(super) async fn listen(
    alive: Arc<KeepAlive>,
    topic: &str,
    server: &str,
    deadline: tokio::time::Instant,
) -> Result<Listener, RpcError> {
    let shared = &alive.0;
    let names = Names::new(shared, topic, server);
    let mut pause = BACKOFF_START;
    let first = loop {
        let live = shared.wait_live(Some(deadline)).await?;
        match subscribe(shared, &live, &names).await {
            Ok(sub) => break (live, sub),
            Err(e) if super::is_fatal(&e) => {
                return Err(RpcError::Transport(format!(
                    "cannot subscribe to {topic}: {e}"
                )));
            }
            Err(e) => {
                if tokio::time::Instant::now() + pause >= deadline {
                    return Err(RpcError::Transport(format!(
                        "cannot subscribe to {topic}: {e}"
                    )));
                }
                warn!(topic, server, error = %e, retry_in_ms = pause.as_millis() as u64, "cannot subscribe; retrying");
                shared.report_broken();
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(BACKOFF_MAX);
            }
        }
    };
    // Capacity 1: deliveries beyond that stay in lapin's prefetch buffer, bounded by `prefetch`.
    let (tx, rx) = mpsc::channel(1);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(run(alive, names, tx, stop_rx, first));
    let close = Box::new(move || {
        stop_tx.send_replace(true);
    });
    Ok(Listener::new(rx, close))
}
