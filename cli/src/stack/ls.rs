//! `swarm stack ls`: the stacks, from the services' namespace labels, as
//! `NAME SERVICES` sorted naturally (docker's `getStacks`).

use anyhow::Result;
use clap::Args;
use serde_json::{json, Value};

use super::LABEL_NAMESPACE;
use crate::client::{filters, Client};
use crate::format::table::{choose_format, default_header, render_list};
use crate::natural::natural_cmp;
use crate::UserError;

pub const DEFAULT_FORMAT: &str = "table {{.Name}}\t{{.Services}}";

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    #[arg(long, value_name = "string", help = crate::usage::LIST_FORMAT_HELP)]
    pub format: Option<String>,
}

/// Stack name -> its number of services, in the order first seen.
pub fn stacks(services: &[Value]) -> Result<Vec<(String, usize)>> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for s in services {
        let Some(name) = s["Spec"]["Labels"][LABEL_NAMESPACE].as_str() else {
            let id = s["ID"].as_str().unwrap_or_default();
            return Err(UserError(format!(
                "cannot get label {LABEL_NAMESPACE} for service {id}"
            ))
            .into());
        };
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, count)) => *count += 1,
            None => out.push((name.to_string(), 1)),
        }
    }
    out.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    Ok(out)
}

pub fn render(services: &[Value], format: Option<&str>) -> Result<String> {
    let rows: Vec<Value> = stacks(services)?
        .into_iter()
        .map(|(name, n)| json!({"Name": name, "Services": n.to_string()}))
        .collect();
    render_list(
        choose_format(format, false, DEFAULT_FORMAT),
        &rows,
        &default_header,
    )
}

pub async fn run(client: &Client, a: LsArgs) -> Result<()> {
    let services = client
        .get_json(&format!(
            "/services?filters={}",
            filters(&[("label", LABEL_NAMESPACE)])
        ))
        .await?;
    let services = services.as_array().cloned().unwrap_or_default();
    print!("{}", render(&services, a.format.as_deref())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: &str, ns: &str) -> Value {
        json!({"ID": id, "Spec": {"Labels": {LABEL_NAMESPACE: ns}}})
    }

    #[test]
    fn grouped_and_sorted_like_docker() {
        let services = [
            svc("1", "web10"),
            svc("2", "web2"),
            svc("3", "web2"),
            svc("4", "bank"),
        ];
        assert_eq!(
            render(&services, None).unwrap(),
            "NAME      SERVICES\nbank      1\nweb2      2\nweb10     1\n"
        );
        assert_eq!(
            render(&services, Some("{{.Name}}: {{.Services}}")).unwrap(),
            "bank: 1\nweb2: 2\nweb10: 1\n"
        );
    }

    #[test]
    fn a_service_without_the_label_is_an_error() {
        let err = stacks(&[json!({"ID": "x", "Spec": {"Labels": {}}})]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot get label com.docker.stack.namespace for service x"
        );
    }
}
