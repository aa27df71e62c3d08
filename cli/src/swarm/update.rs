//! `swarm update`: GET /swarm, change the spec, POST /swarm/update?version=N.

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use crate::client::Client;
use crate::units::duration::parse_go_duration;

/// The spec flags `swarm init` and `swarm update` share (docker's swarmOptions).
#[derive(Debug, Clone, Default, Args)]
pub struct SpecArgs {
    /// Dispatcher heartbeat period (ns|us|ms|s|m|h) (default 5s)
    #[arg(long = "dispatcher-heartbeat", value_name = "duration")]
    pub dispatcher_heartbeat: Option<String>,
    /// Task history retention limit (default 5)
    #[arg(long = "task-history-limit", value_name = "int")]
    pub task_history_limit: Option<i64>,
    /// Validity period for node certificates (ns|us|ms|s|m|h) (default 2160h0m0s)
    #[arg(long = "cert-expiry", value_name = "duration")]
    pub cert_expiry: Option<String>,
}

impl SpecArgs {
    /// Applies the flags given to a swarm spec (JSON, Docker's field names).
    pub fn apply(&self, spec: &mut Value) -> Result<()> {
        if let Some(d) = &self.dispatcher_heartbeat {
            spec["Dispatcher"]["HeartbeatPeriod"] = json!(parse_go_duration(d)?);
        }
        if let Some(n) = self.task_history_limit {
            spec["Orchestration"]["TaskHistoryRetentionLimit"] = json!(n);
        }
        if let Some(d) = &self.cert_expiry {
            spec["CAConfig"]["NodeCertExpiry"] = json!(parse_go_duration(d)?);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub spec: SpecArgs,
    /// Change manager autolocking setting (true|false)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub autolock: Option<bool>,
}

pub async fn run(client: &Client, a: UpdateArgs) -> Result<()> {
    let swarm = client.get_json("/swarm").await?;
    let version = swarm["Version"]["Index"].as_u64().unwrap_or(0);
    let mut spec = swarm["Spec"].clone();
    a.spec.apply(&mut spec)?;
    let was_locked = spec["EncryptionConfig"]["AutoLockManagers"] == json!(true);
    if let Some(on) = a.autolock {
        spec["EncryptionConfig"]["AutoLockManagers"] = json!(on);
    }
    client
        .post_json(&format!("/swarm/update?version={version}"), &spec)
        .await?;
    println!("Swarm updated.");
    if a.autolock == Some(true) && !was_locked {
        let key = super::unlock::unlock_key(client).await?;
        print!("{}", super::unlock::unlock_message(&key));
    }
    Ok(())
}

/// Has the swarm (`swarm`, as GET /swarm gave it) rotate what `flag` names
/// (`rotateWorkerToken`, `rotateManagerToken`, `rotateManagerUnlockKey`), its spec unchanged.
pub async fn rotate(client: &Client, swarm: &Value, flag: &str) -> Result<()> {
    let version = swarm["Version"]["Index"].as_u64().unwrap_or(0);
    client
        .post_json(
            &format!("/swarm/update?version={version}&{flag}=true"),
            &swarm["Spec"],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_land_in_dockers_fields() {
        let a = SpecArgs {
            dispatcher_heartbeat: Some("1s".into()),
            task_history_limit: Some(3),
            cert_expiry: Some("24h".into()),
        };
        let mut spec = json!({"Name": "default", "Dispatcher": {}});
        a.apply(&mut spec).unwrap();
        assert_eq!(spec["Dispatcher"]["HeartbeatPeriod"], 1_000_000_000i64);
        assert_eq!(spec["Orchestration"]["TaskHistoryRetentionLimit"], 3);
        assert_eq!(spec["CAConfig"]["NodeCertExpiry"], 86_400_000_000_000i64);
        assert_eq!(spec["Name"], "default");
    }
}
