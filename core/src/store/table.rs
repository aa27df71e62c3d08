//! `Table<T>`: one kind of object by ID (ordered, so ID-prefix lookups are a range scan),
//! with a case-insensitive index of unique names for the kinds that have them.

use std::collections::{BTreeMap, HashMap};

use super::object::Stored;

#[derive(Debug, Clone)]
pub(crate) struct Table<T> {
    rows: BTreeMap<String, T>,
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

impl<T: Stored> Table<T> {
    pub fn get(&self, id: &str) -> Option<&T> {
        self.rows.get(id)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.rows.values()
    }

    /// Rows whose ID starts with `prefix`, in ID order.
    pub fn by_prefix(&self, prefix: &str) -> Vec<&T> {
        self.rows
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(id, _)| id.starts_with(prefix))
            .map(|(_, row)| row)
            .collect()
    }

    /// The ID of the row holding `name` (case-insensitively), if any.
    pub fn name_owner(&self, name: &str) -> Option<&str> {
        self.names.get(&name_key(name)).map(String::as_str)
    }

    pub fn by_name(&self, name: &str) -> Option<&T> {
        self.name_owner(name).and_then(|id| self.rows.get(id))
    }

    /// Inserts or replaces; returns the replaced row. Callers check name conflicts first.
    pub fn insert(&mut self, row: T) -> Option<T> {
        let id = row.meta().id.clone();
        let old = self.rows.remove(&id);
        if let Some(name) = old.as_ref().and_then(Stored::unique_name) {
            self.names.remove(&name_key(name));
        }
        if let Some(name) = row.unique_name().filter(|n| !n.is_empty()) {
            self.names.insert(name_key(name), id.clone());
        }
        self.rows.insert(id, row);
        old
    }

    pub fn remove(&mut self, id: &str) -> Option<T> {
        let old = self.rows.remove(id)?;
        if let Some(name) = old.unique_name() {
            if self.names.get(&name_key(name)).map(String::as_str) == Some(id) {
                self.names.remove(&name_key(name));
            }
        }
        Some(old)
    }
}
