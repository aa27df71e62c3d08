//! `swarm image ls` (and `swarm images`): GET /images/json, one row per tag as the docker
//! CLI's image list shows them (`<none>` for untagged images), newest first.

use anyhow::Result;
use chrono::{DateTime, TimeZone, Utc};
use clap::Args;
use serde_json::{json, Value};

use crate::client::{filters, Client};
use crate::format::table::{choose_format, default_header, render_list};
use crate::units::human::human_duration;

pub const FORMAT: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
pub const DIGESTS_FORMAT: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long, value_name = "filter")]
    pub filter: Vec<String>,
    #[arg(long, value_name = "string", help = crate::usage::LIST_FORMAT_HELP)]
    pub format: Option<String>,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// [REPOSITORY[:TAG]]
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

/// go-units `HumanSizeWithPrecision(size, 3)`: decimal units, 3 significant digits.
pub fn human_size(n: f64) -> String {
    human_size_precision(n, 3)
}

/// go-units `HumanSizeWithPrecision`: decimal units, `precision` significant digits
/// (`HumanSize` is 4).
pub fn human_size_precision(n: f64, precision: i32) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut size = n;
    let mut i = 0;
    while size >= 1000.0 && i < UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    // Go's %.<precision>g: significant digits, trailing zeros dropped.
    let digits = if size > 0.0 {
        size.log10().floor() as i32 + 1
    } else {
        1
    };
    let decimals = (precision - digits).max(0) as usize;
    let mut s = format!("{size:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[i])
}

/// Rows as the docker CLI makes them: per tag, else per digest, else one `<none>`.
pub fn rows(images: &[Value], no_trunc: bool, now: DateTime<Utc>) -> Vec<Value> {
    let mut out = Vec::new();
    for img in images {
        let id = img["Id"].as_str().unwrap_or_default();
        let id = if no_trunc {
            id.to_string()
        } else {
            let hex = id.trim_start_matches("sha256:");
            hex[..hex.len().min(12)].to_string()
        };
        let created = Utc
            .timestamp_opt(img["Created"].as_i64().unwrap_or(0), 0)
            .single()
            .unwrap_or(now);
        let since = format!(
            "{} ago",
            human_duration((now - created).to_std().unwrap_or_default())
        );
        let size = human_size(img["Size"].as_f64().unwrap_or(0.0));
        let strs = |k: &str| -> Vec<String> {
            img[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let (tags, digests) = (strs("RepoTags"), strs("RepoDigests"));
        let digest_of = |repo: &str| {
            digests
                .iter()
                .find_map(|d| {
                    d.split_once('@')
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, d)| d)
                })
                .unwrap_or("<none>")
                .to_string()
        };
        let mut named: Vec<(String, String, String)> = tags
            .iter()
            .filter(|t| *t != "<none>:<none>")
            .map(|t| {
                let (repo, tag, _) = super::progress::split_reference(t);
                let digest = digest_of(&repo);
                (repo, tag.unwrap_or_default(), digest)
            })
            .collect();
        if named.is_empty() {
            named = digests
                .iter()
                .filter_map(|d| d.split_once('@'))
                .map(|(r, d)| (r.to_string(), "<none>".to_string(), d.to_string()))
                .collect();
        }
        if named.is_empty() {
            named.push(("<none>".into(), "<none>".into(), "<none>".into()));
        }
        for (repo, tag, digest) in named {
            out.push(json!({
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "ID": id,
                "CreatedSince": since,
                "CreatedAt": created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
                "Size": size,
                "Containers": "N/A",
                "SharedSize": "N/A",
                "UniqueSize": "N/A",
                "VirtualSize": size,
            }));
        }
    }
    out
}

pub fn render(images: &[Value], a: &LsArgs, now: DateTime<Utc>) -> Result<String> {
    let default = if a.digests { DIGESTS_FORMAT } else { FORMAT };
    render_list(
        choose_format(a.format.as_deref(), a.quiet, default),
        &rows(images, a.no_trunc, now),
        &|f| match f {
            "ID" => "IMAGE ID".into(),
            "CreatedSince" => "CREATED".into(),
            "CreatedAt" => "CREATED AT".into(),
            f => default_header(f),
        },
    )
}

pub async fn run(client: &Client, a: LsArgs) -> Result<()> {
    let mut pairs: Vec<(&str, &str)> = a
        .filter
        .iter()
        .map(|f| f.split_once('=').unwrap_or((f, "")))
        .collect();
    if let Some(r) = &a.reference {
        pairs.push(("reference", r));
    }
    let mut path = format!("/images/json?all={}", a.all);
    if !pairs.is_empty() {
        path += &format!("&filters={}", filters(&pairs));
    }
    let images = client.get_json(&path).await?;
    let images = images.as_array().cloned().unwrap_or_default();
    print!("{}", render(&images, &a, Utc::now())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: LsArgs,
    }

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(4_261_000.0), "4.26MB");
        assert_eq!(human_size(104_857_600.0), "105MB");
        assert_eq!(human_size(1_200.0), "1.2kB");
        assert_eq!(human_size(527.0), "527B");
    }

    #[test]
    fn table_with_tags_digests_and_dangling() {
        let now = Utc.timestamp_opt(1_000_000, 0).unwrap();
        let images = vec![
            json!({"Id": format!("sha256:{}", "a".repeat(64)), "Created": 1_000_000 - 7200,
                   "Size": 4_261_000, "RepoTags": ["127.0.0.1:5000/app:1.0", "busybox:1"],
                   "RepoDigests": ["127.0.0.1:5000/app@sha256:dd"]}),
            json!({"Id": format!("sha256:{}", "b".repeat(64)), "Created": 1_000_000 - 60,
                   "Size": 527, "RepoTags": [], "RepoDigests": []}),
        ];
        let a = T::parse_from(["t"]).a;
        assert_eq!(
            render(&images, &a, now).unwrap(),
            "REPOSITORY           TAG       IMAGE ID       CREATED              SIZE\n\
             127.0.0.1:5000/app   1.0       aaaaaaaaaaaa   2 hours ago          4.26MB\n\
             busybox              1         aaaaaaaaaaaa   2 hours ago          4.26MB\n\
             <none>               <none>    bbbbbbbbbbbb   About a minute ago   527B\n"
        );
        let a = T::parse_from(["t", "--digests", "-q"]).a;
        assert_eq!(
            render(&images, &a, now).unwrap(),
            "aaaaaaaaaaaa\naaaaaaaaaaaa\nbbbbbbbbbbbb\n"
        );
        let a = T::parse_from(["t", "--digests"]).a;
        let out = render(&images, &a, now).unwrap();
        assert!(out.starts_with("REPOSITORY"), "{out}");
        assert!(out.contains("sha256:dd"), "{out}");
        assert!(out.contains("DIGEST"), "{out}");
    }
}
