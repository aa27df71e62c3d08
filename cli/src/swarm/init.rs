//! `swarm init`: POST /swarm/init, then print the join command as Docker does.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::Client;

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Advertised address (format: "<ip|interface>[:port]")
    #[arg(long = "advertise-addr", value_name = "string")]
    pub advertise_addr: Option<String>,
    /// Listen address (format: "<ip|interface>[:port]") (default 0.0.0.0:2377)
    #[arg(
        long = "listen-addr",
        value_name = "node-addr",
        default_value = "0.0.0.0:2377"
    )]
    pub listen_addr: String,
    /// Enable manager autolocking (requiring an unlock key to start a stopped manager)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub autolock: Option<bool>,
    /// Force create a new cluster from current state
    #[arg(long = "force-new-cluster", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub force_new_cluster: Option<bool>,
    /// Default address pool in CIDR format (repeatable)
    #[arg(long = "default-addr-pool", value_name = "ipNetSlice")]
    pub default_addr_pool: Vec<String>,
    /// Default address pool subnet mask length (default 24)
    #[arg(long = "default-addr-pool-mask-length", value_name = "uint32")]
    pub default_addr_pool_mask_length: Option<u32>,
    /// Port number to use for data path traffic (1024 - 49151). If no value is set or is
    /// set to 0, the default port (4789) is used.
    #[arg(long = "data-path-port", value_name = "uint32")]
    pub data_path_port: Option<u32>,
    /// Address or interface to use for data path traffic (format: "<ip|interface>")
    #[arg(long = "data-path-addr", value_name = "string")]
    pub data_path_addr: Option<String>,
    #[command(flatten)]
    pub spec: super::update::SpecArgs,
}

/// The request body of POST /swarm/init.
pub fn init_request(a: &InitArgs) -> Result<Value> {
    let mut req = json!({
        "ListenAddr": a.listen_addr,
        "AdvertiseAddr": a.advertise_addr.clone().unwrap_or_default(),
        "ForceNewCluster": a.force_new_cluster.unwrap_or(false),
        "Spec": {"EncryptionConfig": {"AutoLockManagers": a.autolock.unwrap_or(false)}},
    });
    if !a.default_addr_pool.is_empty() {
        req["DefaultAddrPool"] = json!(a.default_addr_pool);
    }
    if let Some(n) = a.default_addr_pool_mask_length {
        req["SubnetSize"] = json!(n);
    }
    if let Some(p) = a.data_path_port {
        req["DataPathPort"] = json!(p);
    }
    if let Some(d) = &a.data_path_addr {
        req["DataPathAddr"] = json!(d);
    }
    if a.advertise_addr.is_none() {
        req.as_object_mut().expect("object").remove("AdvertiseAddr");
    }
    a.spec.apply(&mut req["Spec"])?;
    Ok(req)
}

/// What Docker prints after a successful init.
pub fn init_message(node_id: &str, worker_token: &str, manager_addr: &str) -> String {
    format!(
        "Swarm initialized: current node ({node_id}) is now a manager.\n\n\
         To add a worker to this swarm, run the following command:\n\n    \
         swarm join --token {worker_token} {manager_addr}\n\n\
         To add a manager to this swarm, run 'swarm join-token manager' and follow the instructions.\n"
    )
}

pub async fn run(client: &Client, a: InitArgs) -> Result<()> {
    let resp = client.post_json("/swarm/init", &init_request(&a)?).await?;
    let node_id = resp.as_str().unwrap_or_default().to_string();
    let swarm = client.get_json("/swarm").await?;
    let node = client.get_json(&format!("/nodes/{node_id}")).await?;
    let token = swarm["JoinTokens"]["Worker"].as_str().unwrap_or_default();
    let addr = node["ManagerStatus"]["Addr"].as_str().unwrap_or_default();
    print!("{}", init_message(&node_id, token, addr));
    if a.autolock == Some(true) {
        let key = super::unlock::unlock_key(client).await?;
        print!("\n{}", super::unlock::unlock_message(&key));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_like_docker() {
        let fixture = include_str!("../../tests/fixtures/init.txt");
        let ours = init_message(
            "z0zdzsttw6s52d3mjc6ya9h92",
            "SWMTKN-1-5qcdxv7iu7153ijcuxs72fdhk6q9rk7nf21amyovpkcxqvgs9x-6yrn6kq27wkxdsaw6h4pq66py",
            "127.0.0.1:2377",
        );
        assert_eq!(ours, fixture.replace("docker swarm", "swarm"));
    }
}
