//! swarm-raft: the managers' replicated log (openraft) with its log and snapshots on disk.
