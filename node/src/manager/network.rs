//! `/networks` (swarmkit's `controlapi/network.go`, moby's `convert/network.go`): swarm
//! networks in Docker's JSON, the service spec's network targets resolved to IDs, and
//! the address pool settings of `swarm init`.
//!
//! ```text
//!  POST /networks/create ─ NetworkCreateRequest ─▶ NetworkSpec ─ validate ─▶ propose Create
//!  GET /networks[/{id}]  ◀─ NetworkResource ◀──── Network (store)
//!  DELETE /networks/{id} ─ find ─▶ propose Remove (the store refuses one in use)
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use swarm_core::model::{
    Driver, IpamConfig, IpamOptions, Meta, Network, NetworkSpec, ServiceSpec, Task,
};
use swarm_core::store::{spec_networks, Object, ObjectKind, Store as CoreStore, StoreAction};
use swarm_core::validate::{validate_addr_pools, validate_network_spec};
use swarm_core::TaskState;

use super::Manager;
use crate::api::filters::{label_matches, Filters};
use crate::api::{ApiError, NetworkRequest, Reply};

type R = Result<Reply, ApiError>;

/// Docker's defaults for `swarm init` without pool flags.
const DEFAULT_POOL: &str = "10.0.0.0/8";
const DEFAULT_SUBNET_SIZE: u32 = 24;
const DEFAULT_DATA_PATH_PORT: u32 = 4789;

/// The option Docker reads as "encrypt this overlay" (IPsec); not supported yet.
const ENCRYPTED_OPT: &str = "encrypted";

/// `DefaultAddrPool`, `SubnetSize`, `DataPathPort` of a `POST /swarm/init`.
pub struct AddrPools {
    pub default_addr_pool: Vec<String>,
    pub subnet_size: u32,
    pub data_path_port: u32,
}

/// The pool settings a `POST /swarm/init` asks for, Docker's defaults for what it does
/// not, validated (`invalid subnet size 30`, ...). moby refuses a data path port outside
/// 1024..=49151.
pub fn init_addr_pools(req: &Value) -> Result<AddrPools, ApiError> {
    let pools: Vec<String> = req["DefaultAddrPool"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let subnet_size = req["SubnetSize"].as_u64().unwrap_or(0) as u32;
    let port = req["DataPathPort"].as_u64().unwrap_or(0) as u32;
    validate_addr_pools(&pools, subnet_size)?;
    if port != 0 && !(1024..=49151).contains(&port) {
        return Err(ApiError::invalid(format!(
            "data path port {port} is out of the range 1024-49151"
        )));
    }
    Ok(AddrPools {
        default_addr_pool: if pools.is_empty() {
            vec![DEFAULT_POOL.into()]
        } else {
            pools
        },
        subnet_size: if subnet_size == 0 {
            DEFAULT_SUBNET_SIZE
        } else {
            subnet_size
        },
        data_path_port: if port == 0 {
            DEFAULT_DATA_PATH_PORT
        } else {
            port
        },
    })
}

/// `DataPathAddr` of a `POST /swarm/init` (an address or an interface name) as the
/// IPv4 address VXLAN traffic leaves from; kept in the node's description, where the
/// dispatcher reads every node's underlay address.
pub fn data_path_addr(req: &Value) -> Result<Option<String>, ApiError> {
    let Some(given) = req["DataPathAddr"].as_str().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let addr = crate::addr::resolve_advertise(given, "0", &crate::addr::system_addrs())
        .map_err(|e| ApiError::invalid(format!("invalid data path address: {e}")))?;
    let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => Ok(Some(ip.to_string())),
        Err(_) => Err(ApiError::invalid(format!(
            "invalid data path address {given}: only IPv4 is supported"
        ))),
    }
}

/// The `ingress` network every swarm starts with (allocated first: `10.0.0.0/24` and VNI
/// 4096 with the default pool).
pub fn ingress_network() -> StoreAction {
    StoreAction::Create(Object::Network(Box::new(Network {
        meta: Meta::with_id(crate::ids::new_id()),
        spec: swarm_core::allocator::ingress_network_spec(),
        ..Default::default()
    })))
}

pub async fn handle(m: &Arc<Manager>, req: NetworkRequest) -> R {
    match req {
        NetworkRequest::List { filters } => {
            filters.validate(&["name", "id", "driver", "label", "scope", "type", "dangling"])?;
            m.store
                .read(|s| {
                    let list: Vec<Value> = s
                        .networks()
                        .filter(|n| list_matches(s, n, &filters))
                        .map(|n| resource(s, n))
                        .collect();
                    Ok(Reply::Json(200, Value::Array(list)))
                })
                .await
        }
        NetworkRequest::Inspect { id } => {
            m.store
                .read(|s| Ok(Reply::Json(200, resource(s, find(s, &id)?))))
                .await
        }
        NetworkRequest::Create { body } => create(m, body).await,
        NetworkRequest::Remove { id } => {
            let full = m
                .store
                .read(|s| find(s, &id).map(|n| n.id().to_string()))
                .await?;
            // Refused when applied while a service or task uses it (swarmkit's words).
            m.propose(vec![StoreAction::Remove(ObjectKind::Network, full)])
                .await?;
            Ok(Reply::Empty(204))
        }
        NetworkRequest::Prune { filters } => {
            filters.validate(&["label", "until"])?;
            let unused: Vec<(String, String)> = m
                .store
                .read(|s| {
                    s.networks()
                        .filter(|n| !n.spec.ingress && !in_use(s, n.id()))
                        .filter(|n| filters.matches("label", |l| label_matches(&n.spec.labels, l)))
                        .map(|n| (n.id().to_string(), n.spec.name.clone()))
                        .collect()
                })
                .await;
            let mut deleted = Vec::new();
            for (id, name) in unused {
                // One at a time: a network taken into use meanwhile is refused alone.
                match m
                    .propose(vec![StoreAction::Remove(ObjectKind::Network, id)])
                    .await
                {
                    Ok(_) => deleted.push(name),
                    Err(e) => tracing::info!("network prune: keep {name}: {e}"),
                }
            }
            Ok(Reply::Json(200, json!({ "NetworksDeleted": deleted })))
        }
    }
}

/// A network by full ID, name, or unique ID prefix; 404 `network x not found` (moby's
/// words for a swarm network lookup).
fn find<'a>(s: &'a CoreStore, input: &str) -> Result<&'a Network, ApiError> {
    s.find_network(input).map_err(|e| match e.kind() {
        swarm_core::ErrorKind::NotFound => ApiError::NotFound(format!("network {input} not found")),
        _ => ApiError::from(e),
    })
}

/// Whether a service names the network or a task not yet ended is attached to it.
fn in_use(s: &CoreStore, id: &str) -> bool {
    !s.services_using_network(id).is_empty()
        || s.tasks().any(|t| task_holds(t) && attached_to(t, id))
}

fn task_holds(t: &Task) -> bool {
    t.status.state <= TaskState::Running && t.desired_state <= TaskState::Running
}

fn attached_to(t: &Task, id: &str) -> bool {
    t.networks_attachments.iter().any(|a| a.network.id() == id)
}

fn list_matches(s: &CoreStore, n: &Network, f: &Filters) -> bool {
    let driver = n.spec.driver_name();
    f.matches("name", |v| n.spec.name.contains(v))
        && f.matches("id", |v| n.id().starts_with(v))
        && f.matches("driver", |v| v == driver)
        && f.matches("label", |v| label_matches(&n.spec.labels, v))
        && f.matches("scope", |v| v == "swarm")
        // Every swarm network is user-made for Docker's `type` filter (the predefined
        // ones are bridge, host and none: local, not here).
        && f.matches("type", |v| v == "custom")
        && f.bool("dangling").is_none_or(|d| d != in_use(s, n.id()) || n.spec.ingress && !d)
}

/// moby's `NetworkResource` for a swarm network (`daemon/cluster/convert/network.go`).
pub fn resource(s: &CoreStore, n: &Network) -> Value {
    let ipam = n.ipam_options.as_ref();
    let configs: Vec<Value> = ipam
        .map(|o| o.configs.iter().map(ipam_config_json).collect())
        .unwrap_or_default();
    let ipam_driver = ipam
        .map(|o| o.driver.name.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "default".into());
    let ipam_opts = ipam
        .map(|o| o.driver.options.clone())
        .filter(|o| !o.is_empty());
    let mut options: BTreeMap<String, String> = n
        .spec
        .driver_configuration
        .as_ref()
        .map(|d| d.options.clone())
        .unwrap_or_default();
    options.extend(n.driver_state.options.clone());
    let mut out = json!({
        "Name": n.spec.name,
        "Id": n.id(),
        "Created": n.meta.created_at,
        "Scope": "swarm",
        "Driver": n.spec.driver_name(),
        "EnableIPv6": n.spec.ipv6_enabled,
        "IPAM": {"Driver": ipam_driver, "Options": ipam_opts, "Config": configs},
        "Internal": n.spec.internal,
        "Attachable": n.spec.attachable,
        "Ingress": n.spec.ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": options,
        "Labels": n.spec.labels,
    });
    let peers = peers(s, n.id());
    if !peers.is_empty() {
        out["Peers"] = Value::Array(peers);
    }
    out
}

fn ipam_config_json(c: &IpamConfig) -> Value {
    let mut o = Map::new();
    o.insert("Subnet".into(), json!(c.subnet));
    if !c.range.is_empty() {
        o.insert("IPRange".into(), json!(c.range));
    }
    if !c.gateway.is_empty() {
        o.insert("Gateway".into(), json!(c.gateway));
    }
    Value::Object(o)
}

/// The nodes with a task on the network (Docker lists the network's gossip peers).
fn peers(s: &CoreStore, id: &str) -> Vec<Value> {
    let nodes: std::collections::BTreeSet<&str> = s
        .tasks()
        .filter(|t| task_holds(t) && attached_to(t, id) && !t.node_id.is_empty())
        .map(|t| t.node_id.as_str())
        .collect();
    nodes
        .into_iter()
        .filter_map(|nid| s.node(nid))
        .map(|node| json!({"Name": node.description.hostname, "IP": node.status.addr}))
        .collect()
}

/// `POST /networks/create`: Docker's `NetworkCreateRequest` as a swarm network spec.
async fn create(m: &Arc<Manager>, body: Value) -> R {
    let spec = spec_of(&body)?;
    validate_network_spec(&spec)?;
    let id = crate::ids::new_id();
    let network = Network {
        meta: Meta::with_id(id.clone()),
        spec,
        ..Default::default()
    };
    // A taken name (409) and an overlapping subnet (400) are the store's, when applied.
    m.propose(vec![StoreAction::Create(Object::Network(Box::new(
        network,
    )))])
    .await?;
    Ok(Reply::Json(201, json!({ "Id": id, "Warning": "" })))
}

/// The swarm network spec a `NetworkCreateRequest` asks for. Refuses what swarm cannot
/// do yet: encrypted overlays, local-scope drivers (the core's validator words those).
pub fn spec_of(body: &Value) -> Result<NetworkSpec, ApiError> {
    let name = body["Name"].as_str().unwrap_or_default().to_string();
    let driver = body["Driver"]
        .as_str()
        .filter(|d| !d.is_empty())
        .unwrap_or("overlay")
        .to_string();
    let options: BTreeMap<String, String> = string_map(&body["Options"]);
    if options.contains_key(ENCRYPTED_OPT) {
        return Err(ApiError::invalid(
            "encrypted overlay networks (--opt encrypted) are not supported yet",
        ));
    }
    if body["ConfigOnly"].as_bool() == Some(true)
        || body["ConfigFrom"]["Network"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    {
        return Err(ApiError::invalid(
            "config-only networks (--config-only, --config-from) are not supported",
        ));
    }
    let ipam = &body["IPAM"];
    let configs: Vec<IpamConfig> = ipam["Config"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| IpamConfig {
                    subnet: c["Subnet"].as_str().unwrap_or_default().to_string(),
                    range: c["IPRange"].as_str().unwrap_or_default().to_string(),
                    gateway: c["Gateway"].as_str().unwrap_or_default().to_string(),
                    extra: Map::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    let ipam_driver = ipam["Driver"]
        .as_str()
        .filter(|d| !d.is_empty())
        .unwrap_or("default");
    let ipam_options = IpamOptions {
        driver: Driver {
            name: ipam_driver.to_string(),
            options: string_map(&ipam["Options"]),
            ..Default::default()
        },
        configs,
        extra: Map::new(),
    };
    Ok(NetworkSpec {
        name,
        labels: string_map(&body["Labels"]),
        driver_configuration: Some(Driver {
            name: driver,
            options,
            ..Default::default()
        }),
        internal: body["Internal"].as_bool().unwrap_or(false),
        attachable: body["Attachable"].as_bool().unwrap_or(false),
        ingress: body["Ingress"].as_bool().unwrap_or(false),
        ipam_options: Some(ipam_options),
        scope: "swarm".into(),
        ipv6_enabled: body["EnableIPv6"].as_bool().unwrap_or(false),
        extra: Map::new(),
    })
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A service spec's network targets as network IDs (Docker resolves names server-side);
/// a target that names no network is refused in Docker's words.
pub fn resolve_service_networks(s: &CoreStore, spec: &mut ServiceSpec) -> Result<(), ApiError> {
    let resolve = |list: &mut Vec<swarm_core::model::NetworkAttachmentConfig>| {
        for a in list.iter_mut() {
            let n = s
                .find_network(&a.target)
                .map_err(|_| ApiError::NotFound(format!("network {} not found", a.target)))?;
            a.target = n.id().to_string();
        }
        Ok::<_, ApiError>(())
    };
    resolve(&mut spec.task_template.networks)?;
    resolve(&mut spec.networks)?;
    // Checked once more through the core's view (what the allocator will read).
    debug_assert!(spec_networks(spec)
        .iter()
        .all(|a| s.network(&a.target).is_some()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_pools_default_and_validate() {
        let p = init_addr_pools(&json!({})).unwrap();
        assert_eq!(p.default_addr_pool, vec!["10.0.0.0/8"]);
        assert_eq!((p.subnet_size, p.data_path_port), (24, 4789));
        let p = init_addr_pools(&json!({"DefaultAddrPool": ["10.20.0.0/16"],
            "SubnetSize": 26, "DataPathPort": 7789}))
        .unwrap();
        assert_eq!(p.default_addr_pool, vec!["10.20.0.0/16"]);
        assert_eq!((p.subnet_size, p.data_path_port), (26, 7789));
        assert!(init_addr_pools(&json!({"SubnetSize": 30})).is_err());
        assert!(init_addr_pools(&json!({"DataPathPort": 80})).is_err());
    }

    #[test]
    fn create_request_becomes_a_spec() {
        let spec = spec_of(&json!({
            "Name": "appnet", "Driver": "overlay", "Attachable": true, "CheckDuplicate": true,
            "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.9.0.0/24",
                     "IPRange": "10.9.0.128/25", "Gateway": "10.9.0.1"}]},
            "Labels": {"a": "b"}, "Options": {"x": "y"}
        }))
        .unwrap();
        assert_eq!(spec.name, "appnet");
        assert!(spec.attachable);
        assert_eq!(spec.ipam_configs()[0].range, "10.9.0.128/25");
        assert_eq!(spec.labels["a"], "b");
        validate_network_spec(&spec).unwrap();
        let e = spec_of(&json!({"Name": "x", "Options": {"encrypted": ""}})).unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
        let bridge = spec_of(&json!({"Name": "x", "Driver": "bridge"})).unwrap();
        let e = validate_network_spec(&bridge).unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
    }
}
