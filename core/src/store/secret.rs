//! Secrets and configs as services use them: which services reference one (a referenced
//! one cannot be removed), whether a service spec's references all exist (checked when
//! a service is created or its references change), both enforced by `Store::apply`; and
//! what an update may change (labels only, as swarmkit).

use super::Store;
use crate::error::{Error, Result};
use crate::model::{Config, ConfigSpec, ContainerSpec, Secret, SecretSpec, Service, ServiceSpec};
use crate::store::ObjectKind;

fn container(spec: &ServiceSpec) -> Option<&ContainerSpec> {
    spec.task_template.container_spec.as_ref()
}

impl Store {
    /// Names of the services whose spec references the secret `id`, in ID order.
    pub fn services_using_secret(&self, id: &str) -> Vec<&Service> {
        self.services()
            .filter(|s| {
                container(&s.spec).is_some_and(|c| c.secrets.iter().any(|r| r.secret_id == id))
            })
            .collect()
    }

    pub fn services_using_config(&self, id: &str) -> Vec<&Service> {
        self.services()
            .filter(|s| {
                container(&s.spec).is_some_and(|c| c.configs.iter().any(|r| r.config_id == id))
            })
            .collect()
    }

    /// The refusal of removing a secret or config still in use, if it is.
    pub(super) fn check_not_in_use(&self, kind: ObjectKind, id: &str) -> Result<()> {
        let (name, users) = match kind {
            ObjectKind::Secret => (
                self.secret(id).map(|s| s.spec.name.clone()),
                self.services_using_secret(id),
            ),
            ObjectKind::Config => (
                self.config(id).map(|c| c.spec.name.clone()),
                self.services_using_config(id),
            ),
            ObjectKind::Network => return self.check_network_not_in_use(id),
            _ => return Ok(()),
        };
        match name {
            Some(name) if !users.is_empty() => Err(Error::InUse {
                kind,
                name,
                services: users.iter().map(|s| s.spec.name.clone()).collect(),
            }),
            _ => Ok(()),
        }
    }

    /// An update's references, checked only when they changed: a status-only update of
    /// a service must not fail on what its spec already said.
    pub(super) fn check_changed_refs(&self, old: &ServiceSpec, new: &ServiceSpec) -> Result<()> {
        let refs = |s: &ServiceSpec| container(s).map(|c| (c.secrets.clone(), c.configs.clone()));
        if refs(old) == refs(new) {
            return Ok(());
        }
        self.check_service_refs(new)
    }

    /// A service spec's secret and config references name stored objects, by ID and
    /// name (swarmkit's `checkSecretExistence`: `secret not found: a, b`). `Store::apply`
    /// checks it on service create and update, in the same entry as the write: no
    /// removal can slip in between.
    pub fn check_service_refs(&self, spec: &ServiceSpec) -> Result<()> {
        let Some(c) = container(spec) else {
            return Ok(());
        };
        let missing: Vec<&str> = c
            .secrets
            .iter()
            .filter(|r| self.secret(&r.secret_id).map(|s| &s.spec.name) != Some(&r.secret_name))
            .map(|r| r.secret_name.as_str())
            .collect();
        not_found("secret", &missing)?;
        let missing: Vec<&str> = c
            .configs
            .iter()
            .filter(|r| self.config(&r.config_id).map(|s| &s.spec.name) != Some(&r.config_name))
            .map(|r| r.config_name.as_str())
            .collect();
        not_found("config", &missing)
    }
}

fn not_found(what: &str, missing: &[&str]) -> Result<()> {
    match missing.len() {
        0 => Ok(()),
        1 => Err(Error::invalid(format!("{what} not found: {}", missing[0]))),
        _ => Err(Error::invalid(format!(
            "{what}s not found: {}",
            missing.join(", ")
        ))),
    }
}

fn only_labels() -> Error {
    Error::invalid("only updates to Labels are allowed")
}

/// `POST /secrets/{id}/update`: the stored secret with the new labels. The name may not
/// change, nor the data (an absent `Data` keeps it; the same bytes are accepted, as
/// `stack deploy` sends them back).
pub fn update_secret(stored: &Secret, spec: SecretSpec) -> Result<Secret> {
    if spec.name != stored.spec.name || (!spec.data.is_empty() && spec.data != stored.spec.data) {
        return Err(only_labels());
    }
    let mut out = stored.clone();
    out.spec.labels = spec.labels;
    Ok(out)
}

/// `POST /configs/{id}/update`: labels only, as for secrets.
pub fn update_config(stored: &Config, spec: ConfigSpec) -> Result<Config> {
    if spec.name != stored.spec.name || (!spec.data.is_empty() && spec.data != stored.spec.data) {
        return Err(only_labels());
    }
    let mut out = stored.clone();
    out.spec.labels = spec.labels;
    Ok(out)
}
