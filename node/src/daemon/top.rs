//! `GET /containers/{id}/top?ps_args=`: the container's processes as the host's `ps`
//! shows them, as dockerd does it (moby's `daemon/top_unix.go`): run `ps <ps_args>`
//! (default `-ef`), keep the header as `Titles` and the rows whose PID is in the
//! container's cgroup; the last column (the command) keeps its spaces.

use serde_json::json;
use swarm_runtime::container::{cgroup, Status};

use super::Node;
use crate::api::{ApiError, Reply};

/// `ps`'s output as Docker's answer: titles and the rows of `pids`.
pub fn parse_ps(output: &str, pids: &[i32]) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| "Couldn't find PID field in ps output".to_string())?;
    let mut rows = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i32>() else {
            return Err(format!("Unexpected pid '{}'", fields[pid_col]));
        };
        if !pids.contains(&pid) {
            continue;
        }
        let last = titles.len() - 1;
        let mut row: Vec<String> = fields[..last].iter().map(|s| s.to_string()).collect();
        row.push(fields[last..].join(" "));
        rows.push(row);
    }
    Ok((titles, rows))
}

/// moby refuses ps arguments that would print something else than a table of processes.
fn validate_ps_args(args: &str) -> Result<(), ApiError> {
    if args.contains(char::is_control) {
        return Err(ApiError::invalid(format!("invalid ps arguments: {args:?}")));
    }
    Ok(())
}

impl Node {
    pub(super) async fn container_top(&self, key: &str, ps_args: &str) -> Result<Reply, ApiError> {
        let c = self.find_container(key).await?;
        if c.st.status != Status::Running {
            return Err(ApiError::Conflict(format!(
                "Container {} is not running",
                c.st.id
            )));
        }
        validate_ps_args(ps_args)?;
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let pids = cgroup::procs(&self.rt.cgroup_path(&c.st.id));
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .output()
            .await
            .map_err(|e| ApiError::internal(format!("ps: {e}")))?;
        if !out.status.success() {
            return Err(ApiError::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let (titles, processes) =
            parse_ps(&String::from_utf8_lossy(&out.stdout), &pids).map_err(ApiError::internal)?;
        Ok(Reply::Json(
            200,
            json!({ "Titles": titles, "Processes": processes }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PS_EF: &str = "\
UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 00:01 ?        00:00:02 /sbin/init
root        4242    4200  0 00:30 ?        00:00:00 sh -c echo hi; sleep 1d
root        4250    4242  0 00:30 ?        00:00:00 sleep 1d
";

    #[test]
    fn only_the_containers_rows_with_the_command_whole() {
        let (titles, rows) = parse_ps(PS_EF, &[4242, 4250]).unwrap();
        assert_eq!(
            titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1], "4242");
        assert_eq!(rows[0][7], "sh -c echo hi; sleep 1d");
        assert_eq!(rows[1][7], "sleep 1d");
    }

    #[test]
    fn a_table_without_pids_is_refused() {
        assert!(parse_ps("USER COMMAND\nroot init\n", &[1]).is_err());
        let (_, rows) = parse_ps("PID CMD\n", &[1]).unwrap();
        assert!(rows.is_empty());
    }
}
