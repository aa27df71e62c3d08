//! Tags: add one (`image tag`), take them away and delete what nothing names any more
//! (`image rm`), with Docker's rules on images containers use.
//!
//! ```text
//! rm NAME  ─▶ untag NAME ─▶ other tags left? done
//!                        └▶ last one: a container uses it? 409 (must force); forced:
//!                           the image stays, untagged (dangling), for the container
//!                        └▶ else Deleted: ID, and gc takes its blobs and layers
//! rm ID    ─▶ several repositories and not forced? 409; a running container? 409
//!             (cannot be forced); else untag all, Deleted: ID
//! ```

use super::store::{ImageStore, RefRecord};
use super::{familiar, parse_reference};
use crate::{Error, Result};

/// A container and the image it was made from, as `image rm` weighs them.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerUse {
    pub container: String,
    /// The image ID (config digest).
    pub image: String,
    pub running: bool,
}

/// One line of `image rm`'s answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Removed {
    Untagged(String),
    Deleted(String),
}

fn short(id: &str) -> &str {
    super::progress::short_id(id)
}

impl ImageStore {
    /// Name the image `source` names also `target` (`127.0.0.1:5000/app:1.0`).
    pub fn tag(&self, source: &str, target: &str) -> Result<String> {
        let (_, rec) = self.find(source)?;
        let parsed = parse_reference(target)?;
        if parsed.digest().is_some() {
            return Err(Error::InvalidReference {
                reference: target.to_string(),
                reason: "refusing to create a tag with a digest reference".into(),
            });
        }
        let key = parsed.whole();
        self.update_refs(|refs| refs.insert(key.clone(), rec))?;
        Ok(key)
    }

    /// `image rm`: see the module's diagram. `uses` are the node's containers.
    pub fn remove(
        &self,
        reference: &str,
        force: bool,
        uses: &[ContainerUse],
    ) -> Result<Vec<Removed>> {
        let (key, rec) = self.find(reference)?;
        let id = self.image_manifest(&rec.manifest)?.config.digest;
        let refs = self.refs()?;
        let naming: Vec<(String, RefRecord)> = refs
            .iter()
            .filter(|(_, r)| {
                self.image_manifest(&r.manifest)
                    .is_ok_and(|m| m.config.digest == id)
            })
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let user = uses.iter().find(|u| u.image == id);
        let running = uses.iter().find(|u| u.image == id && u.running);
        let by_name = refs.contains_key(&key)
            && !reference.starts_with("sha256:")
            && parse_reference(reference).is_ok_and(|r| r.whole() == key);
        let mut out = Vec::new();
        if by_name {
            let tagged: Vec<&String> = naming.iter().map(|(k, _)| k).collect();
            if tagged.len() > 1 {
                self.update_refs(|refs| refs.remove(&key))?;
                return Ok(vec![Removed::Untagged(familiar(&key))]);
            }
            if let Some(u) = user {
                if !force {
                    return Err(Error::ImageConflict(format!(
                        "conflict: unable to remove repository reference \"{reference}\" \
                         (must force) - container {} is using its referenced image {}",
                        short(&u.container),
                        short(&id)
                    )));
                }
                // Forced: the name goes, the image stays for its container, dangling.
                self.update_refs(|refs| {
                    refs.remove(&key);
                    refs.insert(rec.digest.clone(), rec.clone());
                })?;
                return Ok(vec![Removed::Untagged(familiar(&key))]);
            }
        } else {
            let repos = naming
                .iter()
                .filter_map(|(k, _)| super::info::named(k))
                .map(|r| format!("{}/{}", r.registry(), r.repository()))
                .collect::<std::collections::BTreeSet<_>>();
            if repos.len() > 1 && !force {
                return Err(Error::ImageConflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in \
                     multiple repositories",
                    short(&id)
                )));
            }
            if let Some(u) = running {
                return Err(Error::ImageConflict(format!(
                    "conflict: unable to delete {} (cannot be forced) - image is being used \
                     by running container {}",
                    short(&id),
                    short(&u.container)
                )));
            }
            if let (Some(u), false) = (user, force) {
                return Err(Error::ImageConflict(format!(
                    "conflict: unable to delete {} (must be forced) - image is being used \
                     by stopped container {}",
                    short(&id),
                    short(&u.container)
                )));
            }
        }
        let gone: Vec<String> = naming.iter().map(|(k, _)| k.clone()).collect();
        self.update_refs(|refs| {
            for k in &gone {
                refs.remove(k);
            }
        })?;
        out.extend(
            gone.iter()
                .filter(|k| !k.starts_with("sha256:"))
                .map(|k| Removed::Untagged(familiar(k))),
        );
        out.push(Removed::Deleted(id));
        let keep: Vec<String> = self.refs()?.into_keys().collect();
        self.gc(&keep)?;
        Ok(out)
    }
}
