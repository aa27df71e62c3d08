//! `swarm service create [OPTIONS] IMAGE [COMMAND] [ARG...]`: POST /services/create,
//! print the new ID, then wait for convergence unless `-d`.

use anyhow::Result;
use clap::Args;
use serde_json::Value;

use super::flags::{CommonFlags, CreateFlags};
use super::opts::{parse_file_ref, parse_network};
use super::registry_auth;
use super::resolve::{Lookups, Wanted};
use super::spec::build_spec;
use super::wait::wait_for_service;
use crate::client::Client;

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub create: CreateFlags,
    #[command(flatten)]
    pub common: CommonFlags,
    /// IMAGE [COMMAND] [ARG...]: everything after the image belongs to the command;
    /// flags before it are ours, so an unknown one is refused (not taken as IMAGE)
    #[arg(required = true, num_args = 1.., trailing_var_arg = true, value_name = "IMAGE [COMMAND] [ARG...]")]
    pub image_and_args: Vec<String>,
}

impl CreateArgs {
    /// The spec this invocation sends, with names resolved through `lk`.
    pub fn spec(&self, lk: &Lookups) -> Result<serde_json::Value> {
        let (image, args) = self
            .image_and_args
            .split_first()
            .expect("clap requires IMAGE");
        build_spec(image, args, &self.create, &self.common, lk)
    }

    /// The secrets, configs and networks named on the command line.
    pub fn wanted(&self) -> Result<Wanted> {
        wanted(
            &self.create.secret,
            &self.create.config,
            &self.create.network,
        )
    }
}

/// The names that `--secret`, `--config` and `--network` values refer to.
pub fn wanted(secrets: &[String], configs: &[String], networks: &[String]) -> Result<Wanted> {
    let names = |kind: &str, key: &str, values: &[String]| -> Result<Vec<String>> {
        values
            .iter()
            .map(|v| {
                Ok(parse_file_ref(kind, v)?[key]
                    .as_str()
                    .unwrap_or_default()
                    .to_string())
            })
            .collect()
    };
    Ok(Wanted {
        secrets: names("secret", "SecretName", secrets)?,
        configs: names("config", "ConfigName", configs)?,
        networks: networks
            .iter()
            .map(|n| {
                Ok(parse_network(n)?["Target"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string())
            })
            .collect::<Result<_>>()?,
    })
}

pub async fn run(client: &Client, a: CreateArgs) -> Result<()> {
    // Flag errors first, without a manager, as the docker CLI reports them.
    a.spec(&Lookups::permissive(&a.wanted()?))?;
    let lk = Lookups::fetch(client, &a.wanted()?).await?;
    let mut spec = a.spec(&lk)?;
    let resolve = !a.common.no_resolve_image.unwrap_or(false);
    let warning = super::pin::pin_image(client, &mut spec, resolve).await;
    let auth = if a.common.with_registry_auth.unwrap_or(false) {
        registry_auth::encoded_for(
            spec["TaskTemplate"]["ContainerSpec"]["Image"]
                .as_str()
                .unwrap_or_default(),
        )?
    } else {
        None
    };
    let resp = client
        .post_json_with_auth("/services/create", &spec, auth.as_deref())
        .await?;
    let warnings = resp["Warnings"].as_array().into_iter().flatten();
    for w in warning
        .iter()
        .map(String::as_str)
        .chain(warnings.filter_map(Value::as_str))
    {
        eprintln!("{w}");
    }
    let id = resp["ID"].as_str().unwrap_or_default().to_string();
    println!("{id}");
    if a.common.detach() {
        return Ok(());
    }
    wait_for_service(client, &id, a.common.quiet()).await
}
