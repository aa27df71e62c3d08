//! Published ports as the store keeps them unique: an ingress port (published port and
//! protocol) belongs to one service, and no service asks through the mesh for a port
//! another publishes on its nodes. swarmkit checks this in `controlapi` only
//! (`checkPortConflicts`, best effort); the API calls [`check_port_conflicts`] for the
//! error before proposing, and `Store::apply` checks again, so two creates racing for
//! one port cannot both win.

use super::Store;
use crate::error::{Error, Result};
use crate::model::{PortConfig, PortProtocol, PublishMode, Service, ServiceSpec};

/// The ports a service holds: the fixed ones its spec asks for and the ones the
/// allocator gave it (`Endpoint.Ports`), published ones only.
fn held_ports(service: &Service) -> impl Iterator<Item = &PortConfig> {
    let asked = service
        .spec
        .endpoint_spec
        .iter()
        .flat_map(|e| e.ports.iter());
    asked
        .chain(service.endpoint.ports.iter())
        .filter(|p| p.published_port != 0)
}

/// Refuses `spec` when one of its published ports is held by a service other than
/// `service_id` (`None` on create): an ingress port by anyone, or a host-mode port when
/// `spec` wants it through the mesh. Host-mode ports may be shared (the scheduler keeps
/// them apart per node). The error is swarmkit's, InvalidArgument.
pub fn check_port_conflicts(
    store: &Store,
    spec: &ServiceSpec,
    service_id: Option<&str>,
) -> Result<()> {
    let Some(endpoint) = &spec.endpoint_spec else {
        return Ok(());
    };
    let wanted = |mode: PublishMode| -> Vec<(PortProtocol, u32)> {
        endpoint
            .ports
            .iter()
            .filter(|p| p.published_port != 0 && p.publish_mode_or_default() == mode)
            .map(|p| (p.protocol_or_default(), p.published_port))
            .collect()
    };
    let (ingress, host) = (wanted(PublishMode::Ingress), wanted(PublishMode::Host));
    if ingress.is_empty() && host.is_empty() {
        return Ok(());
    }
    for other in store.services() {
        if Some(other.meta.id.as_str()) == service_id {
            continue;
        }
        for p in held_ports(other) {
            let key = (p.protocol_or_default(), p.published_port);
            let held_as = p.publish_mode_or_default();
            let conflict = match held_as {
                PublishMode::Host => ingress.contains(&key),
                PublishMode::Ingress => ingress.contains(&key) || host.contains(&key),
                PublishMode::Other(_) => false,
            };
            if conflict {
                return Err(Error::PortInUse {
                    port: p.published_port,
                    name: other.spec.name.clone(),
                    id: other.meta.id.clone(),
                    held_as,
                });
            }
        }
    }
    Ok(())
}

impl Store {
    /// Whether ingress port `port`/`protocol` is held by a service other than `except`.
    pub fn ingress_port_held(&self, protocol: &PortProtocol, port: u32, except: &str) -> bool {
        self.services()
            .filter(|s| s.meta.id != except)
            .flat_map(held_ports)
            .any(|p| {
                p.published_port == port
                    && p.protocol_or_default() == *protocol
                    && p.publish_mode_or_default() == PublishMode::Ingress
            })
    }
}
