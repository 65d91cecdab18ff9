//! In-process transport: the all-in-one default. Work queues are MPMC channels that buffer
//! messages until a server takes them (like durable queues); fanout keeps one channel per
//! listener; calls wait on a oneshot keyed by correlation id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot, watch};

use super::{Acknowledger, Incoming, Listener, Message, Reply, RpcError, Target, Transport};

type Queue = (
    async_channel::Sender<Message>,
    async_channel::Receiver<Message>,
);
/// Fanout subscribers of a topic: (listener id, its channel).
type Subscribers = Vec<(u64, async_channel::Sender<Message>)>;

#[derive(Default)]
struct Inner {
    queues: Mutex<HashMap<String, Queue>>,
    fanouts: Mutex<HashMap<String, Subscribers>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    next_listener: std::sync::atomic::AtomicU64,
}

/// The in-process transport. Cheap to clone; clones share queues.
#[derive(Clone, Default)]
pub struct InProcTransport {
    inner: Arc<Inner>,
}

impl InProcTransport {
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self, name: &str) -> Queue {
        let mut queues = self.inner.queues.lock().expect("queue map poisoned");
        queues
            .entry(name.to_string())
            .or_insert_with(async_channel::unbounded)
            .clone()
    }
}

/// Settles an in-process message: ack drops it, requeue puts it back on its work queue. An
/// acknowledger dropped unsettled (its handler task died) requeues too, so nothing is lost.
struct InProcAck {
    requeue_to: Option<async_channel::Sender<Message>>,
    message: Option<Message>,
}

impl InProcAck {
    fn put_back(&mut self) {
        if let (Some(tx), Some(msg)) = (self.requeue_to.take(), self.message.take()) {
            // Unbounded: fails only when the queue is gone, i.e. the transport is dropped.
            let _ = tx.try_send(msg);
        }
    }
}

impl Drop for InProcAck {
    fn drop(&mut self) {
        self.put_back();
    }
}

#[async_trait]
impl Acknowledger for InProcAck {
    async fn ack(mut self: Box<Self>) {
        self.message = None;
    }
    async fn requeue(mut self: Box<Self>) {
        self.put_back();
    }
}

#[async_trait]
impl Transport for InProcTransport {
    async fn cast(&self, target: &Target, msg: Message) -> Result<(), RpcError> {
        let (tx, _) = self.queue(&target.queue());
        tx.send(msg).await.map_err(|_| RpcError::Closed)
    }

    async fn call(
        &self,
        target: &Target,
        mut msg: Message,
        timeout: Duration,
    ) -> Result<serde_json::Value, RpcError> {
        let msg_id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .expect("pending map poisoned")
            .insert(msg_id.clone(), tx);
        msg.msg_id = Some(msg_id.clone());
        msg.reply_to = Some("inproc".into());
        let method = msg.method.clone();
        if let Err(e) = self.cast(target, msg).await {
            self.inner
                .pending
                .lock()
                .expect("pending map poisoned")
                .remove(&msg_id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply.result.map_err(RpcError::Remote),
            Ok(Err(_)) => Err(RpcError::Closed),
            Err(_) => {
                self.inner
                    .pending
                    .lock()
                    .expect("pending map poisoned")
                    .remove(&msg_id);
                Err(RpcError::Timeout {
                    method,
                    target: target.queue(),
                    timeout,
                })
            }
        }
    }

    async fn fanout(&self, topic: &str, msg: Message) -> Result<(), RpcError> {
        let subscribers: Vec<_> = self
            .inner
            .fanouts
            .lock()
            .expect("fanout map poisoned")
            .get(topic)
            .map(|v| v.iter().map(|(_, tx)| tx.clone()).collect())
            .unwrap_or_default();
        for tx in subscribers {
            let _ = tx.send(msg.clone()).await;
        }
        Ok(())
    }

    async fn reply(&self, _reply_to: &str, reply: Reply) -> Result<(), RpcError> {
        let waiter = self
            .inner
            .pending
            .lock()
            .expect("pending map poisoned")
            .remove(&reply.msg_id);
        if let Some(tx) = waiter {
            let _ = tx.send(reply);
        }
        // No waiter: the caller timed out already; the reply is dropped, as on AMQP.
        Ok(())
    }

    async fn listen(&self, topic: &str, server: &str) -> Result<Listener, RpcError> {
        let shared = self.queue(topic);
        let own = self.queue(&format!("{topic}.{server}"));
        let (fan_tx, fan_rx) = async_channel::unbounded();
        let id = self
            .inner
            .next_listener
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner
            .fanouts
            .lock()
            .expect("fanout map poisoned")
            .entry(topic.to_string())
            .or_default()
            .push((id, fan_tx));

        // Capacity 1 and a reserved permit before each receive: a message is only taken off a
        // shared queue when the service is ready for it, so other servers can take it instead.
        let (tx, rx) = mpsc::channel(1);
        let (stop_tx, mut stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let permit = tokio::select! {
                    p = tx.reserve() => match p { Ok(p) => p, Err(_) => break },
                    _ = stop_rx.changed() => break,
                };
                let (message, requeue_to) = tokio::select! {
                    biased;
                    _ = stop_rx.changed() => break,
                    m = own.1.recv() => match m { Ok(m) => (m, Some(own.0.clone())), Err(_) => break },
                    m = shared.1.recv() => match m { Ok(m) => (m, Some(shared.0.clone())), Err(_) => break },
                    m = fan_rx.recv() => match m { Ok(m) => (m, None), Err(_) => break },
                };
                let acker = Box::new(InProcAck {
                    requeue_to,
                    message: Some(message.clone()),
                });
                permit.send(Incoming { message, acker });
            }
        });

        let inner = self.inner.clone();
        let topic = topic.to_string();
        let close = Box::new(move || {
            let _ = stop_tx.send(true);
            if let Some(subs) = inner
                .fanouts
                .lock()
                .expect("fanout map poisoned")
                .get_mut(&topic)
            {
                subs.retain(|(i, _)| *i != id);
            }
        });
        Ok(Listener::new(rx, close))
    }

    fn describe(&self) -> String {
        "inproc".into()
    }
}
