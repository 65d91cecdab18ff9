//! The server side of RPC: takes messages off a [`Listener`], runs them through a
//! [`Dispatcher`] with bounded concurrency, replies to calls, and acknowledges each message
//! only after its handler finished (at-least-once). Stopping closes the listener first and then
//! waits, up to a grace period, for handlers in flight.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, warn, Instrument};

use super::{Dispatcher, Listener, RemoteError, Reply, Transport};

/// A running RPC server. Dropping it does not stop it; call [`RpcServer::shutdown`].
pub struct RpcServer {
    stop: watch::Sender<bool>,
    receive_loop: JoinHandle<()>,
    slots: Arc<Semaphore>,
    max_concurrent: u32,
}

impl RpcServer {
    /// Start serving `listener` with `dispatcher`, at most `max_concurrent` handlers at once.
    pub fn spawn(
        transport: Arc<dyn Transport>,
        mut listener: Listener,
        dispatcher: Arc<Dispatcher>,
        max_concurrent: usize,
    ) -> RpcServer {
        let max_concurrent = max_concurrent.clamp(1, Semaphore::MAX_PERMITS) as u32;
        let slots = Arc::new(Semaphore::new(max_concurrent as usize));
        let (stop, mut stop_rx) = watch::channel(false);
        let loop_slots = slots.clone();
        let receive_loop = tokio::spawn(async move {
            loop {
                let permit = tokio::select! {
                    p = loop_slots.clone().acquire_owned() => p.expect("semaphore never closed"),
                    _ = stop_rx.changed() => break,
                };
                let incoming = tokio::select! {
                    m = listener.next() => match m { Some(m) => m, None => break },
                    _ = stop_rx.changed() => break,
                };
                let transport = transport.clone();
                let dispatcher = dispatcher.clone();
                let msg = incoming.message;
                let acker = incoming.acker;
                let span = tracing::info_span!("rpc", method = %msg.method, request_id = %msg.context.request_id);
                tokio::spawn(
                    async move {
                        let started = std::time::Instant::now();
                        let result = AssertUnwindSafe(dispatcher.dispatch(&msg))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|_| {
                                Err(RemoteError::new(
                                    "HandlerError",
                                    format!("handler of {} panicked", msg.method),
                                ))
                            });
                        if let Err(e) = &result {
                            warn!(error = %e, "RPC handler failed");
                        } else {
                            debug!(
                                elapsed_us = started.elapsed().as_micros() as u64,
                                "RPC handled"
                            );
                        }
                        if let (Some(reply_to), Some(msg_id)) = (&msg.reply_to, &msg.msg_id) {
                            let reply = Reply {
                                msg_id: msg_id.clone(),
                                result,
                            };
                            if let Err(e) = transport.reply(reply_to, reply).await {
                                warn!(error = %e, "cannot send RPC reply");
                            }
                        }
                        acker.ack().await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            listener.close().await;
        });
        RpcServer {
            stop,
            receive_loop,
            slots,
            max_concurrent,
        }
    }

    /// Stop taking messages, then wait up to `grace` for handlers in flight. Returns `true`
    /// when every handler finished in time.
    pub async fn shutdown(self, grace: Duration) -> bool {
        let _ = self.stop.send(true);
        let _ = self.receive_loop.await;
        tokio::time::timeout(grace, self.slots.acquire_many(self.max_concurrent))
            .await
            .is_ok()
    }
}
