//! `Table<T>`: one kind of object by ID (ordered, so ID-prefix lookups are a range scan),
//! with a case-insensitive index of unique names for the kinds that have them.
//!
//! Both maps are persistent (`imbl`): cloning a table is O(1) and the clone shares every
//! node with the original; a write afterwards copies only the B-tree path it touches.
//! That is what lets the Raft state machine publish an immutable copy of the whole store
//! after every applied batch (docs/raft.md, "Reads never wait for writes").

use std::sync::Arc;

use imbl::{HashMap, OrdMap};

use super::object::Stored;

/// Rows are `Arc`s: a task is several hundred bytes, and a write to a node that a
/// published copy shares copies the node's values (a pointer each, not a task).
#[derive(Debug, Clone)]
pub(crate) struct Table<T> {
    rows: OrdMap<String, Arc<T>>,
    /// Lowercased unique name -> ID (swarmkit indexes names lowercased too).
    names: HashMap<String, String>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: OrdMap::new(),
            names: HashMap::new(),
        }
    }
}

fn name_key(name: &str) -> String {
    name.to_lowercase()
}

impl<T: Stored> Table<T> {
    pub fn get(&self, id: &str) -> Option<&T> {
        self.rows.get(id).map(|r| &**r)
    }

    /// The row `id`'s slot, to replace the row in place (no key copy, no rebalancing);
    /// the caller must not change its unique name.
    pub fn slot_mut(&mut self, id: &str) -> Option<&mut Arc<T>> {
        self.rows.get_mut(id)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.rows.values().map(|r| &**r)
    }

    /// Rows whose ID starts with `prefix`, in ID order.
    pub fn by_prefix(&self, prefix: &str) -> Vec<&T> {
        self.rows
            .range::<_, str>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(id, _)| id.starts_with(prefix))
            .map(|(_, row)| &**row)
            .collect()
    }

    /// The ID of the row holding `name` (case-insensitively), if any.
    pub fn name_owner(&self, name: &str) -> Option<&str> {
        self.names.get(&name_key(name)).map(String::as_str)
    }

    pub fn by_name(&self, name: &str) -> Option<&T> {
        self.name_owner(name).and_then(|id| self.get(id))
    }

    /// Inserts or replaces; returns the replaced row. Callers check name conflicts first.
    pub fn insert(&mut self, row: Arc<T>) -> Option<Arc<T>> {
        let id = row.meta().id.clone();
        let name = row
            .unique_name()
            .filter(|n| !n.is_empty())
            .map(|n| (name_key(n), id.clone()));
        let old = self.rows.insert(id, row);
        if let Some(old_name) = old.as_deref().and_then(Stored::unique_name) {
            self.names.remove(&name_key(old_name));
        }
        if let Some((name, id)) = name {
            self.names.insert(name, id);
        }
        old
    }

    pub fn remove(&mut self, id: &str) -> Option<Arc<T>> {
        let old = self.rows.remove(id)?;
        if let Some(name) = old.unique_name() {
            if self.names.get(&name_key(name)).map(String::as_str) == Some(id) {
                self.names.remove(&name_key(name));
            }
        }
        Some(old)
    }
}
