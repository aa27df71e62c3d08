//! Exec processes: the OCI process spec of a process run inside a running container
//! (health checks, `exec`), derived from the container's own process, and the capped
//! buffer its output is captured into.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::container::bundle;
use crate::container::ExecSpec;
use crate::{Error, Result};

/// Docker keeps this much of a health probe's output.
pub const OUTPUT_CAP: usize = 4096;

/// The exec's process: the container's process (capabilities, rlimits, apparmor,
/// no_new_privileges, env) with the exec's args, env overrides, user and workdir.
pub fn process_spec(container_spec: &Value, rootfs: &Path, exec: &ExecSpec) -> Result<Value> {
    if exec.args.is_empty() {
        return Err(Error::InvalidSpec("exec: no command".into()));
    }
    let mut p = container_spec
        .get("process")
        .cloned()
        .ok_or_else(|| Error::Containerd("container spec has no process".into()))?;
    let obj = p
        .as_object_mut()
        .ok_or_else(|| Error::Containerd("container spec process is not an object".into()))?;
    obj.insert("args".into(), json!(exec.args));
    obj.insert("terminal".into(), json!(false));
    obj.remove("consoleSize");
    let mut env: Vec<String> = obj
        .get("env")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    for kv in &exec.env {
        let key = kv.split('=').next().unwrap_or(kv);
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    obj.insert("env".into(), json!(env));
    if let Some(cwd) = exec.workdir.as_ref().filter(|w| !w.is_empty()) {
        obj.insert("cwd".into(), json!(cwd));
    }
    if let Some(user) = exec.user.as_ref().filter(|u| !u.is_empty()) {
        let u = bundle::lookup_user(rootfs, user)?;
        obj.insert(
            "user".into(),
            json!({"uid": u.uid, "gid": u.gid, "additionalGids": u.additional_gids}),
        );
    }
    Ok(p)
}

/// stdout and stderr of an exec, interleaved as they arrive, capped at [`OUTPUT_CAP`].
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn push(&self, data: &[u8]) {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let room = OUTPUT_CAP.saturating_sub(buf.len());
        buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_overrides_args_env_and_workdir() {
        let spec = json!({"process": {"args": ["sleep", "1d"], "env": ["PATH=/bin", "A=1"],
            "cwd": "/", "terminal": true, "user": {"uid": 0, "gid": 0}}});
        let exec = ExecSpec {
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["A=2".into(), "B=3".into()],
            workdir: Some("/tmp".into()),
            ..Default::default()
        };
        let p = process_spec(&spec, Path::new("/nonexistent"), &exec).unwrap();
        assert_eq!(p["args"], json!(["sh", "-c", "true"]));
        assert_eq!(p["env"], json!(["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(p["cwd"], json!("/tmp"));
        assert_eq!(p["terminal"], json!(false));
    }

    #[test]
    fn capture_is_capped() {
        let c = Capture::default();
        c.push(&[b'a'; 3000]);
        c.push(&[b'b'; 3000]);
        assert_eq!(c.take().len(), OUTPUT_CAP);
    }
}
