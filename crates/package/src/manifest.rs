//! `handler.toml`, the manifest at the root of every package.
//!
//! ```toml
//! name = "average-in-period"
//! description = "Averages a measurement over a window"
//! runtime = "wasm-component"
//! runtime_version = "1.0.0"        # version of the messagehandler:handler world
//! component = "handler.wasm"       # path of the component inside the zip
//! output_subjects = ["Average"]
//!
//! [[configuration]]
//! name = "DurationInSeconds"
//! type = "integer"                 # string | integer | number | boolean
//! required = true
//! default = 60
//! description = "Length of the window"
//! output_subject = false           # true: the value names an output subject
//! ```

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::PackageError;
use crate::version::Version;

/// File name of the manifest at the root of the zip.
pub const MANIFEST_FILE: &str = "handler.toml";
/// The only runtime so far.
pub const RUNTIME_WASM_COMPONENT: &str = "wasm-component";
/// Major version of the handler world (`wit/handler.wit`) this server implements.
pub const WORLD_MAJOR: u64 = 1;

const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 4000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
        }
    }

    /// Whether `text` is a value of this type in the text form configuration values are kept in.
    pub fn accepts(self, text: &str) -> bool {
        match self {
            FieldType::String => true,
            FieldType::Integer => text.parse::<i64>().is_ok(),
            FieldType::Number => text.parse::<f64>().is_ok_and(f64::is_finite),
            FieldType::Boolean => matches!(text, "true" | "false"),
        }
    }
}

/// One configuration field as written in the manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    #[serde(rename = "type")]
    field_type: FieldType,
    #[serde(default)]
    required: bool,
    default: Option<toml::Value>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    output_subject: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    #[serde(default)]
    description: String,
    runtime: String,
    runtime_version: String,
    component: String,
    #[serde(default)]
    output_subjects: Vec<String>,
    #[serde(default)]
    configuration: Vec<RawField>,
}

/// A configuration field, validated. Defaults are kept as text, the form in which configuration
/// values travel (the original platform stored them as strings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigurationField {
    pub name: String,
    pub field_type: FieldType,
    pub required: bool,
    pub default: Option<String>,
    pub description: String,
    pub output_subject: bool,
}

/// A validated manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub description: String,
    pub runtime: String,
    pub runtime_version: String,
    pub component: String,
    pub output_subjects: Vec<String>,
    pub configuration: Vec<ConfigurationField>,
}

fn invalid(message: impl Into<String>) -> PackageError {
    PackageError::InvalidManifest(message.into())
}

/// Names of fields and subjects: what a template or a route can refer to without quoting.
fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn default_text(value: toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text),
        toml::Value::Integer(number) => Some(number.to_string()),
        toml::Value::Float(number) => Some(number.to_string()),
        toml::Value::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, PackageError> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| invalid(e.message()))?;
        let name = raw.name.trim().to_string();
        if name.is_empty() || name.chars().count() > MAX_NAME {
            return Err(invalid(format!("name must be 1 to {MAX_NAME} characters")));
        }
        if raw.description.chars().count() > MAX_DESCRIPTION {
            return Err(invalid(format!(
                "description must be at most {MAX_DESCRIPTION} characters"
            )));
        }
        if raw.runtime != RUNTIME_WASM_COMPONENT {
            return Err(invalid(format!(
                "runtime {:?} is not supported: use {RUNTIME_WASM_COMPONENT:?}",
                raw.runtime
            )));
        }
        let world: Version = raw.runtime_version.parse().map_err(|_| {
            invalid(format!(
                "runtime_version {:?} is not a version",
                raw.runtime_version
            ))
        })?;
        if world.major() != WORLD_MAJOR {
            return Err(invalid(format!(
                "runtime_version {world} is not supported: this server runs messagehandler:handler {WORLD_MAJOR}.x"
            )));
        }
        if !raw.component.ends_with(".wasm") {
            return Err(invalid(format!(
                "component {:?} must name the .wasm file in the package",
                raw.component
            )));
        }

        let mut subjects = HashSet::new();
        for subject in &raw.output_subjects {
            if !valid_identifier(subject) {
                return Err(invalid(format!("output subject {subject:?} is invalid: use 1 to {MAX_NAME} letters, digits, '_', '-' or '.'")));
            }
            if !subjects.insert(subject.as_str()) {
                return Err(invalid(format!(
                    "output subject {subject:?} is listed twice"
                )));
            }
        }

        let mut names = HashSet::new();
        let mut configuration = Vec::with_capacity(raw.configuration.len());
        for field in raw.configuration {
            if !valid_identifier(&field.name) {
                return Err(invalid(format!("configuration field name {:?} is invalid: use 1 to {MAX_NAME} letters, digits, '_', '-' or '.'", field.name)));
            }
            if !names.insert(field.name.to_ascii_lowercase()) {
                return Err(invalid(format!(
                    "configuration field {:?} is defined twice",
                    field.name
                )));
            }
            if field.output_subject && field.field_type != FieldType::String {
                return Err(invalid(format!(
                    "configuration field {:?} names an output subject, so its type must be string",
                    field.name
                )));
            }
            let default = match field.default {
                None => None,
                Some(value) => {
                    let text = default_text(value).ok_or_else(|| {
                        invalid(format!(
                            "the default of configuration field {:?} must be a string, number or boolean",
                            field.name
                        ))
                    })?;
                    if !field.field_type.accepts(&text) {
                        return Err(invalid(format!(
                            "the default {text:?} of configuration field {:?} is not a {}",
                            field.name,
                            field.field_type.as_str()
                        )));
                    }
                    Some(text)
                }
            };
            configuration.push(ConfigurationField {
                name: field.name,
                field_type: field.field_type,
                required: field.required,
                default,
                description: field.description,
                output_subject: field.output_subject,
            });
        }

        Ok(Manifest {
            name,
            description: raw.description,
            runtime: raw.runtime,
            runtime_version: world.to_string(),
            component: raw.component,
            output_subjects: raw.output_subjects,
            configuration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "average-in-period"
description = "Averages a measurement"
runtime = "wasm-component"
runtime_version = "1.0.0"
component = "handler.wasm"
output_subjects = ["Average"]

[[configuration]]
name = "MeasurementType"
type = "string"
required = true
description = "Which measurement"

[[configuration]]
name = "DurationInSeconds"
type = "integer"
default = 60

[[configuration]]
name = "OutputSubject"
type = "string"
output_subject = true
default = "Average"
"#;

    fn error_of(text: &str) -> String {
        Manifest::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn a_complete_manifest_parses() {
        let manifest = Manifest::parse(GOOD).unwrap();
        assert_eq!(manifest.name, "average-in-period");
        assert_eq!(manifest.runtime_version, "1.0.0");
        assert_eq!(manifest.configuration.len(), 3);
        let duration = &manifest.configuration[1];
        assert_eq!(duration.field_type, FieldType::Integer);
        assert_eq!(duration.default.as_deref(), Some("60"));
        assert!(!duration.required);
        assert!(manifest.configuration[2].output_subject);
    }

    #[test]
    fn each_rule_is_enforced_with_a_clear_message() {
        let cases = [
            (
                GOOD.replace("wasm-component\"", "docker\""),
                "runtime \"docker\" is not supported",
            ),
            (
                GOOD.replace("runtime_version = \"1.0.0\"", "runtime_version = \"2.0\""),
                "runtime_version 2.0 is not supported",
            ),
            (
                GOOD.replace("runtime_version = \"1.0.0\"", "runtime_version = \"one\""),
                "runtime_version \"one\" is not a version",
            ),
            (
                GOOD.replace("handler.wasm", "handler.js"),
                "must name the .wasm file",
            ),
            (
                GOOD.replace("default = 60", "default = \"soon\""),
                "default \"soon\" of configuration field \"DurationInSeconds\" is not a integer",
            ),
            (
                GOOD.replace("name = \"DurationInSeconds\"", "name = \"MeasurementType\""),
                "\"MeasurementType\" is defined twice",
            ),
            (
                GOOD.replace(
                    "name = \"OutputSubject\"\ntype = \"string\"",
                    "name = \"OutputSubject\"\ntype = \"integer\"",
                ),
                "its type must be string",
            ),
            (
                GOOD.replace("type = \"integer\"", "type = \"date\""),
                "unknown variant `date`",
            ),
            (
                GOOD.replace("[\"Average\"]", "[\"Average\", \"Average\"]"),
                "listed twice",
            ),
            (
                GOOD.replace("[\"Average\"]", "[\"with space\"]"),
                "output subject \"with space\" is invalid",
            ),
            (
                GOOD.replace("name = \"average-in-period\"", "name = \"\""),
                "name must be 1 to 100",
            ),
            (format!("{GOOD}\nextra = 1"), "unknown field `extra`"),
            (
                GOOD.replace("component = \"handler.wasm\"\n", ""),
                "missing field `component`",
            ),
        ];
        for (text, expected) in cases {
            let message = error_of(&text);
            assert!(message.starts_with("handler.toml is invalid"), "{message}");
            assert!(
                message.contains(expected),
                "{message:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn field_types_check_text_values() {
        assert!(FieldType::Integer.accepts("-3"));
        assert!(!FieldType::Integer.accepts("3.5"));
        assert!(FieldType::Number.accepts("3.5"));
        assert!(!FieldType::Number.accepts("NaN"));
        assert!(FieldType::Boolean.accepts("false"));
        assert!(!FieldType::Boolean.accepts("yes"));
    }
}
