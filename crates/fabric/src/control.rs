//! The fabric's side of the control plane: checking handler configurations as they are written,
//! describing them, and the gallery of definitions anyone may use.

use std::collections::BTreeMap;

use mh_package::{ConfigurationField, Version};
use mh_store::{Channel, HandlerConfiguration, HandlerDefinition, OutputRoute, VersionStatus};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::builtins::{self, SYSTEM_ACCOUNT, SYSTEM_ACCOUNT_NAME};
use crate::configure;
use crate::error::{FabricError, Result};
use crate::runtime::{Definition, Fabric};

/// A handler configuration as a client writes it.
#[derive(Debug, Clone, Default)]
pub struct HandlerRequest {
    /// Identifier or name of a definition: the caller's own, a public one, or a built-in.
    pub definition: String,
    /// Defaults to the definition's active version.
    pub version: Option<String>,
    /// Defaults to the definition's name.
    pub name: Option<String>,
    pub configuration: serde_json::Map<String, Value>,
    pub input_subjects: Vec<String>,
    pub output_subject_routes: BTreeMap<String, RouteRequest>,
}

/// Where outputs with one subject go besides the channel itself: exactly one of the two.
#[derive(Debug, Clone, Default)]
pub struct RouteRequest {
    /// Identifier or name of one of the caller's channels.
    pub channel: Option<String>,
    /// Identifier of one of the caller's endpoints.
    pub endpoint: Option<String>,
}

/// A definition anyone may use.
#[derive(Debug, Clone)]
pub struct GalleryEntry {
    pub id: Uuid,
    pub name: String,
    pub description: String,
    pub account: Uuid,
    pub account_name: String,
    pub builtin: bool,
    pub active_version: Option<String>,
    pub output_subjects: Vec<String>,
    pub configuration: Vec<ConfigurationField>,
}

/// A configuration as it runs: the definition's name and every value, defaults included
/// (placeholders shown unfilled).
#[derive(Debug, Clone)]
pub struct HandlerDescription {
    pub definition_name: String,
    pub values: BTreeMap<String, String>,
}

/// Most characters of a handler configuration's name.
const MAX_NAME: usize = 100;

impl Fabric {
    /// Checks a requested handler configuration of `channel` (owned by `account`) and answers the
    /// record to store: a new one, or `existing` updated.
    pub async fn configure(
        &self,
        account: Uuid,
        channel: &Channel,
        request: HandlerRequest,
        existing: Option<&HandlerConfiguration>,
    ) -> Result<HandlerConfiguration> {
        let (definition_id, definition_name, version, definition) = self
            .usable_definition(account, &request.definition, request.version.as_deref())
            .await?;
        let manifest = definition.manifest();
        let values =
            configure::normalize_values(manifest, definition.builtin(), &request.configuration)?;
        if let Some(builtin) = definition.builtin() {
            if builtin.kind == builtins::BuiltinKind::ForwardToEndpoint {
                if let Some(endpoint) = values
                    .get("Endpoint")
                    .filter(|e| !crate::template::has_placeholders(e))
                {
                    self.owned_endpoint(account, endpoint).await?;
                }
            }
        }
        configure::check_input_subjects(&request.input_subjects)?;
        let subjects = configure::output_subjects(manifest, &values);
        if request.output_subject_routes.len() > configure::MAX_SUBJECTS {
            return Err(FabricError::invalid(
                "invalid_route",
                format!(
                    "at most {} output subject routes are allowed",
                    configure::MAX_SUBJECTS
                ),
            ));
        }
        let mut output_routes = BTreeMap::new();
        for (subject, target) in &request.output_subject_routes {
            if !subjects.contains(subject) {
                return Err(FabricError::invalid(
                    "unknown_output_subject",
                    format!(
                        "{} does not push subject {subject:?}; its output subjects are: {}",
                        manifest.name,
                        if subjects.is_empty() {
                            "(none)".to_string()
                        } else {
                            subjects.iter().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ),
                ));
            }
            let route = match (&target.channel, &target.endpoint) {
                (Some(reference), None) => {
                    OutputRoute::Channel(self.owned_channel(account, reference).await?)
                }
                (None, Some(endpoint)) => {
                    OutputRoute::Endpoint(self.owned_endpoint(account, endpoint).await?)
                }
                _ => {
                    return Err(FabricError::invalid(
                        "invalid_route",
                        format!(
                        "the route of subject {subject:?} needs exactly one of channel or endpoint"
                    ),
                    ))
                }
            };
            output_routes.insert(subject.clone(), route);
        }
        let name = request.name.unwrap_or(definition_name);
        let name = name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control)
        {
            return Err(FabricError::invalid(
                "invalid_name",
                format!("a handler's name is 1-{MAX_NAME} characters without control characters"),
            ));
        }
        // Whole seconds: what the store keeps, so the answer matches later reads.
        let now = OffsetDateTime::now_utc();
        let now = now.replace_nanosecond(0).unwrap_or(now);
        Ok(HandlerConfiguration {
            id: existing.map_or_else(Uuid::new_v4, |e| e.id),
            channel_id: channel.id,
            definition_id,
            version,
            name,
            values,
            input_subjects: request.input_subjects,
            output_routes,
            created_at: existing.map_or(now, |e| e.created_at),
            updated_at: now,
        })
    }

    /// The definition named or identified by `reference` if `account` may use it: its id, name,
    /// the version to use (as stored; it must be accepted) and what that version runs.
    async fn usable_definition(
        &self,
        account: Uuid,
        reference: &str,
        version: Option<&str>,
    ) -> Result<(Uuid, String, String, Definition)> {
        let reference = reference.trim();
        let builtin = match Uuid::parse_str(reference) {
            Ok(id) => builtins::builtin(id),
            Err(_) => builtins::builtin_by_name(reference),
        };
        if let Some(builtin) = builtin {
            if let Some(requested) = version {
                let same = requested.parse::<Version>().is_ok_and(|v| {
                    v.sort_key()
                        == builtins::BUILTIN_VERSION
                            .parse::<Version>()
                            .map(|b| b.sort_key())
                            .unwrap_or_default()
                });
                if !same {
                    return Err(FabricError::not_found(format!(
                        "{} has only version {}",
                        builtin.manifest.name,
                        builtins::BUILTIN_VERSION
                    )));
                }
            }
            return Ok((
                builtin.id,
                builtin.manifest.name.clone(),
                builtins::BUILTIN_VERSION.to_string(),
                Definition::Builtin(builtin),
            ));
        }
        let store = &self.parts().store;
        let definition = match Uuid::parse_str(reference) {
            Ok(id) => store.definition(id).await?,
            Err(_) => {
                let own = store
                    .definitions_of(account)
                    .await?
                    .into_iter()
                    .find(|d| d.name == reference);
                match own {
                    Some(own) => Some(own),
                    None => store
                        .public_definitions()
                        .await?
                        .into_iter()
                        .find(|d| d.name == reference),
                }
            }
        };
        let definition = definition
            .filter(|d| d.account_id == account || d.public)
            .ok_or_else(|| {
                FabricError::not_found(format!(
                    "no handler definition named or identified by {reference:?} that you may use"
                ))
            })?;
        let version = match version {
            Some(version) => version.to_string(),
            None => definition.active_version.clone().ok_or_else(|| {
                FabricError::conflict(
                    "no_active_version",
                    format!(
                        "{} has no active version; name a version or activate one",
                        definition.name
                    ),
                )
            })?,
        };
        let key = version
            .parse::<Version>()
            .map_err(|e| FabricError::invalid("invalid_version", e.to_string()))?
            .sort_key();
        let stored = store.version(definition.id, &key).await?.ok_or_else(|| {
            FabricError::not_found(format!("{} has no version {version}", definition.name))
        })?;
        if stored.status != VersionStatus::Accepted {
            return Err(FabricError::conflict(
                "version_not_accepted",
                format!(
                    "version {} of {} is {}; only accepted versions can be used",
                    stored.version,
                    definition.name,
                    stored.status.as_str()
                ),
            ));
        }
        let version = stored.version.clone();
        Ok((
            definition.id,
            definition.name,
            version,
            Definition::package(stored)?,
        ))
    }

    async fn owned_channel(&self, account: Uuid, reference: &str) -> Result<Uuid> {
        let store = &self.parts().store;
        let found = match Uuid::parse_str(reference) {
            Ok(id) => store.channel(id).await?.filter(|c| c.account_id == account),
            Err(_) => store.channel_by_name(account, reference).await?,
        };
        found.map(|c| c.id).ok_or_else(|| {
            FabricError::invalid(
                "unknown_channel",
                format!("you have no channel named or identified by {reference:?}"),
            )
        })
    }

    async fn owned_endpoint(&self, account: Uuid, reference: &str) -> Result<Uuid> {
        let id = configure::parse_id("endpoint", reference)?;
        self.parts()
            .store
            .endpoint(id)
            .await?
            .filter(|e| e.account_id == account)
            .map(|e| e.id)
            .ok_or_else(|| {
                FabricError::invalid("unknown_endpoint", format!("you have no endpoint {id}"))
            })
    }

    /// The definition's name and every value of the configuration, defaults included.
    pub async fn describe(
        &self,
        configuration: &HandlerConfiguration,
    ) -> Result<HandlerDescription> {
        let definition = self
            .definition(configuration.definition_id, &configuration.version)
            .await;
        let mut values = configuration.values.clone();
        let definition_name = match &definition {
            Ok(definition) => {
                for field in &definition.manifest().configuration {
                    if let Some(default) = &field.default {
                        values
                            .entry(field.name.clone())
                            .or_insert_with(|| default.clone());
                    }
                }
                definition.manifest().name.clone()
            }
            // A definition whose version was since removed still shows what is stored.
            Err(_) => String::new(),
        };
        Ok(HandlerDescription {
            definition_name,
            values,
        })
    }

    /// The built-ins, then every public definition with an active version, by name.
    pub async fn gallery(&self) -> Result<Vec<GalleryEntry>> {
        let mut entries: Vec<GalleryEntry> = builtins::builtins()
            .iter()
            .map(|builtin| GalleryEntry {
                id: builtin.id,
                name: builtin.manifest.name.clone(),
                description: builtin.manifest.description.clone(),
                account: SYSTEM_ACCOUNT,
                account_name: SYSTEM_ACCOUNT_NAME.to_string(),
                builtin: true,
                active_version: Some(builtins::BUILTIN_VERSION.to_string()),
                output_subjects: builtin.manifest.output_subjects.clone(),
                configuration: builtin.manifest.configuration.clone(),
            })
            .collect();
        let store = &self.parts().store;
        for definition in store.public_definitions().await? {
            if let Some(entry) = self.gallery_entry(definition).await? {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    async fn gallery_entry(&self, definition: HandlerDefinition) -> Result<Option<GalleryEntry>> {
        let Some(active) = definition.active_version.clone() else {
            return Ok(None);
        };
        let Definition::Package { manifest, .. } = self.definition(definition.id, &active).await?
        else {
            return Ok(None);
        };
        let account_name = self
            .parts()
            .store
            .account(definition.account_id)
            .await?
            .map(|a| a.name)
            .unwrap_or_default();
        Ok(Some(GalleryEntry {
            id: definition.id,
            name: definition.name,
            description: definition.description,
            account: definition.account_id,
            account_name,
            builtin: false,
            active_version: Some(active),
            output_subjects: manifest.output_subjects,
            configuration: manifest.configuration,
        }))
    }
}
