//! Timers and snapshot policy of one Raft node, mapped onto openraft's `Config`.

use std::time::Duration;

use openraft::SnapshotPolicy;

use crate::error::RaftError;

/// How a node times out, snapshots and gives up on a proposal.
///
/// swarmkit ticks every second with an election after 10 ticks; our defaults are shorter so a
/// failover fits in 2 s, and every value can be changed (tests use tens of ms).
///
/// In openraft 0.9 a follower that knew a leader waits for the leader's lease
/// (`election_timeout_max`) plus a random election timeout in `[min, max)` after the last
/// heartbeat before it stands, so a failover takes `max + [min, max)` plus one vote and
/// one commit: 1.3 to 1.6 s with the defaults (measured: `tests/grpc_cluster.rs`).
#[derive(Debug, Clone)]
pub struct RaftConfig {
    /// The leader's heartbeat to followers.
    pub heartbeat_interval: Duration,
    /// A follower that hears no leader for a random time in `[min, max)` starts an election.
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot after this many applied entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot, for followers slightly behind.
    pub keep_logs_after_snapshot: u64,
    /// How long `propose` waits for its entry to commit before it reports no quorum.
    pub propose_timeout: Duration,
    /// The manager's key that seals every record on disk (log entries, vote, snapshots);
    /// `None` writes them in the clear. A directory written with a key opens only with it.
    pub data_key: Option<DataKey>,
}

/// A 256-bit key sealing a manager's Raft data at rest; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey([u8; 32]);

impl DataKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl From<[u8; 32]> for DataKey {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(500),
            election_timeout_max: Duration::from_millis(800),
            // swarmkit: SnapshotInterval 10000, LogEntriesForSlowFollowers 500.
            snapshot_every: 10_000,
            keep_logs_after_snapshot: 500,
            propose_timeout: Duration::from_secs(5),
            data_key: None,
        }
    }
}

impl RaftConfig {
    /// Short timers for tests with several nodes in one process.
    pub fn fast() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(20),
            election_timeout_min: Duration::from_millis(100),
            election_timeout_max: Duration::from_millis(200),
            propose_timeout: Duration::from_millis(1000),
            ..Self::default()
        }
    }

    pub(crate) fn to_openraft(&self) -> Result<openraft::Config, RaftError> {
        let config = openraft::Config {
            cluster_name: "swarm".to_string(),
            heartbeat_interval: millis(self.heartbeat_interval),
            election_timeout_min: millis(self.election_timeout_min),
            election_timeout_max: millis(self.election_timeout_max),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every.max(1)),
            max_in_snapshot_log_to_keep: self.keep_logs_after_snapshot,
            // A chunk travels as a JSON array of numbers (up to 4 bytes per byte) in one
            // gRPC message; 1 MiB chunks stay well under the transport's message limit.
            snapshot_max_chunk_size: 1024 * 1024,
            // openraft bounds each AppendEntries by the heartbeat interval: a batch that
            // takes longer to send, seal and append is cut off and sent again whole, for
            // ever (a leader that cannot commit). Small batches keep each call short.
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| RaftError::Config(e.to_string()))
    }
}

/// Entries per AppendEntries call (openraft's default is 300).
const MAX_PAYLOAD_ENTRIES: u64 = 32;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
