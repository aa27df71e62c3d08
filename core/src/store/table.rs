//! `Table<T>`: one kind of object by ID (ordered, so ID-prefix lookups are a range scan),
//! with a case-insensitive index of unique names for the kinds that have them.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::object::Stored;

/// Rows are `Arc`s: a task is several hundred bytes, and a B-tree node moves its values
/// on every insert; and a clone of the table (what a Raft snapshot serializes, outside
/// the store's lock) shares every row. A row changed while a clone holds it is copied
/// first ([`Arc::make_mut`]); otherwise it is changed in place.
#[derive(Debug, Clone)]
pub(crate) struct Table<T> {
    rows: BTreeMap<String, Arc<T>>,
    /// Lowercased unique name -> ID (swarmkit indexes names lowercased too).
    names: HashMap<String, String>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: BTreeMap::new(),
            names: HashMap::new(),
        }
    }
}

fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// A row taken out of a table, boxed as the store's objects are ([`super::Object`]):
/// moved out when no clone shares it, copied when one does.
fn unshared<T: Clone>(row: Arc<T>) -> Box<T> {
    Box::new(Arc::try_unwrap(row).unwrap_or_else(|shared| (*shared).clone()))
}

impl<T: Stored + Clone> Table<T> {
    pub fn get(&self, id: &str) -> Option<&T> {
        self.rows.get(id).map(|r| &**r)
    }

    /// The row `id`, to change in place; the caller must not change its unique name.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        self.rows.get_mut(id).map(Arc::make_mut)
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
            .range::<str, _>((
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
    pub fn insert(&mut self, row: Box<T>) -> Option<Box<T>> {
        let row: Arc<T> = Arc::from(row);
        let id = row.meta().id.clone();
        let name = row
            .unique_name()
            .filter(|n| !n.is_empty())
            .map(|n| (name_key(n), id.clone()));
        let old = match self.rows.entry(id) {
            Entry::Occupied(mut e) => Some(std::mem::replace(e.get_mut(), row)),
            Entry::Vacant(e) => {
                e.insert(row);
                None
            }
        };
        if let Some(old_name) = old.as_deref().and_then(Stored::unique_name) {
            self.names.remove(&name_key(old_name));
        }
        if let Some((name, id)) = name {
            self.names.insert(name, id);
        }
        old.map(unshared)
    }

    pub fn remove(&mut self, id: &str) -> Option<Box<T>> {
        let old = self.rows.remove(id)?;
        if let Some(name) = old.unique_name() {
            if self.names.get(&name_key(name)).map(String::as_str) == Some(id) {
                self.names.remove(&name_key(name));
            }
        }
        Some(unshared(old))
    }
}
