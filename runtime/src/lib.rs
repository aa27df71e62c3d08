//! swarm-runtime: everything a node needs to turn "image reference + container spec"
//! into a running, limited, observed container, with no daemon to install.
//!
//! ```text
//!  reference ──pull──▶ image::ImageStore ──layers + config──▶ container::bundle
//!                       (blobs by digest,                      (overlay rootfs, mounts,
//!                        layers by diff_id)                     secrets tmpfs, config.json)
//!                                                                   │
//!                               ┌───────────────────────────────────┴─────┐
//!                               ▼                                         ▼
//!                 container::libcontainer (default)           container::containerd
//!                 one single-threaded shim process            a host's containerd over gRPC
//!                 per container (swarmd re-exec'd)
//! ```
//!
//! Both backends implement [`container::ContainerRuntime`] and pass the same conformance
//! suite (`rootfs-tests/tests/conformance.rs`).

pub mod container;
pub mod error;
pub mod image;
pub mod volume;

pub use error::{Error, Result};
