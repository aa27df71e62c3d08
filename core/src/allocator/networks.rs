//! Networks: the `ingress` network `swarm init` makes, and giving a network its
//! subnets (asked for, or cut from the swarm's pools) and its VNI.

use std::collections::BTreeMap;

use super::ipam::{next_subnet, parse_addr, Subnet};
use crate::model::{
    Driver, IpamConfig, IpamOptions, Network, NetworkSpec, DEFAULT_IPAM_DRIVER, INGRESS_NAME,
    OVERLAY_DRIVER, VXLANID_OPTION,
};

/// libnetwork's words when the pools have no subnet left.
pub const NO_POOL: &str = "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network";
/// Ours: every VNI in use (16 million networks).
pub const NO_VNI: &str = "no available VXLAN network identifier";

/// The spec of the routing-mesh network `swarm init` creates (swarmkit's
/// `newIngressNetwork`): named `ingress`, overlay, no subnet asked (the allocator gives
/// it the pools' first, `10.0.0.0/24` by default, and VNI 4096).
pub fn ingress_network_spec() -> NetworkSpec {
    NetworkSpec {
        name: INGRESS_NAME.to_owned(),
        driver_configuration: Some(Driver {
            name: OVERLAY_DRIVER.to_owned(),
            ..Driver::default()
        }),
        ingress: true,
        ipam_options: Some(IpamOptions {
            driver: Driver {
                name: DEFAULT_IPAM_DRIVER.to_owned(),
                ..Driver::default()
            },
            ..IpamOptions::default()
        }),
        scope: "swarm".to_owned(),
        ..NetworkSpec::default()
    }
}

/// The IPAM configs a network gets: its own, each with a gateway (the first host unless
/// given), or one subnet of `size` from `pools`. `taken` is every other network's
/// subnets; an asked subnet overlapping one is refused with libnetwork's words.
pub fn ipam_configs(
    spec: &NetworkSpec,
    pools: &[Subnet],
    size: u8,
    taken: &[Subnet],
) -> Result<Vec<IpamConfig>, String> {
    let asked = spec.ipam_configs();
    if asked.is_empty() {
        let subnet = next_subnet(pools, size, taken).ok_or_else(|| NO_POOL.to_owned())?;
        return Ok(vec![IpamConfig {
            subnet: subnet.to_string(),
            gateway: ip(subnet.first_host()),
            ..IpamConfig::default()
        }]);
    }
    let mut out = Vec::with_capacity(asked.len());
    let mut mine: Vec<Subnet> = Vec::new();
    for c in asked {
        let subnet = Subnet::parse(&c.subnet)
            .ok_or_else(|| format!("ipam configuration: invalid subnet {}", c.subnet))?;
        if taken.iter().chain(&mine).any(|t| t.overlaps(&subnet)) {
            return Err(crate::Error::PoolOverlap.to_string());
        }
        mine.push(subnet);
        let gateway = if c.gateway.is_empty() {
            ip(subnet.first_host())
        } else {
            c.gateway.clone()
        };
        out.push(IpamConfig {
            gateway,
            ..c.clone()
        });
    }
    Ok(out)
}

/// `network` as allocated: `DriverState` overlay with the VNI, `IPAMOptions` default
/// with `configs`.
pub fn allocated(network: &Network, vni: u32, configs: Vec<IpamConfig>) -> Network {
    let mut n = network.clone();
    n.driver_state = Driver {
        name: OVERLAY_DRIVER.to_owned(),
        options: BTreeMap::from([(VXLANID_OPTION.to_owned(), vni.to_string())]),
        ..Driver::default()
    };
    let driver = network
        .spec
        .ipam_options
        .as_ref()
        .map(|o| o.driver.clone())
        .filter(|d| !d.name.is_empty())
        .unwrap_or(Driver {
            name: DEFAULT_IPAM_DRIVER.to_owned(),
            ..Driver::default()
        });
    n.ipam_options = Some(IpamOptions {
        driver,
        configs,
        ..IpamOptions::default()
    });
    n
}

fn ip(addr: u32) -> String {
    std::net::Ipv4Addr::from(addr).to_string()
}

/// A gateway string as an address (the allocator's configs always parse).
pub fn gateway_addr(c: &IpamConfig, subnet: &Subnet) -> u32 {
    parse_addr(&c.gateway).unwrap_or_else(|| subnet.first_host())
}
