//! The agent's side of cluster-wide logs: the leader names, in the session, the tasks
//! whose logs it wants from this node; the agent reads each one's log file and streams
//! the lines back on one `PublishLogs` call per subscription (swarmkit's log broker,
//! reduced to what `service logs` needs).
//!
//! ```text
//!  leader ── SessionMessage.log_subscriptions ──▶ agent: publish() per subscription
//!  agent ── PublishLogs(first batch: subscription + session, then lines...) ──▶ leader
//!          ends: every task read (no follow), or the leader hung up (follow)
//! ```
//!
//! A task this node has no log for sends nothing; the call is made even then, so the
//! leader knows this node is done.

use std::sync::Arc;

use futures::StreamExt;
use swarm_runtime::container::logs::{self, LogStream, ReadOptions};
use swarm_runtime::container::ContainerRuntime;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::cluster::proto::dispatcher_client::DispatcherClient;
use crate::cluster::proto::{LogBatch, LogLine, LogSubscription};

/// Lines per batch at most: a batch goes as soon as the lines that are there are read.
const BATCH: usize = 256;
/// How often a followed task's log file is looked for until its container exists.
const FILE_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Answers one subscription: every wanted task's lines, on their own `PublishLogs` call.
pub fn publish(
    rt: Arc<dyn ContainerRuntime>,
    mut client: DispatcherClient<Channel>,
    session_id: String,
    sub: LogSubscription,
) {
    tokio::spawn(async move {
        let (tx, rx) = mpsc::channel::<LogBatch>(16);
        let first = LogBatch {
            subscription_id: sub.id.clone(),
            session_id,
            lines: Vec::new(),
            warning: String::new(),
        };
        if tx.send(first).await.is_err() {
            return;
        }
        let call = tokio::spawn(async move { client.publish_logs(ReceiverStream::new(rx)).await });
        tracing::debug!(subscription = %sub.id, tasks = ?sub.task_ids, "publishing logs");
        read_all(&*rt, &sub, &tx).await;
        drop(tx);
        match call.await {
            Ok(Ok(_)) => {}
            Ok(Err(st)) => tracing::debug!(subscription = %sub.id, "publish logs: {st}"),
            Err(e) => tracing::debug!(subscription = %sub.id, "publish logs: {e}"),
        }
    });
}

/// Reads the subscription's tasks (those with a log here) into `tx`, batched, until
/// done or until nobody reads `tx` any more.
async fn read_all(rt: &dyn ContainerRuntime, sub: &LogSubscription, tx: &mpsc::Sender<LogBatch>) {
    let tail = usize::try_from(sub.tail).ok();
    let mut streams = Vec::new();
    for task in &sub.task_ids {
        let path = rt.log_path(task);
        if !path.exists() && !sub.follow {
            continue;
        }
        // Followed, a task just assigned may have no container yet: its log is read
        // once the file appears (the whole read ends when the leader hangs up).
        let follow = sub.follow;
        let read = futures::stream::once(async move {
            while !path.exists() {
                tokio::time::sleep(FILE_POLL).await;
            }
            logs::read(
                path,
                ReadOptions {
                    tail,
                    follow,
                    until: None,
                },
            )
        })
        .flatten();
        let task = task.clone();
        streams.push(read.map(move |e| (task.clone(), e)).boxed());
    }
    let since = sub.since_nanos;
    let mut all = futures::stream::select_all(streams).ready_chunks(BATCH);
    loop {
        let chunk = tokio::select! {
            c = all.next() => c,
            () = tx.closed() => return,
        };
        let Some(chunk) = chunk else { return };
        let lines: Vec<LogLine> = chunk
            .into_iter()
            .filter_map(|(task_id, e)| {
                let e = e.ok()?;
                let time_nanos = e.time.timestamp_nanos_opt().unwrap_or_default();
                (time_nanos >= since).then_some(LogLine {
                    task_id,
                    time_nanos,
                    stream: match e.stream {
                        LogStream::Stdout => 1,
                        LogStream::Stderr => 2,
                    },
                    line: e.line,
                })
            })
            .collect();
        if lines.is_empty() {
            continue;
        }
        let batch = LogBatch {
            subscription_id: sub.id.clone(),
            session_id: String::new(),
            lines,
            warning: String::new(),
        };
        if tx.send(batch).await.is_err() {
            return;
        }
    }
}
