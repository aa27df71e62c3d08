//! Networks as services and tasks use them: which networks a spec attaches to, who
//! holds a network (one in use is not removed), and the rule that no two networks'
//! subnets overlap — all enforced by `Store::apply`, so a check and a write cannot
//! interleave (two creates racing for one subnet: the second is refused).

use super::{ObjectKind, Store};
use crate::allocator::ipam::Subnet;
use crate::error::{Error, Result};
use crate::model::{Network, NetworkAttachmentConfig, PublishMode, Service, ServiceSpec, Task};
use crate::state::TaskState;

/// The networks a service spec attaches to: `TaskTemplate.Networks`, else the
/// deprecated `Networks` (as swarmkit reads them).
pub fn spec_networks(spec: &ServiceSpec) -> &[NetworkAttachmentConfig] {
    if spec.task_template.networks.is_empty() {
        &spec.networks
    } else {
        &spec.task_template.networks
    }
}

/// Whether a service publishes a port through the routing mesh (needs `ingress`).
pub fn publishes_ingress(spec: &ServiceSpec) -> bool {
    spec.endpoint_spec.as_ref().is_some_and(|e| {
        e.ports
            .iter()
            .any(|p| p.publish_mode_or_default() == PublishMode::Ingress)
    })
}

/// Every subnet a network asks for or was given (unparsable ones left out: validation
/// refuses them before they reach the store).
pub fn network_subnets(n: &Network) -> Vec<Subnet> {
    let allocated = n.ipam_options.iter().flat_map(|o| o.configs.iter());
    n.spec
        .ipam_configs()
        .iter()
        .chain(allocated)
        .filter_map(|c| Subnet::parse(&c.subnet))
        .collect()
}

impl Store {
    /// The network a spec's `Target` names: by ID, else by name (the API resolves names
    /// to IDs; `stack deploy` may send names).
    pub fn resolve_network(&self, target: &str) -> Option<&Network> {
        self.network(target)
            .or_else(|| self.network_by_name(target))
    }

    /// Services whose spec attaches to network `id`, in ID order.
    pub fn services_using_network(&self, id: &str) -> Vec<&Service> {
        self.services()
            .filter(|s| {
                spec_networks(&s.spec).iter().any(|a| {
                    self.resolve_network(&a.target)
                        .is_some_and(|n| n.id() == id)
                })
            })
            .collect()
    }

    /// A task that still holds network `id`: attached to it, or about to be, and not
    /// finished.
    fn task_uses_network(&self, t: &Task, id: &str) -> bool {
        let live = t.status.state <= TaskState::Running && t.desired_state <= TaskState::Running;
        live && (t.networks_attachments.iter().any(|a| a.network.id() == id)
            || t.spec.networks.iter().any(|a| {
                self.resolve_network(&a.target)
                    .is_some_and(|n| n.id() == id)
            }))
    }

    /// swarmkit's `RemoveNetwork` checks: no service attaches to it, no live task holds
    /// it; `ingress` not while a service publishes a port through the mesh.
    pub(super) fn check_network_not_in_use(&self, id: &str) -> Result<()> {
        let Some(network) = self.network(id) else {
            return Ok(());
        };
        if let Some(s) = self.services_using_network(id).first() {
            return Err(Error::NetworkInUse {
                network: id.to_owned(),
                user_kind: ObjectKind::Service,
                user: s.meta.id.clone(),
            });
        }
        if let Some(t) = self.tasks().find(|t| self.task_uses_network(t, id)) {
            return Err(Error::NetworkInUse {
                network: id.to_owned(),
                user_kind: ObjectKind::Task,
                user: t.meta.id.clone(),
            });
        }
        if network.spec.ingress {
            if let Some(s) = self.services().find(|s| publishes_ingress(&s.spec)) {
                return Err(Error::IngressInUse {
                    service: s.meta.id.clone(),
                });
            }
        }
        Ok(())
    }

    /// A network's subnets (asked for or allocated) overlap no other network's.
    pub(super) fn check_network_subnets(&self, network: &Network) -> Result<()> {
        let mine = network_subnets(network);
        if mine.is_empty() {
            return Ok(());
        }
        let overlaps = self
            .networks()
            .filter(|n| n.id() != network.id())
            .flat_map(network_subnets)
            .any(|theirs| mine.iter().any(|m| m.overlaps(&theirs)));
        if overlaps {
            return Err(Error::PoolOverlap);
        }
        Ok(())
    }
}
