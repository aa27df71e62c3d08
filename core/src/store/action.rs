//! `StoreAction`: one change to the store, and the unit of a Raft log entry (a batch of
//! them). Serde, so the log can carry it.
//!
//! `Create`/`Update`/`Remove` are the general forms; `Update` is checked against the
//! stored `Version` (optimistic concurrency). The `Set*`/`Assign*` forms change one part
//! of a task against whatever is stored when the entry is applied, so the hot paths
//! (agent status reports, scheduling decisions, orchestrator shutdowns) neither race
//! with each other nor carry whole tasks through the log.

use serde::{Deserialize, Serialize};

use super::object::{Object, ObjectKind};
use crate::model::{
    EndpointSpec, EndpointVirtualIp, NetworkAttachment, NodeStatus, PortConfig, TaskStatus, TlsInfo,
};
use crate::state::TaskState;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoreAction {
    /// Insert a new object; its ID must be new (and its name, where names are unique).
    Create(Object),
    /// Replace an object; its `Version.Index` must equal the stored one.
    Update(Object),
    /// Delete an object by ID.
    Remove(ObjectKind, String),
    /// An agent's report. Ignored (no error, no event) when the task is gone or the
    /// report would move its state backwards: a late report is not a failure.
    SetTaskStatus { id: String, status: TaskStatus },
    /// The scheduler's decision: set the node (only if unset or the same) and status.
    /// Ignored when the task is gone or has moved past `status.state` meanwhile.
    AssignTask {
        id: String,
        node_id: String,
        status: TaskStatus,
    },
    /// The orchestrator's decision. Ignored when the task is gone or its desired state
    /// is already at or past `desired_state`.
    SetTaskDesiredState {
        id: String,
        desired_state: TaskState,
    },
    /// The allocator's decision: the task's network attachments (set only while it has
    /// none, so an address is never handed out twice) and its status (PENDING; only if
    /// that moves it forward). Ignored when the task is gone or neither applies.
    AllocateTask {
        id: String,
        networks_attachments: Vec<NetworkAttachment>,
        status: TaskStatus,
    },
    /// The allocator's decision: a service's `Endpoint.VirtualIPs`. Unversioned (the
    /// user may update the spec meanwhile: the next pass follows); ignored when the
    /// service is gone or nothing changes.
    SetServiceVirtualIps {
        id: String,
        virtual_ips: Vec<EndpointVirtualIp>,
    },
    /// The allocator's decision: a service's `Endpoint.Spec` and `Endpoint.Ports` (the
    /// spec's ports, defaults filled, dynamic ones picked). Unversioned, like the VIPs;
    /// ignored when the service is gone, nothing changes, or an ingress port in `ports`
    /// is held by another service meanwhile (the next pass picks another).
    SetServiceEndpointPorts {
        id: String,
        spec: EndpointSpec,
        ports: Vec<PortConfig>,
    },
    /// The allocator's decision: a node's own network attachments (its address on
    /// `ingress`). Unversioned; ignored when the node is gone or nothing changes.
    SetNodeAttachments {
        id: String,
        attachments: Vec<NetworkAttachment>,
    },
    /// The dispatcher's view of a node (Ready on a session, Down on missed heartbeats),
    /// and its address. Unversioned, as the node's spec may change meanwhile; ignored
    /// when the node is gone or nothing changes.
    SetNodeStatus { id: String, status: NodeStatus },
    /// The CA's record of the certificate it issued a node (`Description.TLSInfo`: the
    /// root it trusts, the issuer of its certificate). Unversioned; ignored when the node
    /// is gone or nothing changes.
    SetNodeTlsInfo { id: String, tls_info: TlsInfo },
}

impl StoreAction {
    /// The table the action touches.
    pub fn kind(&self) -> ObjectKind {
        match self {
            StoreAction::Create(o) | StoreAction::Update(o) => o.kind(),
            StoreAction::Remove(kind, _) => *kind,
            StoreAction::SetTaskStatus { .. }
            | StoreAction::AssignTask { .. }
            | StoreAction::SetTaskDesiredState { .. }
            | StoreAction::AllocateTask { .. } => ObjectKind::Task,
            StoreAction::SetServiceVirtualIps { .. }
            | StoreAction::SetServiceEndpointPorts { .. } => ObjectKind::Service,
            StoreAction::SetNodeStatus { .. }
            | StoreAction::SetNodeTlsInfo { .. }
            | StoreAction::SetNodeAttachments { .. } => ObjectKind::Node,
        }
    }
}
