//! Test helpers: a key-value state machine and deadline waits.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use swarm_raft::StateMachine;

/// A key-value map; every put returns the previous value.
#[derive(Debug, Default, Clone)]
pub struct Kv {
    pub map: BTreeMap<String, u64>,
    /// How many commands were applied, counting those restored from a snapshot.
    pub applied: u64,
    pub last_index: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Put {
    pub key: String,
    pub value: u64,
}

#[derive(Serialize, Deserialize)]
struct KvSnapshot {
    map: BTreeMap<String, u64>,
    applied: u64,
    last_index: u64,
}

impl StateMachine for Kv {
    type Command = Put;
    type Response = Option<u64>;

    fn apply(&mut self, index: u64, cmd: &Put) -> Option<u64> {
        assert!(
            index > self.last_index,
            "applied out of order: {index} after {}",
            self.last_index
        );
        self.last_index = index;
        self.applied += 1;
        self.map.insert(cmd.key.clone(), cmd.value)
    }

    fn snapshot(&self) -> Vec<u8> {
        serde_json::to_vec(&KvSnapshot {
            map: self.map.clone(),
            applied: self.applied,
            last_index: self.last_index,
        })
        .unwrap()
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), String> {
        let s: KvSnapshot = serde_json::from_slice(data).map_err(|e| e.to_string())?;
        self.map = s.map;
        self.applied = s.applied;
        self.last_index = s.last_index;
        Ok(())
    }
}

pub fn put(key: impl Into<String>, value: u64) -> Put {
    Put {
        key: key.into(),
        value,
    }
}

pub const DEADLINE: Duration = Duration::from_secs(10);
