//! Three managers in one process over the in-process router: election, replication,
//! a leader cut off (the majority goes on, the cut-off one says it cannot commit), heal and
//! catch-up by snapshot.

mod common;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use common::{put, Kv, DEADLINE};
use futures::future::select_all;
use swarm_raft::error::NO_LEADER_MESSAGE;
use swarm_raft::network::Router;
use swarm_raft::{ProposeError, RaftConfig, RaftNode, ServerState};

struct Cluster {
    router: Router<Kv>,
    nodes: BTreeMap<u64, RaftNode<Kv>>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    async fn start(ids: &[u64], config: RaftConfig) -> Result<Self> {
        let router = Router::new();
        let mut nodes = BTreeMap::new();
        let mut dirs = Vec::new();
        for &id in ids {
            let dir = tempfile::tempdir()?;
            let node = RaftNode::open(
                dir.path(),
                id,
                format!("manager-{id}"),
                Kv::default(),
                config.clone(),
                router.network(id),
            )
            .await?;
            router.register(id, node.raft().clone());
            nodes.insert(id, node);
            dirs.push(dir);
        }
        let members = ids
            .iter()
            .map(|&id| (id, format!("manager-{id}")))
            .collect();
        nodes[&ids[0]].initialize(members).await?;
        Ok(Self {
            router,
            nodes,
            _dirs: dirs,
        })
    }

    fn node(&self, id: u64) -> &RaftNode<Kv> {
        &self.nodes[&id]
    }

    /// Waits until every node in `among` names the same leader, one of `among` that sees
    /// itself as leader; wakes on any node's metrics change, gives up at the deadline.
    async fn agreed_leader(&self, among: &[u64]) -> Result<u64> {
        let mut rxs: Vec<_> = among.iter().map(|&id| self.node(id).metrics()).collect();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let leaders: Vec<Option<u64>> =
                rxs.iter().map(|rx| rx.borrow().current_leader).collect();
            if let Some(Some(l)) = leaders.first() {
                let leads = among
                    .iter()
                    .position(|id| id == l)
                    .is_some_and(|at| rxs[at].borrow().state == ServerState::Leader);
                if leads && leaders.iter().all(|x| x == &Some(*l)) {
                    return Ok(*l);
                }
            }
            let changed = select_all(rxs.iter_mut().map(|rx| Box::pin(rx.changed())));
            tokio::time::timeout_at(deadline, changed)
                .await
                .with_context(|| format!("no agreed leader among {among:?}: {leaders:?}"))?
                .0?;
        }
    }

    async fn state(&self, id: u64) -> BTreeMap<String, u64> {
        self.node(id).read(|kv| kv.map.clone()).await
    }

    async fn shutdown(self) -> Result<()> {
        for (_, node) in self.nodes {
            node.shutdown().await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_managers_failover_and_heal() -> Result<()> {
    let config = RaftConfig {
        // Small, so the cut-off node falls behind the purged log and needs a snapshot.
        snapshot_every: 20,
        keep_logs_after_snapshot: 5,
        ..RaftConfig::fast()
    };
    let c = Cluster::start(&[1, 2, 3], config).await?;
    let all = [1, 2, 3];

    // A leader is elected and writes reach every manager.
    let old = c.agreed_leader(&all).await?;
    for i in 0..30 {
        c.node(old).propose(put(format!("before-{i}"), i)).await?;
    }
    let index = c.node(old).applied_index();
    for id in all {
        c.node(id).wait_applied(index, DEADLINE).await?;
        assert_eq!(c.state(id).await.len(), 30);
    }

    // A follower does not take writes and names the leader.
    let follower = *all.iter().find(|&&id| id != old).unwrap();
    match c.node(follower).propose(put("on-follower", 0)).await {
        Err(ProposeError::NotLeader {
            leader_id,
            leader_addr,
        }) => {
            assert_eq!(leader_id, old);
            assert_eq!(leader_addr, format!("manager-{old}"));
        }
        other => panic!("a follower accepted a write: {other:?}"),
    }

    // Cut the leader off: the other two elect a new one and go on.
    c.router.isolate(old);
    let majority: Vec<u64> = all.iter().copied().filter(|&id| id != old).collect();
    let new = c.agreed_leader(&majority).await?;
    assert_ne!(new, old);
    for i in 0..60 {
        c.node(new).propose(put(format!("during-{i}"), i)).await?;
    }

    // The cut-off one cannot commit, and says so in Docker's words.
    let err = c
        .node(old)
        .propose(put("cut-off", 1))
        .await
        .expect_err("a cut-off manager committed a write");
    assert!(
        matches!(err, ProposeError::NoQuorum { .. } | ProposeError::NoLeader),
        "unexpected error: {err:?}"
    );
    assert_eq!(err.to_string(), NO_LEADER_MESSAGE);
    assert!(err.is_retryable());

    // Heal: it follows the new leader and catches up (by snapshot: the log was purged).
    c.router.rejoin(old);
    c.agreed_leader(&all).await?;
    let index = c.node(new).applied_index();
    let m = c
        .node(old)
        .wait_metrics(DEADLINE, "caught up", |m| {
            m.last_applied.is_some_and(|l| l.index >= index)
        })
        .await?;
    assert!(m.snapshot.is_some(), "caught up through a snapshot");
    let expected = c.state(new).await;
    assert_eq!(expected.len(), 90);
    assert!(
        !expected.contains_key("cut-off"),
        "an uncommitted write survived"
    );
    for id in all {
        c.node(id).wait_applied(index, DEADLINE).await?;
        assert_eq!(c.state(id).await, expected, "node {id} disagrees");
    }

    // And takes writes from the new leader again.
    c.node(new).propose(put("after-heal", 1)).await?;
    let index = c.node(new).applied_index();
    c.node(old).wait_applied(index, DEADLINE).await?;
    assert_eq!(c.state(old).await.get("after-heal"), Some(&1));
    c.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_quorum_without_a_majority() -> Result<()> {
    let c = Cluster::start(&[1, 2, 3], RaftConfig::fast()).await?;
    let leader = c.agreed_leader(&[1, 2, 3]).await?;
    c.node(leader).propose(put("a", 1)).await?;
    // Both followers gone: nobody can commit.
    for id in [1, 2, 3] {
        if id != leader {
            c.router.isolate(id);
        }
    }
    let err = c
        .node(leader)
        .propose(put("b", 2))
        .await
        .expect_err("committed without quorum");
    assert!(
        err.outcome_unknown() || matches!(err, ProposeError::NoLeader),
        "{err:?}"
    );
    c.router.heal_all();
    // The quorum is back: the same leader (or a new one) commits again.
    let leader = c.agreed_leader(&[1, 2, 3]).await?;
    c.node(leader).propose(put("c", 3)).await?;
    assert_eq!(c.state(leader).await.get("c"), Some(&3));
    c.shutdown().await
}
