//! Autolock: `swarm unlock`, `swarm unlock-key [-q] [--rotate]`, and the message `swarm
//! init --autolock` and `swarm update --autolock=true` print (docker's
//! `printUnlockCommand`, with `swarm` for `docker swarm`).

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;

use crate::client::Client;

pub fn unlock_message(key: &str) -> String {
    format!(
        "To unlock a swarm manager after it restarts, run the `swarm unlock`\n\
         command and provide the following key:\n\n    {key}\n\n\
         Please remember to store this key in a password manager, since without it you\n\
         will not be able to restart the manager.\n"
    )
}

/// The swarm's unlock key, or docker's error when autolock is off.
pub async fn unlock_key(client: &Client) -> Result<String> {
    let resp = client
        .get_json("/swarm/unlockkey")
        .await
        .context("could not fetch unlock key")?;
    match resp["UnlockKey"].as_str() {
        Some(k) if !k.is_empty() => Ok(k.to_string()),
        _ => bail!("no unlock key is set"),
    }
}

#[derive(Debug, Clone, Args)]
pub struct UnlockArgs {}

/// Reads the key from standard input (a prompt on a terminal, as docker), then
/// POST /swarm/unlock.
pub async fn unlock(client: &Client, _a: UnlockArgs) -> Result<()> {
    let info = client.get_json("/info").await?;
    match info["Swarm"]["LocalNodeState"].as_str() {
        Some("inactive") => bail!("Error: This node is not part of a swarm"),
        Some("locked") => {}
        _ => bail!("Error: swarm is not locked"),
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        print!("Please enter unlock key: ");
        std::io::stdout().flush()?;
    }
    let mut key = String::new();
    stdin.lock().read_line(&mut key)?;
    client
        .post_json("/swarm/unlock", &json!({"UnlockKey": key.trim()}))
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Args)]
pub struct UnlockKeyArgs {
    /// Only display token
    #[arg(short, long)]
    pub quiet: bool,
    /// Rotate unlock key
    #[arg(long)]
    pub rotate: bool,
}

pub async fn unlock_key_cmd(client: &Client, a: UnlockKeyArgs) -> Result<()> {
    if a.rotate {
        let swarm = client.get_json("/swarm").await?;
        if swarm["Spec"]["EncryptionConfig"]["AutoLockManagers"] != json!(true) {
            bail!("cannot rotate because autolock is not turned on");
        }
        super::update::rotate(client, &swarm, "rotateManagerUnlockKey").await?;
        if !a.quiet {
            println!("Successfully rotated manager unlock key.\n");
        }
    }
    let key = unlock_key(client).await?;
    if a.quiet {
        println!("{key}");
    } else {
        print!("{}", unlock_message(&key));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_like_docker() {
        let key = "SWMKEY-1-+MrE8NgAyKj5r3NcR4FiQMdgu+7W72urH0EZeSmP/0Y";
        // docs.docker.com/engine/swarm/swarm_manager_locking/, `docker swarm` as `swarm`.
        let docker = "To unlock a swarm manager after it restarts, run the `docker swarm unlock`\ncommand and provide the following key:\n\n    SWMKEY-1-+MrE8NgAyKj5r3NcR4FiQMdgu+7W72urH0EZeSmP/0Y\n\nPlease remember to store this key in a password manager, since without it you\nwill not be able to restart the manager.\n";
        assert_eq!(unlock_message(key), docker.replace("docker swarm", "swarm"));
    }
}
