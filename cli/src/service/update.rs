//! `swarm service update [OPTIONS] SERVICE`: GET the service, change what the flags
//! name, POST the whole spec back with `?version=N`, print the name, wait unless `-d`.

use anyhow::Result;
use clap::Args;

use super::flags::{CommonFlags, UpdateFlags};
use super::registry_auth;
use super::resolve::Lookups;
use super::spec::apply_update;
use super::wait::wait_for_service;
use super::{get_service, post_update};
use crate::client::Client;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub update: UpdateFlags,
    #[command(flatten)]
    pub common: CommonFlags,
    /// SERVICE
    #[arg(value_name = "SERVICE")]
    pub service: String,
}

pub async fn run(client: &Client, a: UpdateArgs) -> Result<()> {
    let service = get_service(client, &a.service).await?;
    let rollback = a.update.rollback.unwrap_or(false);
    let mut spec = service["Spec"].clone();
    let u = &a.update;
    let mut wanted = super::create::wanted(&u.secret_add, &u.config_add, &u.network_add)?;
    wanted.networks.extend(u.network_rm.iter().cloned());
    let registry_auth = a.common.with_registry_auth.unwrap_or(false);
    let query = if rollback {
        // Rollback can't be combined with other flags (detach and quiet aside).
        let mut probe = spec.clone();
        let changed = apply_update(&mut probe, u, &a.common, &Lookups::permissive(&wanted))
            .map_or(true, |()| probe != spec);
        if changed || registry_auth {
            return Err(UserError("other flags may not be combined with --rollback".into()).into());
        }
        "rollback=previous&"
    } else {
        // Flag errors first, then the names they refer to.
        apply_update(
            &mut spec.clone(),
            u,
            &a.common,
            &Lookups::permissive(&wanted),
        )?;
        let lk = Lookups::fetch(client, &wanted).await?;
        apply_update(&mut spec, u, &a.common, &lk)?;
        // docker/cli asks the registry only when --image is given; the tag always.
        let resolve = u.image.is_some() && !a.common.no_resolve_image.unwrap_or(false);
        if let Some(w) = super::pin::pin_image(client, &mut spec, resolve).await {
            eprintln!("{w}");
        }
        if registry_auth {
            ""
        } else {
            "registryAuthFrom=spec&"
        }
    };
    let auth = if registry_auth {
        registry_auth::encoded_for(
            spec["TaskTemplate"]["ContainerSpec"]["Image"]
                .as_str()
                .unwrap_or_default(),
        )?
    } else {
        None
    };
    post_update(client, &service, &spec, query, auth.as_deref()).await?;
    println!("{}", a.service);
    if a.common.detach() {
        return Ok(());
    }
    wait_for_service(client, &a.service, a.common.quiet()).await
}
