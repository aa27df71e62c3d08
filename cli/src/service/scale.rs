//! `swarm service scale SERVICE=REPLICAS...`: for each, GET, set the replica count,
//! POST the whole spec back; print `web scaled to 5`; then wait for each unless `-d`.

use anyhow::Result;
use clap::Args;

use super::spec::set_replicas;
use super::wait::wait_for_service;
use super::{get_service, post_update};
use crate::client::Client;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: Option<bool>,
    /// SERVICE=REPLICAS [SERVICE=REPLICAS...]
    #[arg(required = true, value_name = "SERVICE=REPLICAS")]
    pub pairs: Vec<String>,
}

/// Parses `web=5`, in Docker's words when it is not that.
pub fn parse_pair(arg: &str) -> Result<(String, u64)> {
    let bad = || {
        UserError(format!("invalid scale specifier '{arg}'.\nSee 'swarm service scale --help'.\n\nUsage:  swarm service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nScale one or multiple replicated services"))
    };
    let (name, n) = arg.split_once('=').ok_or_else(bad)?;
    if name.is_empty() {
        return Err(bad().into());
    }
    let n: u64 = n.parse().map_err(|_| {
        UserError(format!(
            "invalid replicas value {n}: strconv.ParseUint: parsing \"{n}\": invalid syntax"
        ))
    })?;
    Ok((name.to_string(), n))
}

pub async fn run(client: &Client, a: ScaleArgs) -> Result<()> {
    let pairs: Vec<(String, u64)> = a
        .pairs
        .iter()
        .map(|p| parse_pair(p))
        .collect::<Result<_>>()?;
    let mut errors = Vec::new();
    let mut scaled = Vec::new();
    for (name, n) in &pairs {
        let result = async {
            let service = get_service(client, name).await?;
            let mut spec = service["Spec"].clone();
            set_replicas(&mut spec, *n)?;
            post_update(client, &service, &spec, "", None).await?;
            anyhow::Ok(())
        }
        .await;
        match result {
            Ok(()) => {
                println!("{name} scaled to {n}");
                scaled.push(name.clone());
            }
            // docker/cli: `web: Error response from daemon: service web not found`.
            Err(e) => errors.push(format!("{name}: {}", crate::user_message(&e))),
        }
    }
    if !a.detach.unwrap_or(false) {
        for name in &scaled {
            if let Err(e) = wait_for_service(client, name, false).await {
                errors.push(crate::user_message(&e));
            }
        }
    }
    UserError::all(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        assert_eq!(parse_pair("web=5").unwrap(), ("web".to_string(), 5));
        assert!(parse_pair("web").is_err());
        assert!(parse_pair("web=x").is_err());
    }
}
