//! `Event`: what one applied batch changed, returned by `Store::apply` so the leader's
//! loops (orchestrators, scheduler, dispatcher) react to changes instead of polling.

use serde::{Deserialize, Serialize};

use super::object::{Object, ObjectKind};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    Created {
        kind: ObjectKind,
        id: String,
    },
    Updated {
        kind: ObjectKind,
        id: String,
    },
    /// Carries the removed object: it is no longer in the store to be looked up.
    Removed {
        object: Object,
    },
}

impl Event {
    pub fn kind(&self) -> ObjectKind {
        match self {
            Event::Created { kind, .. } | Event::Updated { kind, .. } => *kind,
            Event::Removed { object } => object.kind(),
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Event::Created { id, .. } | Event::Updated { id, .. } => id,
            Event::Removed { object } => object.id(),
        }
    }
}
