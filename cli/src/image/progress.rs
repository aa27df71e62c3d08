//! Docker's JSON progress stream (pull, push) printed as the docker CLI prints it when
//! stdout is not a terminal: one `id: status` line per message, messages that carry a
//! byte count (`Downloading`, `Pushing`) left out, `aux` objects kept for the caller,
//! an `error` ending the command with the daemon's message as it is.

use anyhow::Result;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::Value;

use crate::UserError;

/// The text for one message (None: nothing to print), or the stream's error.
pub fn render_message(msg: &Value) -> Result<Option<String>, String> {
    if let Some(e) = msg["errorDetail"]["message"]
        .as_str()
        .or(msg["error"].as_str())
    {
        return Err(e.to_string());
    }
    let detail = &msg["progressDetail"];
    let has_bytes =
        detail["current"].as_i64().unwrap_or(0) > 0 || detail["total"].as_i64().unwrap_or(0) > 0;
    if has_bytes || msg.get("aux").is_some() {
        return Ok(None);
    }
    let mut out = String::new();
    if let Some(id) = msg["id"].as_str().filter(|s| !s.is_empty()) {
        out += id;
        out += ": ";
    }
    if let Some(s) = msg["stream"].as_str() {
        out += s;
        return Ok(Some(out));
    }
    let status = msg["status"].as_str().unwrap_or_default();
    if status.is_empty() && out.is_empty() {
        return Ok(None);
    }
    out += status;
    out.push('\n');
    Ok(Some(out))
}

/// Reads the stream as it comes; prints unless `quiet`; returns the `aux` objects.
pub async fn print_stream(body: Incoming, quiet: bool) -> Result<Vec<Value>> {
    use std::io::Write;
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    let mut aux = Vec::new();
    let handle = |line: &[u8], aux: &mut Vec<Value>| -> Result<()> {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.is_empty() {
            return Ok(());
        }
        let msg: Value = serde_json::from_str(text)
            .map_err(|e| UserError(format!("decoding the progress stream: {e}")))?;
        if let Some(a) = msg.get("aux") {
            aux.push(a.clone());
        }
        match render_message(&msg) {
            Err(e) => Err(UserError(e).into()),
            Ok(Some(s)) if !quiet => {
                print!("{s}");
                let _ = std::io::stdout().flush();
                Ok(())
            }
            Ok(_) => Ok(()),
        }
    };
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            buf.extend_from_slice(data);
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                handle(&line, &mut aux)?;
            }
        }
    }
    handle(&buf, &mut aux)?;
    Ok(aux)
}

/// `name[:tag][@digest]` -> (name, tag, digest); a port is not a tag.
pub fn split_reference(r: &str) -> (String, Option<String>, Option<String>) {
    let (rest, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (r, None),
    };
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[slash..].rfind(':') {
        Some(i) => (
            rest[..slash + i].to_string(),
            Some(rest[slash + i + 1..].to_string()),
            digest,
        ),
        None => (rest.to_string(), None, digest),
    }
}

/// The fully qualified name the docker CLI prints (`docker.io/library/busybox`).
pub fn full_name(name: &str) -> String {
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            name.to_string()
        }
        Some(_) => format!("docker.io/{name}"),
        None => format!("docker.io/library/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn non_terminal_lines() {
        let r = |v: Value| render_message(&v);
        assert_eq!(
            r(json!({"status":"Pushed","progressDetail":{},"id":"abc"})),
            Ok(Some("abc: Pushed\n".into()))
        );
        assert_eq!(
            r(json!({"status":"Pushing","progressDetail":{"current":5,"total":9},"id":"abc"})),
            Ok(None)
        );
        assert_eq!(
            r(json!({"status":"1.0: digest: sha256:ab size: 527","progressDetail":{}})),
            Ok(Some("1.0: digest: sha256:ab size: 527\n".into()))
        );
        assert_eq!(
            r(json!({"progressDetail":{},"aux":{"Tag":"1.0"}})),
            Ok(None)
        );
        assert_eq!(
            r(json!({"errorDetail":{"message":"unauthorized: x"},"error":"unauthorized: x"})),
            Err("unauthorized: x".into())
        );
    }

    #[test]
    fn references() {
        assert_eq!(
            split_reference("127.0.0.1:5000/app:1.0"),
            ("127.0.0.1:5000/app".into(), Some("1.0".into()), None)
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app".into(), None, None)
        );
        assert_eq!(
            split_reference("busybox@sha256:ab"),
            ("busybox".into(), None, Some("sha256:ab".into()))
        );
        assert_eq!(full_name("busybox"), "docker.io/library/busybox");
        assert_eq!(full_name("user/app"), "docker.io/user/app");
        assert_eq!(full_name("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
    }
}
