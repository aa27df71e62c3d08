//! Names the user gave that the spec must carry as IDs: secrets and configs (looked
//! up with `GET /secrets?filters={"name":..}`, as docker's `ParseSecrets`) and
//! networks (`GET /networks/{name}`, as `resolveNetworkID`). Fetched before the spec
//! is built, so that building stays a pure function of flags and [`Lookups`].

use std::collections::HashMap;

use anyhow::{bail, Result};
use serde_json::Value;

use crate::client::{filters, query_escape, Client};

/// Name (or ID) to ID, per kind.
#[derive(Debug, Clone, Default)]
pub struct Lookups {
    pub secrets: HashMap<String, String>,
    pub configs: HashMap<String, String>,
    pub networks: HashMap<String, String>,
}

/// What one invocation needs looked up.
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub secrets: Vec<String>,
    pub configs: Vec<String>,
    pub networks: Vec<String>,
}

impl Lookups {
    pub async fn fetch(client: &Client, w: &Wanted) -> Result<Lookups> {
        let mut l = Lookups::default();
        for (kind, names, map) in [
            ("secrets", &w.secrets, &mut l.secrets),
            ("configs", &w.configs, &mut l.configs),
        ] {
            if names.is_empty() {
                continue;
            }
            let pairs: Vec<(&str, &str)> = names.iter().map(|n| ("name", n.as_str())).collect();
            let list = client
                .get_json(&format!("/{kind}?filters={}", filters(&pairs)))
                .await?;
            for item in list.as_array().into_iter().flatten() {
                if let (Some(name), Some(id)) = (item["Spec"]["Name"].as_str(), item["ID"].as_str())
                {
                    map.insert(name.to_string(), id.to_string());
                }
            }
        }
        for n in &w.networks {
            let net = client
                .get_json(&format!("/networks/{}?scope=swarm", query_escape(n)))
                .await?;
            let id = net["Id"].as_str().or(net["ID"].as_str()).unwrap_or(n);
            l.networks.insert(n.clone(), id.to_string());
        }
        Ok(l)
    }

    /// Every wanted name resolved to itself: for checking flags before asking anyone.
    pub fn permissive(w: &Wanted) -> Lookups {
        let same = |l: &[String]| l.iter().map(|n| (n.clone(), n.clone())).collect();
        Lookups {
            secrets: same(&w.secrets),
            configs: same(&w.configs),
            networks: same(&w.networks),
        }
    }

    /// Fills `SecretID`/`ConfigID` of new references, refusing two with one target.
    pub fn file_refs(&self, kind: &str, refs: Vec<Value>) -> Result<Vec<Value>> {
        let (name_key, id_key, map) = if kind == "secret" {
            ("SecretName", "SecretID", &self.secrets)
        } else {
            ("ConfigName", "ConfigID", &self.configs)
        };
        let mut out: Vec<Value> = Vec::new();
        for mut r in refs {
            let name = r[name_key].as_str().unwrap_or_default().to_string();
            if out.iter().any(|o| o["File"]["Name"] == r["File"]["Name"]) {
                bail!("duplicate {kind} target for {name} not allowed");
            }
            let Some(id) = map.get(&name) else {
                bail!("{kind} not found: {name}");
            };
            r[id_key] = Value::String(id.clone());
            out.push(r);
        }
        Ok(out)
    }

    /// A network's ID (the name itself when it was not looked up).
    pub fn network_id(&self, name: &str) -> String {
        self.networks
            .get(name)
            .cloned()
            .unwrap_or_else(|| name.to_string())
    }
}
