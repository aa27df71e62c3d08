//! Published ports: a service's `Endpoint.Ports` from its `EndpointSpec.Ports`, with a
//! port from 30000-32767 for each ingress port that asks for none (swarmkit's
//! `portallocator.go`).
//!
//! ```text
//! PortState::build: every published port any service holds (spec or Endpoint), by
//!                   (protocol, port) ──> the services holding it, and how
//! endpoint_ports(service):
//!   fixed ingress/host ports  copied (defaults filled: tcp, ingress)
//!   host-mode, published 0    copied, stays 0 (the node picks)
//!   ingress, published 0      the port the service already holds for the same
//!                             (name, protocol, target), else the first free one
//! ```
//!
//! Nothing is freed explicitly: a port is held while a stored service's spec or
//! endpoint has it, so a removed service frees its ports and a new leader rebuilds the
//! same view.

use std::collections::HashMap;

use crate::error::Error;
use crate::model::{PortConfig, PortProtocol, PublishMode, Service};

/// swarmkit's dynamic range, for ingress ports published without a number.
pub const DYNAMIC_PORT_START: u32 = 30000;
pub const DYNAMIC_PORT_END: u32 = 32767;

/// Ours: the dynamic range is used up.
pub const NO_PORT: &str = "no available port in the dynamic range 30000-32767";

/// Who holds each published port.
#[derive(Debug, Default)]
pub struct PortState {
    held: HashMap<(PortProtocol, u32), Vec<Holder>>,
}

#[derive(Debug, Clone, PartialEq)]
struct Holder {
    id: String,
    name: String,
    mode: PublishMode,
}

impl PortState {
    pub fn build<'a>(services: impl Iterator<Item = &'a Service>) -> PortState {
        let mut state = PortState::default();
        for s in services {
            let asked = s.spec.endpoint_spec.iter().flat_map(|e| e.ports.iter());
            for p in asked.chain(&s.endpoint.ports) {
                if p.published_port != 0 {
                    state.hold(s, p);
                }
            }
        }
        state
    }

    fn hold(&mut self, s: &Service, p: &PortConfig) {
        let holders = self
            .held
            .entry((p.protocol_or_default(), p.published_port))
            .or_default();
        let entry = Holder {
            id: s.meta.id.clone(),
            name: s.spec.name.clone(),
            mode: p.publish_mode_or_default(),
        };
        if !holders.contains(&entry) {
            holders.push(entry);
        }
    }

    /// A service other than `id` holding the port, in any mode (`ingress`: as an
    /// ingress port only).
    fn other_holder(&self, id: &str, key: &(PortProtocol, u32), ingress: bool) -> Option<&Holder> {
        self.held
            .get(key)?
            .iter()
            .find(|h| h.id != id && (!ingress || h.mode == PublishMode::Ingress))
    }

    /// The first port of the dynamic range nobody holds for `protocol`.
    fn free_port(&self, protocol: &PortProtocol) -> Option<u32> {
        (DYNAMIC_PORT_START..=DYNAMIC_PORT_END)
            .find(|&port| !self.held.contains_key(&(protocol.clone(), port)))
    }

    /// The service's `Endpoint.Ports` (holding the ports it picks), or why not: a fixed
    /// ingress port another service holds (the store refuses such specs; only data
    /// from before that rule gets here), or no port left.
    pub fn endpoint_ports(&mut self, service: &Service) -> Result<Vec<PortConfig>, String> {
        let id = service.meta.id.as_str();
        let asked = service
            .spec
            .endpoint_spec
            .as_ref()
            .map_or(&[][..], |e| &e.ports[..]);
        let mut out = Vec::with_capacity(asked.len());
        for p in asked {
            let mut port = p.clone();
            port.protocol = Some(p.protocol_or_default());
            port.publish_mode = Some(p.publish_mode_or_default());
            let ingress = port.publish_mode == Some(PublishMode::Ingress);
            if ingress && p.published_port != 0 {
                let key = (p.protocol_or_default(), p.published_port);
                if let Some(h) = self.other_holder(id, &key, true) {
                    return Err(Error::PortInUse {
                        port: p.published_port,
                        name: h.name.clone(),
                        id: h.id.clone(),
                        held_as: h.mode.clone(),
                    }
                    .to_string());
                }
            }
            if ingress && p.published_port == 0 {
                port.published_port = match self.kept_port(service, &port, &out) {
                    Some(kept) => kept,
                    None => self
                        .free_port(&port.protocol_or_default())
                        .ok_or_else(|| NO_PORT.to_owned())?,
                };
                self.hold(service, &port);
            }
            out.push(port);
        }
        Ok(out)
    }

    /// The dynamic port the service already holds for the same (name, protocol,
    /// target) in ingress mode, if nobody else holds it and this pass did not give it
    /// to another of the service's ports.
    fn kept_port(
        &self,
        service: &Service,
        port: &PortConfig,
        so_far: &[PortConfig],
    ) -> Option<u32> {
        let id = service.meta.id.as_str();
        service
            .endpoint
            .ports
            .iter()
            .filter(|held| {
                held.published_port != 0
                    && held.name == port.name
                    && held.protocol_or_default() == port.protocol_or_default()
                    && held.target_port == port.target_port
                    && held.publish_mode_or_default() == PublishMode::Ingress
            })
            .map(|held| held.published_port)
            .find(|&p| {
                let key = (port.protocol_or_default(), p);
                self.other_holder(id, &key, false).is_none()
                    && !so_far
                        .iter()
                        .any(|o| o.published_port == p && o.protocol == port.protocol)
                    && !asked_fixed(service, &key)
            })
    }
}

/// Whether the service's spec asks for `key` as a fixed port (a fixed port wins over
/// a dynamic one the service held before).
fn asked_fixed(service: &Service, key: &(PortProtocol, u32)) -> bool {
    service.spec.endpoint_spec.iter().any(|e| {
        e.ports
            .iter()
            .any(|p| p.published_port == key.1 && p.protocol_or_default() == key.0)
    })
}
