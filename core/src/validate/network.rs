//! `POST /networks/create` (swarm scope): swarmkit's `validateNetworkSpec` and
//! `validateIPAMConfiguration`, moby's pre-defined names. Only the overlay driver and
//! IPv4 subnets are supported here; those refusals are ours.

use super::{invalid, validate_service_name};
use crate::allocator::ipam::{parse_addr, Subnet};
use crate::error::Result;
use crate::model::{
    IpamConfig, NetworkSpec, DEFAULT_IPAM_DRIVER, OVERLAY_DRIVER, PREDEFINED_LABEL,
};

/// The node-local networks every Docker host has; not for users to create.
const PREDEFINED_NAMES: [&str; 3] = ["bridge", "host", "none"];

/// A swarm network's spec, before the API stores it. Name conflicts and overlaps with
/// other networks are the store's to refuse (`Store::apply`).
pub fn validate_network_spec(spec: &NetworkSpec) -> Result<()> {
    if PREDEFINED_NAMES.contains(&spec.name.as_str()) {
        return Err(invalid(format!(
            "{} is a pre-defined network and cannot be created",
            spec.name
        )));
    }
    if spec.attachable && spec.ingress {
        return Err(invalid("ingress network cannot be attachable"));
    }
    validate_service_name(&spec.name)?;
    if spec.labels.contains_key(PREDEFINED_LABEL) {
        return Err(invalid(format!(
            "label {PREDEFINED_LABEL} is for internally created predefined networks and cannot be applied by users"
        )));
    }
    let driver = spec.driver_name();
    if driver != OVERLAY_DRIVER {
        if spec.ingress {
            return Err(invalid(
                "only overlay driver is currently supported for ingress network",
            ));
        }
        return Err(invalid(format!(
            "network driver {driver:?} is not supported for swarm networks: only overlay is"
        )));
    }
    let Some(ipam) = &spec.ipam_options else {
        return Ok(());
    };
    let ipam_driver = ipam.driver.name.as_str();
    if !ipam_driver.is_empty() && !ipam_driver.eq_ignore_ascii_case(DEFAULT_IPAM_DRIVER) {
        return Err(invalid(format!("plugin {ipam_driver} not supported")));
    }
    ipam.configs.iter().try_for_each(validate_ipam_config)
}

/// One `IPAMConfig`: a subnet, and a range and gateway inside it if given.
pub fn validate_ipam_config(c: &IpamConfig) -> Result<()> {
    if c.subnet.contains(':') {
        return Err(invalid(format!(
            "ipam configuration: IPv6 subnet {} is not supported",
            c.subnet
        )));
    }
    let subnet = Subnet::parse(&c.subnet)
        .ok_or_else(|| invalid(format!("ipam configuration: invalid subnet {}", c.subnet)))?;
    if !c.range.is_empty() {
        let range = Subnet::parse(&c.range)
            .ok_or_else(|| invalid(format!("ipam configuration: invalid range {}", c.range)))?;
        if !subnet.contains_subnet(&range) {
            return Err(invalid(format!(
                "ipam configuration: subnet {} does not contain range {}",
                c.subnet, c.range
            )));
        }
    }
    if !c.gateway.is_empty() {
        let gateway = parse_addr(&c.gateway)
            .ok_or_else(|| invalid(format!("ipam configuration: invalid gateway {}", c.gateway)))?;
        if !subnet.contains(gateway) {
            return Err(invalid(format!(
                "ipam configuration: subnet {} does not contain gateway {}",
                c.subnet, c.gateway
            )));
        }
    }
    Ok(())
}

/// `DefaultAddrPool` and `SubnetSize` as `swarm init` takes them: IPv4 CIDRs, and a
/// subnet size no larger than the smallest pool (moby's words where it has them).
pub fn validate_addr_pools(pools: &[String], subnet_size: u32) -> Result<()> {
    if subnet_size > 29 {
        return Err(invalid(format!("invalid subnet size {subnet_size}")));
    }
    for p in pools {
        let pool = Subnet::parse(p).ok_or_else(|| invalid(format!("invalid base pool {p:?}")))?;
        if subnet_size != 0 && u32::from(pool.prefix()) > subnet_size {
            return Err(invalid(format!(
                "invalid pools size: pool {p} is smaller than subnet size {subnet_size}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Driver, IpamOptions};

    fn spec(name: &str) -> NetworkSpec {
        NetworkSpec {
            name: name.into(),
            ..NetworkSpec::default()
        }
    }

    fn err(spec: &NetworkSpec) -> String {
        validate_network_spec(spec).unwrap_err().to_string()
    }

    fn with_ipam(subnet: &str, range: &str, gateway: &str) -> NetworkSpec {
        NetworkSpec {
            ipam_options: Some(IpamOptions {
                configs: vec![IpamConfig {
                    subnet: subnet.into(),
                    range: range.into(),
                    gateway: gateway.into(),
                    ..IpamConfig::default()
                }],
                ..IpamOptions::default()
            }),
            ..spec("net")
        }
    }

    #[test]
    fn dockers_words() {
        validate_network_spec(&spec("backend")).unwrap();
        validate_network_spec(&crate::allocator::ingress_network_spec()).unwrap();
        validate_network_spec(&with_ipam("10.9.0.0/16", "10.9.1.0/24", "10.9.0.1")).unwrap();
        assert_eq!(err(&spec("")), "meta: name must be provided");
        assert_eq!(
            err(&spec("host")),
            "host is a pre-defined network and cannot be created"
        );
        let mut s = crate::allocator::ingress_network_spec();
        s.attachable = true;
        assert_eq!(err(&s), "ingress network cannot be attachable");
        let mut s = spec("net");
        s.driver_configuration = Some(Driver {
            name: "bridge".into(),
            ..Driver::default()
        });
        assert_eq!(
            err(&s),
            "network driver \"bridge\" is not supported for swarm networks: only overlay is"
        );
        s.ingress = true;
        assert_eq!(
            err(&s),
            "only overlay driver is currently supported for ingress network"
        );
        let mut s = spec("net");
        s.labels.insert(PREDEFINED_LABEL.into(), "true".into());
        assert_eq!(
            err(&s),
            "label com.docker.swarm.predefined is for internally created predefined networks and cannot be applied by users"
        );
        assert_eq!(
            err(&with_ipam("10.9.0.0/33", "", "")),
            "ipam configuration: invalid subnet 10.9.0.0/33"
        );
        assert_eq!(
            err(&with_ipam("10.9.0.0/16", "10.8.0.0/24", "")),
            "ipam configuration: subnet 10.9.0.0/16 does not contain range 10.8.0.0/24"
        );
        assert_eq!(
            err(&with_ipam("10.9.0.0/16", "", "10.10.0.1")),
            "ipam configuration: subnet 10.9.0.0/16 does not contain gateway 10.10.0.1"
        );
        assert_eq!(
            err(&with_ipam("10.9.0.0/16", "", "nope")),
            "ipam configuration: invalid gateway nope"
        );
        assert_eq!(
            err(&with_ipam("fd00::/64", "", "")),
            "ipam configuration: IPv6 subnet fd00::/64 is not supported"
        );
    }

    #[test]
    fn address_pools() {
        validate_addr_pools(&["10.0.0.0/8".into(), "192.168.0.0/16".into()], 24).unwrap();
        assert!(validate_addr_pools(&["10.0.0.0/8x".into()], 24).is_err());
        assert!(validate_addr_pools(&["10.0.0.0/26".into()], 24).is_err());
    }
}
