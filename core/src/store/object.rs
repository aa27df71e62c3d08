//! `Object` (any stored object) and `ObjectKind` (which table), plus the `Stored` trait
//! the tables are generic over.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Config, Meta, Network, Node, Secret, Service, Swarm, Task};

/// The store's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    Service,
    Task,
    Node,
    Secret,
    Config,
    Cluster,
    Network,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Service => "service",
            ObjectKind::Task => "task",
            ObjectKind::Node => "node",
            ObjectKind::Secret => "secret",
            ObjectKind::Config => "config",
            ObjectKind::Cluster => "cluster",
            ObjectKind::Network => "network",
        }
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any stored object; what `Create` and `Update` actions carry. Boxed: a `Service` is
/// kilobytes, and batches and events hold many objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Object {
    Service(Box<Service>),
    Task(Box<Task>),
    Node(Box<Node>),
    Secret(Box<Secret>),
    Config(Box<Config>),
    Cluster(Box<Swarm>),
    Network(Box<Network>),
}

impl Object {
    pub fn kind(&self) -> ObjectKind {
        match self {
            Object::Service(_) => ObjectKind::Service,
            Object::Task(_) => ObjectKind::Task,
            Object::Node(_) => ObjectKind::Node,
            Object::Secret(_) => ObjectKind::Secret,
            Object::Config(_) => ObjectKind::Config,
            Object::Cluster(_) => ObjectKind::Cluster,
            Object::Network(_) => ObjectKind::Network,
        }
    }

    pub fn meta(&self) -> &Meta {
        match self {
            Object::Service(o) => o.meta(),
            Object::Task(o) => o.meta(),
            Object::Node(o) => o.meta(),
            Object::Secret(o) => o.meta(),
            Object::Config(o) => o.meta(),
            Object::Cluster(o) => o.meta(),
            Object::Network(o) => o.meta(),
        }
    }

    pub fn id(&self) -> &str {
        &self.meta().id
    }
}

/// What every table's rows have in common.
pub trait Stored: Clone {
    const KIND: ObjectKind;
    fn meta(&self) -> &Meta;
    fn meta_mut(&mut self) -> &mut Meta;
    /// The name that must be unique in the table (services, secrets, configs).
    fn unique_name(&self) -> Option<&str> {
        None
    }
    fn into_object(self) -> Object;
}

macro_rules! stored {
    ($ty:ty, $kind:ident, $variant:ident, |$o:ident| $meta:expr, |$m:ident| $meta_mut:expr, $name:expr) => {
        impl Stored for $ty {
            const KIND: ObjectKind = ObjectKind::$kind;
            fn meta(&self) -> &Meta {
                let $o = self;
                $meta
            }
            fn meta_mut(&mut self) -> &mut Meta {
                let $m = self;
                $meta_mut
            }
            fn unique_name(&self) -> Option<&str> {
                let f: fn(&$ty) -> Option<&str> = $name;
                f(self)
            }
            fn into_object(self) -> Object {
                Object::$variant(Box::new(self))
            }
        }
    };
}

stored!(
    Service,
    Service,
    Service,
    |o| &o.meta,
    |m| &mut m.meta,
    |s| Some(&s.spec.name)
);
stored!(Task, Task, Task, |o| &o.meta, |m| &mut m.meta, |_| None);
stored!(Node, Node, Node, |o| &o.meta, |m| &mut m.meta, |_| None);
stored!(Secret, Secret, Secret, |o| &o.meta, |m| &mut m.meta, |s| {
    Some(&s.spec.name)
});
stored!(Config, Config, Config, |o| &o.meta, |m| &mut m.meta, |s| {
    Some(&s.spec.name)
});
stored!(
    Swarm,
    Cluster,
    Cluster,
    |o| &o.cluster.meta,
    |m| &mut m.cluster.meta,
    |_| None
);
stored!(
    Network,
    Network,
    Network,
    |o| &o.meta,
    |m| &mut m.meta,
    |n| { Some(&n.spec.name) }
);
