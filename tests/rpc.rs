//! RPC semantics that every transport must keep (DESIGN.md §4), each checked on the
//! in-process transport and on AMQP against the real RabbitMQ (`KILN_TEST_AMQP_URL`).
//!
//! Every behaviour is one `async fn` taking a [`Bus`]; `both_transports!` turns it into
//! `inproc::<name>` and `amqp::<name>` tests. On AMQP each "process" gets its own
//! connection, and each test its own namespace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kiln::rpc::inproc::InProcTransport;
use kiln::rpc::server::RpcServer;
use kiln::rpc::{
    Dispatcher, Incoming, Listener, Message, RemoteError, RequestContext, RpcClient, RpcError,
    Target, Transport, Version,
};
use kiln_integration_tests::{amqp_url, unique_namespace};

/// How a test gets transports: in process, all handles share one bus; on AMQP every
/// transport is a separate connection to the same namespace, like separate services.
#[derive(Clone)]
enum Bus {
    InProc(InProcTransport),
    Amqp { url: String, namespace: String },
}

impl Bus {
    fn inproc() -> Self {
        Bus::InProc(InProcTransport::new())
    }

    fn amqp() -> Self {
        Bus::Amqp {
            url: amqp_url(),
            namespace: unique_namespace("kilntest"),
        }
    }

    async fn transport(&self) -> Arc<dyn Transport> {
        match self {
            Bus::InProc(t) => Arc::new(t.clone()),
            Bus::Amqp { url, namespace } => Arc::new(
                kiln::rpc::amqp::AmqpTransport::connect(url, namespace, 8)
                    .await
                    .expect("the test broker must be reachable (KILN_TEST_AMQP_URL)"),
            ),
        }
    }
}

/// `both_transports!(name, ...)`: one test per transport for each behaviour. Attributes
/// written before a name apply to its in-process variant only.
macro_rules! both_transports {
    ($($(#[$inproc_attr:meta])* $name:ident),* $(,)?) => {
        mod inproc {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                $(#[$inproc_attr])*
                async fn $name() {
                    super::$name(super::Bus::inproc()).await
                }
            )*
        }
        mod amqp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Bus::amqp()).await
                }
            )*
        }
    };
}

both_transports!(
    cast_is_delivered_to_a_listener,
    call_returns_the_handlers_reply,
    call_without_server_times_out_promptly,
    fanout_reaches_every_listener,
    server_cast_reaches_only_that_server_and_topic_cast_exactly_one_once,
    newer_version_is_rejected_as_unsupported,
    cast_sent_before_any_listener_is_kept_until_one_appears,
    message_of_an_unfinished_handler_is_redelivered_to_another_server,
    handler_finishing_after_listener_close_is_acked_not_redelivered,
);

const WAIT: Duration = Duration::from_secs(10);
/// How long to watch for messages that must not arrive.
const QUIET: Duration = Duration::from_millis(700);

fn msg(method: &str, args: serde_json::Value) -> Message {
    Message::new(method, "1.0", args, RequestContext::internal())
}

async fn recv(listener: &mut Listener, within: Duration) -> Option<Incoming> {
    tokio::time::timeout(within, listener.next())
        .await
        .ok()
        .flatten()
}

/// Receive one message, acknowledge it and return it.
async fn take(listener: &mut Listener, what: &str) -> Message {
    let incoming = recv(listener, WAIT)
        .await
        .unwrap_or_else(|| panic!("{what}: nothing received within {WAIT:?}"));
    incoming.acker.ack().await;
    incoming.message
}

async fn assert_quiet(listener: &mut Listener, what: &str) {
    if let Some(incoming) = recv(listener, QUIET).await {
        panic!("{what}: unexpected message {:?}", incoming.message);
    }
}

/// A dispatcher at version 1.2 with `double` ({"x": n} -> 2n) and `whoami` (the request id).
fn dispatcher() -> Arc<Dispatcher> {
    #[derive(serde::Deserialize)]
    struct Args {
        x: i64,
    }
    let mut d = Dispatcher::new(Version::new(1, 2));
    d.register("double", |_ctx, a: Args| async move {
        Ok::<_, RemoteError>(a.x * 2)
    });
    d.register("whoami", |ctx: RequestContext, _: serde_json::Value| async move {
        Ok::<_, RemoteError>(ctx.request_id)
    });
    Arc::new(d)
}

async fn cast_is_delivered_to_a_listener(bus: Bus) {
    let server = bus.transport().await;
    let client = bus.transport().await;
    let mut listener = server.listen("volume", "host1").await.unwrap();
    client
        .cast(
            &Target::topic("volume"),
            msg("ping", serde_json::json!({"n": 1})),
        )
        .await
        .unwrap();
    let got = take(&mut listener, "cast to the topic").await;
    assert_eq!(got.method, "ping");
    assert_eq!(got.args, serde_json::json!({"n": 1}));
    assert_eq!(got.msg_id, None, "a cast carries no correlation id");
    client
        .cast(
            &Target::server("volume", "host1"),
            msg("ping", serde_json::json!({"n": 2})),
        )
        .await
        .unwrap();
    assert_eq!(take(&mut listener, "cast to the server").await.args["n"], 2);
    assert_quiet(&mut listener, "after both casts").await;
}

async fn call_returns_the_handlers_reply(bus: Bus) {
    let server_transport = bus.transport().await;
    let listener = server_transport.listen("scheduler", "s1").await.unwrap();
    let server = RpcServer::spawn(server_transport.clone(), listener, dispatcher(), 4);
    let client = RpcClient::new(bus.transport().await, "scheduler", WAIT);
    let ctx = RequestContext::internal();
    let doubled: i64 = client
        .call(
            &ctx,
            None,
            "double",
            Version::new(1, 0),
            serde_json::json!({"x": 21}),
        )
        .await
        .unwrap();
    assert_eq!(doubled, 42);
    let seen: String = client
        .call(
            &ctx,
            Some("s1"),
            "whoami",
            Version::new(1, 2),
            serde_json::json!({}),
        )
        .await
        .unwrap();
    assert_eq!(
        seen, ctx.request_id,
        "the request context travels with the call"
    );
    // Several calls in flight at once each get their own reply.
    let calls = (0..20).map(|x| {
        let client = client.clone();
        let ctx = ctx.clone();
        async move {
            let r: i64 = client
                .call(
                    &ctx,
                    None,
                    "double",
                    Version::new(1, 0),
                    serde_json::json!({"x": x}),
                )
                .await
                .unwrap();
            (x, r)
        }
    });
    for (x, r) in join_all_spawned(calls).await {
        assert_eq!(r, 2 * x);
    }
    assert!(server.shutdown(WAIT).await);
}

async fn call_without_server_times_out_promptly(bus: Bus) {
    let client = RpcClient::new(bus.transport().await, "nobody", Duration::from_millis(300));
    let started = Instant::now();
    let err = client
        .call::<serde_json::Value>(
            &RequestContext::internal(),
            None,
            "double",
            Version::new(1, 0),
            serde_json::json!({"x": 1}),
        )
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    match err {
        RpcError::Timeout {
            method,
            target,
            timeout,
        } => {
            assert_eq!(method, "double");
            assert_eq!(target, "nobody");
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(
        elapsed >= Duration::from_millis(300),
        "gave up early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(2),
        "timeout not prompt: {elapsed:?}"
    );
}

async fn fanout_reaches_every_listener(bus: Bus) {
    let mut listeners = Vec::new();
    for server in ["h1", "h2", "h3"] {
        listeners.push(
            bus.transport()
                .await
                .listen("backup", server)
                .await
                .unwrap(),
        );
    }
    let client = bus.transport().await;
    client
        .fanout("backup", msg("refresh", serde_json::json!({"gen": 7})))
        .await
        .unwrap();
    for (i, listener) in listeners.iter_mut().enumerate() {
        let got = take(listener, &format!("fanout at listener {i}")).await;
        assert_eq!(got.method, "refresh");
        assert_eq!(got.args["gen"], 7);
    }
    for (i, listener) in listeners.iter_mut().enumerate() {
        assert_quiet(listener, &format!("fanout delivered twice at listener {i}")).await;
    }
}

async fn server_cast_reaches_only_that_server_and_topic_cast_exactly_one_once(bus: Bus) {
    let mut listeners = Vec::new();
    for server in ["h1", "h2", "h3"] {
        listeners.push(
            bus.transport()
                .await
                .listen("volume", server)
                .await
                .unwrap(),
        );
    }
    let client = bus.transport().await;
    client
        .cast(
            &Target::server("volume", "h2"),
            msg("only_h2", serde_json::json!({})),
        )
        .await
        .unwrap();
    assert_eq!(
        take(&mut listeners[1], "cast to volume.h2").await.method,
        "only_h2"
    );
    assert_quiet(&mut listeners[0], "h1 got h2's cast").await;
    assert_quiet(&mut listeners[2], "h3 got h2's cast").await;

    client
        .cast(
            &Target::topic("volume"),
            msg("anyone", serde_json::json!({})),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut received = 0;
    while Instant::now() < deadline && received == 0 {
        for listener in listeners.iter_mut() {
            if let Some(incoming) = recv(listener, Duration::from_millis(50)).await {
                assert_eq!(incoming.message.method, "anyone");
                incoming.acker.ack().await;
                received += 1;
            }
        }
    }
    assert_eq!(received, 1, "a topic cast must reach exactly one server");
    for (i, listener) in listeners.iter_mut().enumerate() {
        assert_quiet(
            listener,
            &format!("topic cast delivered again at listener {i}"),
        )
        .await;
    }
}

async fn newer_version_is_rejected_as_unsupported(bus: Bus) {
    let server_transport = bus.transport().await;
    let listener = server_transport.listen("scheduler", "s1").await.unwrap();
    let server = RpcServer::spawn(server_transport.clone(), listener, dispatcher(), 4);
    let client = RpcClient::new(bus.transport().await, "scheduler", WAIT);
    let ctx = RequestContext::internal();
    for version in [Version::new(1, 3), Version::new(2, 0)] {
        match client
            .call::<i64>(&ctx, None, "double", version, serde_json::json!({"x": 1}))
            .await
        {
            Err(RpcError::Remote(e)) => assert_eq!(e.kind, "UnsupportedVersion", "for {version}: {e}"),
            other => panic!("version {version} against a 1.2 server: expected UnsupportedVersion, got {other:?}"),
        }
    }
    let ok: i64 = client
        .call(
            &ctx,
            None,
            "double",
            Version::new(1, 1),
            serde_json::json!({"x": 4}),
        )
        .await
        .unwrap();
    assert_eq!(ok, 8, "an older minor is still served");
    assert!(server.shutdown(WAIT).await);
}

async fn cast_sent_before_any_listener_is_kept_until_one_appears(bus: Bus) {
    let client = bus.transport().await;
    client
        .cast(
            &Target::topic("late"),
            msg("early_bird", serde_json::json!({"n": 1})),
        )
        .await
        .unwrap();
    client
        .cast(
            &Target::server("late", "h9"),
            msg("early_bird", serde_json::json!({"n": 2})),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut listener = bus.transport().await.listen("late", "h9").await.unwrap();
    let mut got = vec![
        take(&mut listener, "first early cast").await.args["n"]
            .as_i64()
            .unwrap(),
        take(&mut listener, "second early cast").await.args["n"]
            .as_i64()
            .unwrap(),
    ];
    got.sort();
    assert_eq!(got, vec![1, 2]);
    assert_quiet(&mut listener, "after the early casts").await;
}

async fn message_of_an_unfinished_handler_is_redelivered_to_another_server(bus: Bus) {
    let client = bus.transport().await;
    let server_a = bus.transport().await;
    let mut listener_a = server_a.listen("volume", "a").await.unwrap();
    client
        .cast(
            &Target::topic("volume"),
            msg("create_volume", serde_json::json!({"id": "v1"})),
        )
        .await
        .unwrap();
    // Server A takes the message and its handler starts, but never finishes: A stops
    // (listener closed, handler abandoned, connection gone) before acknowledging.
    let in_flight = recv(&mut listener_a, WAIT)
        .await
        .expect("server A receives the cast");
    assert_eq!(in_flight.message.method, "create_volume");
    listener_a.close().await;
    drop(in_flight);
    drop(listener_a);
    drop(server_a);

    let mut listener_b = bus.transport().await.listen("volume", "b").await.unwrap();
    let again = take(&mut listener_b, "redelivery to server B").await;
    assert_eq!(again.method, "create_volume");
    assert_eq!(again.args["id"], "v1");
    assert_quiet(&mut listener_b, "after the redelivery").await;
}

async fn handler_finishing_after_listener_close_is_acked_not_redelivered(bus: Bus) {
    let client = bus.transport().await;
    let server_a = bus.transport().await;
    let mut listener_a = server_a.listen("volume", "a").await.unwrap();
    client
        .cast(
            &Target::topic("volume"),
            msg("extend_volume", serde_json::json!({"id": "v2"})),
        )
        .await
        .unwrap();
    let in_flight = recv(&mut listener_a, WAIT)
        .await
        .expect("server A receives the cast");
    // A graceful stop: the listener closes first, the handler finishes within the grace period.
    listener_a.close().await;
    let mut listener_b = bus.transport().await.listen("volume", "b").await.unwrap();
    in_flight.acker.ack().await;
    drop(listener_a);
    drop(server_a);
    assert_quiet(
        &mut listener_b,
        "a message acked after its listener closed came back",
    )
    .await;
}

/// AMQP only: the process of server A dies (its connection closes) while a handler still
/// holds a message; the broker gives the message to server B, and A's late ack is harmless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_message_held_by_a_server_whose_connection_dies_is_redelivered() {
    let bus = Bus::amqp();
    let Bus::Amqp { url, namespace } = &bus else {
        unreachable!("Bus::amqp is AMQP")
    };
    let client = bus.transport().await;
    let server_a = kiln::rpc::amqp::AmqpTransport::connect(url, namespace, 8)
        .await
        .unwrap();
    let mut listener_a = server_a.listen("volume", "a").await.unwrap();
    client
        .cast(
            &Target::topic("volume"),
            msg("delete_volume", serde_json::json!({"id": "v3"})),
        )
        .await
        .unwrap();
    let in_flight = recv(&mut listener_a, WAIT)
        .await
        .expect("server A receives the cast");
    server_a.shutdown();
    let mut listener_b = bus.transport().await.listen("volume", "b").await.unwrap();
    let again = take(&mut listener_b, "redelivery after A's connection died").await;
    assert_eq!(again.args["id"], "v3");
    // A's handler finishes late: its ack goes nowhere, and A refuses new work.
    in_flight.acker.ack().await;
    let late = server_a
        .cast(&Target::topic("volume"), msg("late", serde_json::json!({})))
        .await;
    assert!(
        matches!(late, Err(RpcError::Closed)),
        "a shut-down transport must refuse casts: {late:?}"
    );
    assert_quiet(&mut listener_b, "after the redelivery").await;
}

/// Run all futures concurrently, each as a task, and collect their outputs in order.
async fn join_all_spawned<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task panicked"));
    }
    out
}
