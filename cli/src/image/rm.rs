//! `swarm image rm [-f] IMAGE...` (and `swarm rmi`): DELETE /images/{name} for each,
//! printing `Untagged: ..` and `Deleted: ..` lines; errors after all were tried.

use anyhow::Result;
use clap::Args;
use http::Method;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::client::Client;
use crate::UserError;

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    /// IMAGE [IMAGE...]
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

/// `Untagged: busybox:1` / `Deleted: sha256:..` lines of one answer.
pub fn render(answer: &Value) -> String {
    let mut out = String::new();
    for item in answer.as_array().into_iter().flatten() {
        for key in ["Untagged", "Deleted"] {
            if let Some(v) = item[key].as_str() {
                out += &format!("{key}: {v}\n");
            }
        }
    }
    out
}

pub async fn run(client: &Client, a: RmArgs) -> Result<()> {
    let mut errors = Vec::new();
    for image in &a.images {
        let path = format!("/images/{image}?force={}&noprune={}", a.force, a.no_prune);
        match client.call(Method::DELETE, &path, None, None).await {
            Ok(resp) => {
                let bytes = resp.into_body().collect().await?.to_bytes();
                let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                print!("{}", render(&v));
            }
            Err(e) => errors.push(crate::user_message(&e)),
        }
    }
    UserError::all(errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let v = serde_json::json!([{"Untagged": "app:1"}, {"Deleted": "sha256:ab"}]);
        assert_eq!(render(&v), "Untagged: app:1\nDeleted: sha256:ab\n");
    }
}
