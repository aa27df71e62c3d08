//! `--with-registry-auth`: the client's credentials for the image's registry, read
//! from the docker CLI's config file (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`, its `auths` entries) and sent as the `X-Registry-Auth`
//! header, URL-safe base64 of `{"username","password","serveraddress"}`, as docker's
//! `RetrieveAuthTokenFromImage` does. Credential helpers (`credsStore`) are not run.

use anyhow::Result;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;
use serde_json::{json, Value};

/// Docker Hub's key in `auths`.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// The registry an image reference names: the first path part when it looks like a
/// host (has a `.` or `:`, or is `localhost`), else Docker Hub.
pub fn registry_of(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            if first == "docker.io" || first == "index.docker.io" {
                DOCKER_HUB.to_string()
            } else {
                first.to_string()
            }
        }
        _ => DOCKER_HUB.to_string(),
    }
}

/// The header value for `image`, from a parsed config file.
pub fn encode_from_config(config: &Value, image: &str) -> String {
    let server = registry_of(image);
    let auths = &config["auths"];
    let entry = auths.get(&server).or_else(|| {
        // Keys are sometimes stored as URLs (`https://reg:5000`).
        auths.as_object().and_then(|m| {
            m.iter().find_map(|(k, v)| {
                let host = k
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/');
                let host = host.split('/').next().unwrap_or(host);
                (host == server).then_some(v)
            })
        })
    });
    let mut out = json!({});
    if let Some(e) = entry {
        let decoded = e["auth"]
            .as_str()
            .and_then(|a| STANDARD.decode(a).ok())
            .and_then(|b| String::from_utf8(b).ok());
        if let Some((user, pass)) = decoded.as_deref().and_then(|d| d.split_once(':')) {
            out["username"] = json!(user);
            out["password"] = json!(pass);
        }
        if let Some(t) = e["identitytoken"].as_str().filter(|t| !t.is_empty()) {
            out["identitytoken"] = json!(t);
        }
    }
    out["serveraddress"] = json!(server);
    URL_SAFE.encode(out.to_string())
}

/// The header for `image` from this user's docker config (None without a file).
pub fn encoded_for(image: &str) -> Result<Option<String>> {
    let dir = match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => std::path::PathBuf::from(d),
        None => match std::env::var_os("HOME") {
            Some(h) => std::path::PathBuf::from(h).join(".docker"),
            None => return Ok(None),
        },
    };
    let config = match std::fs::read(dir.join("config.json")) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    Ok(Some(encode_from_config(&config, image)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_and_header() {
        assert_eq!(registry_of("nginx"), DOCKER_HUB);
        assert_eq!(registry_of("library/nginx:1"), DOCKER_HUB);
        assert_eq!(registry_of("reg:5000/x/y:1"), "reg:5000");
        assert_eq!(registry_of("localhost/x"), "localhost");
        let cfg = json!({"auths": {"https://reg:5000": {"auth": STANDARD.encode("u:p")}}});
        let h = encode_from_config(&cfg, "reg:5000/app:1");
        let v: Value = serde_json::from_slice(&URL_SAFE.decode(h).unwrap()).unwrap();
        assert_eq!(
            v,
            json!({"username":"u","password":"p","serveraddress":"reg:5000"})
        );
    }
}
