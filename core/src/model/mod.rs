//! The object model: Docker Engine API's Swarm objects as Docker's JSON.
//!
//! ```text
//! Service ── Spec: ServiceSpec ── TaskTemplate: TaskSpec ── ContainerSpec ── Mounts
//!    │                 ├─ Mode, UpdateConfig, RollbackConfig, EndpointSpec
//!    └─ Endpoint, UpdateStatus, JobStatus
//! Task ── Spec: TaskSpec, ServiceID, Slot, NodeID, Status, DesiredState
//! Node ── Spec: NodeSpec, Description, Status, ManagerStatus
//! Swarm ── ClusterInfo (Spec: SwarmSpec), JoinTokens
//! Secret / Config ── Spec {Name, Labels, Data}
//! Network ── Spec: NetworkSpec (driver, IPAM asked), DriverState (VNI), IPAMOptions
//! ```
//!
//! Field names are Docker's (PascalCase, with `ID`, `NanoCPUs`, `TTY`, ... renamed).
//! Durations are `i64` nanoseconds, times RFC3339Nano strings. Every spec struct keeps
//! unknown fields in `extra` (see `docs/model.md`). Deserialize with a self-describing
//! format (serde_json): `#[serde(flatten)]` needs one.

mod container_spec;
mod driver;
mod endpoint;
mod meta;
mod mount;
mod network;
mod node;
mod platform;
mod secret;
pub(crate) mod serde_util;
mod service;
mod service_spec;
mod swarm;
mod task;
mod task_spec;

pub use container_spec::{
    ConfigReference, ContainerSpec, DnsConfig, FileTarget, Healthcheck, SecretReference, Ulimit,
};
pub use driver::Driver;
pub use endpoint::{
    Endpoint, EndpointSpec, EndpointVirtualIp, PortConfig, PortProtocol, PublishMode,
    ResolutionMode,
};
pub use meta::{Meta, Version};
pub use mount::{BindOptions, Mount, MountType, TmpfsOptions, VolumeOptions};
pub use network::{
    IpamConfig, IpamOptions, Network, NetworkSpec, DEFAULT_IPAM_DRIVER, INGRESS_NAME,
    OVERLAY_DRIVER, PREDEFINED_LABEL, VXLANID_OPTION,
};
pub use node::{
    node_ingress_addr, EngineDescription, ManagerStatus, Node, NodeAvailability, NodeDescription,
    NodeRole, NodeSpec, NodeState, NodeStatus, PluginDescription, Reachability, TlsInfo,
};
pub use platform::Platform;
pub use secret::{Config, ConfigSpec, Secret, SecretSpec};
pub use serde_util::format_rfc3339_nano;
pub use service::{JobStatus, Service, ServiceStatus, UpdateState, UpdateStatus};
pub use service_spec::{
    insert_service_defaults, FailureAction, GlobalJob, GlobalService, ModeKind, ReplicatedJob,
    ReplicatedService, ServiceMode, ServiceSpec, UpdateConfig, UpdateOrder,
};
pub use swarm::{
    CaConfig, ClusterInfo, DispatcherConfig, EncryptionConfig, JoinTokens, OrchestrationConfig,
    RaftConfig, RootRotation, Swarm, SwarmSpec, TaskDefaults, DEFAULT_ADDR_POOL,
    DEFAULT_DATA_PATH_PORT, DEFAULT_SUBNET_SIZE,
};
pub use task::{
    ContainerStatus, NetworkAttachment, PortStatus, TailLine, Task, TaskStatus, LOG_TAIL_LINES,
    LOG_TAIL_LINE_BYTES,
};
pub use task_spec::{
    Limit, NetworkAttachmentConfig, Placement, PlacementPreference, ResourceRequirements,
    Resources, RestartCondition, RestartPolicy, SpreadOver, TaskSpec,
};

#[cfg(test)]
mod tests;
