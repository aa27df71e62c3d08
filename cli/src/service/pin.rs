//! Pinning a service's image, as the docker client does before `service create` and
//! `service update --image`: the image gets a tag when it has none (`busybox` ->
//! `busybox:latest`), then `GET /distribution/{image}/json` asks the manager for the
//! registry's digest and platforms, and the spec gets `image:tag@sha256:...` and
//! `Placement.Platforms`. When the registry cannot be asked, Docker's warning and the
//! image stays unpinned (each node resolves the tag itself).

use serde_json::{json, Value};

use crate::client::Client;

/// `reference.FamiliarString(reference.TagNameOnly(ref))`: `:latest` added when the
/// reference has neither tag nor digest, Docker Hub's `docker.io/library/` dropped.
pub fn with_default_tag(image: &str) -> String {
    let familiar = image
        .strip_prefix("docker.io/library/")
        .or_else(|| image.strip_prefix("docker.io/"))
        .unwrap_or(image);
    if familiar.is_empty() || familiar.contains('@') {
        return familiar.to_string();
    }
    // A colon after the last slash is a tag; one before it is a registry's port.
    let last = familiar.rsplit('/').next().unwrap_or(familiar);
    if last.contains(':') {
        familiar.to_string()
    } else {
        format!("{familiar}:latest")
    }
}

/// docker/cli's `digestWarning`.
pub fn digest_warning(image: &str) -> String {
    format!(
        "image {image} could not be accessed on a registry to record\n\
         its digest. Each node will access {image} independently,\n\
         possibly leading to different nodes running different\n\
         versions of the image.\n"
    )
}

/// Tags the spec's image and, when `query_registry`, pins it to the registry's digest.
/// Returns the warning to print when the registry could not be asked.
pub async fn pin_image(client: &Client, spec: &mut Value, query_registry: bool) -> Option<String> {
    let cs = &mut spec["TaskTemplate"]["ContainerSpec"];
    let image = with_default_tag(cs["Image"].as_str()?);
    cs["Image"] = json!(image);
    if !query_registry {
        return None;
    }
    // References are `[a-z0-9._:/@-]`: nothing to escape in a path.
    let Ok(d) = client
        .get_json(&format!("/distribution/{image}/json"))
        .await
    else {
        return Some(digest_warning(&image));
    };
    let Some(digest) = d["Descriptor"]["digest"].as_str() else {
        return Some(digest_warning(&image));
    };
    if !image.contains('@') {
        cs["Image"] = json!(format!("{image}@{digest}"));
    }
    let platforms: Vec<Value> = d["Platforms"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| json!({"Architecture": p["architecture"], "OS": p["os"]}))
        .collect();
    if !platforms.is_empty() {
        let task = &mut spec["TaskTemplate"];
        if !task["Placement"].is_object() {
            task["Placement"] = json!({});
        }
        task["Placement"]["Platforms"] = Value::Array(platforms);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_as_docker_does() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("busybox:1"), "busybox:1");
        assert_eq!(with_default_tag("docker.io/library/nginx"), "nginx:latest");
        assert_eq!(
            with_default_tag("127.0.0.1:5000/app"),
            "127.0.0.1:5000/app:latest"
        );
        assert_eq!(
            with_default_tag("127.0.0.1:5000/app:2"),
            "127.0.0.1:5000/app:2"
        );
        let pinned = "127.0.0.1:5000/app@sha256:45c5";
        assert_eq!(with_default_tag(pinned), pinned);
    }

    #[test]
    fn warning_in_dockers_words() {
        assert_eq!(
            digest_warning("busybox:latest"),
            "image busybox:latest could not be accessed on a registry to record\n\
             its digest. Each node will access busybox:latest independently,\n\
             possibly leading to different nodes running different\n\
             versions of the image.\n"
        );
    }
}
