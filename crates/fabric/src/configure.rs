//! Checking a handler configuration when it is written (so that mistakes are reported then, not
//! when messages flow) and completing it when the channel is deployed.
//!
//! Configuration values travel as text, as the original platform stored them; a request may give
//! them as JSON strings (`"60"`) or as native JSON (`60`, `true`). A value holding a
//! `{{ variables.Name }}` placeholder is checked once it is filled, at deployment.

use std::collections::{BTreeMap, BTreeSet};

use mh_package::{FieldType, Manifest};
use serde_json::Value;
use uuid::Uuid;

use crate::builtins::{Builtin, FieldRole};
use crate::error::{FabricError, Result};
use crate::template;
use crate::trigger::Trigger;

/// Longest configuration value, bytes.
pub const MAX_VALUE_LENGTH: usize = 16 * 1024;
/// Most input subjects or output routes of one handler.
pub const MAX_SUBJECTS: usize = 100;

fn invalid(message: impl Into<String>) -> FabricError {
    FabricError::invalid("invalid_configuration", message)
}

/// Converts the request's values to text, checks them against the manifest's fields (unknown
/// names, types, required fields) and, for built-ins, what their roles demand. Names are matched
/// ignoring ASCII case and stored as the manifest spells them. Defaults are not filled in here:
/// a later change of a default applies to handlers that did not set the field.
pub(crate) fn normalize_values(
    manifest: &Manifest,
    builtin: Option<&Builtin>,
    given: &serde_json::Map<String, Value>,
) -> Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    for (name, value) in given {
        let Some(field) = manifest
            .configuration
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
        else {
            let known: Vec<&str> = manifest
                .configuration
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            return Err(FabricError::invalid(
                "unknown_configuration_field",
                format!(
                    "{} has no configuration field {name:?}; its fields are: {}",
                    manifest.name,
                    if known.is_empty() {
                        "(none)".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        let text = match value {
            Value::Null => continue,
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            // Structured values are kept as their JSON text (the Webhook's Headers object).
            Value::Array(_) | Value::Object(_) if field.field_type == FieldType::String => {
                value.to_string()
            }
            _ => {
                return Err(invalid(format!(
                    "configuration field {} takes a {}, not {value}",
                    field.name,
                    field.field_type.as_str()
                )))
            }
        };
        if text.len() > MAX_VALUE_LENGTH {
            return Err(invalid(format!(
                "configuration field {} is {} bytes long; at most {MAX_VALUE_LENGTH} are allowed",
                field.name,
                text.len()
            )));
        }
        if values.insert(field.name.clone(), text).is_some() {
            return Err(invalid(format!(
                "configuration field {} is given twice (names ignore case)",
                field.name
            )));
        }
    }
    for field in &manifest.configuration {
        if field.required && field.default.is_none() && !values.contains_key(&field.name) {
            return Err(FabricError::invalid(
                "missing_configuration_field",
                format!(
                    "configuration field {} is required by {}: {}",
                    field.name, manifest.name, field.description
                ),
            ));
        }
    }
    for (name, text) in &values {
        let per_message = builtin.is_some_and(|b| b.role(name) == FieldRole::MessageTemplate);
        if template::has_placeholders(text) {
            check_placeholders(name, text, per_message)?;
        } else {
            check_value(manifest, builtin, name, text)?;
        }
    }
    Ok(values)
}

/// Placeholders in configuration values may only name variables (and, in a per-message template,
/// fields of the message).
fn check_placeholders(field: &str, text: &str, per_message: bool) -> Result<()> {
    let paths = template::placeholders(text)
        .map_err(|e| invalid(format!("configuration field {field}: {e}")))?;
    for path in paths {
        let named = |prefix: &str| {
            path.strip_prefix(prefix).is_some_and(|name| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            })
        };
        let valid = named("variables.") || (per_message && (named("message.") || named("msg.")));
        if !valid {
            let forms = if per_message {
                "{{ variables.Name }} or {{ message.Field }}"
            } else {
                "{{ variables.Name }}"
            };
            return Err(FabricError::invalid(
                "invalid_template",
                format!("configuration field {field}: the placeholder {{{{ {path} }}}} is not of the form {forms}"),
            ));
        }
    }
    Ok(())
}

/// Checks one value (placeholders already filled) against its field's type and role.
pub(crate) fn check_value(
    manifest: &Manifest,
    builtin: Option<&Builtin>,
    name: &str,
    text: &str,
) -> Result<()> {
    let Some(field) = manifest.configuration.iter().find(|f| f.name == name) else {
        return Ok(());
    };
    if !field.field_type.accepts(text) {
        return Err(invalid(format!(
            "configuration field {name} takes a {}, not {text:?}",
            field.field_type.as_str()
        )));
    }
    if field.output_subject && !valid_subject(text) {
        return Err(invalid(format!(
            "configuration field {name} names an output subject: 1-100 letters, digits, '_', '-' or '.', not {text:?}"
        )));
    }
    match builtin.map_or(FieldRole::Plain, |b| b.role(name)) {
        FieldRole::Plain | FieldRole::Device | FieldRole::Endpoint | FieldRole::MessageTemplate => {
            Ok(())
        }
        FieldRole::Trigger => Trigger::compile(text)
            .map(drop)
            .map_err(|e| FabricError::invalid("invalid_trigger", e.to_string())),
        FieldRole::Url => parse_url(text).map(drop),
        FieldRole::Headers => parse_headers(text).map(drop),
    }
}

/// An `http` or `https` URL.
pub(crate) fn parse_url(text: &str) -> Result<reqwest::Url> {
    let url = reqwest::Url::parse(text)
        .map_err(|e| FabricError::invalid("invalid_url", format!("{text:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FabricError::invalid(
            "invalid_url",
            format!("{text:?} is not an http:// or https:// URL with a host"),
        ));
    }
    Ok(url)
}

/// A JSON object of header names to string values.
pub(crate) fn parse_headers(text: &str) -> Result<reqwest::header::HeaderMap> {
    let bad = |why: String| FabricError::invalid("invalid_headers", format!("Headers: {why}"));
    let object: serde_json::Map<String, Value> = serde_json::from_str(text).map_err(|e| {
        bad(format!(
            "write a JSON object such as {{\"X-Api-Key\": \"...\"}} ({e})"
        ))
    })?;
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in object {
        let Value::String(value) = value else {
            return Err(bad(format!("the value of {name} is not a string")));
        };
        let header_name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("{name:?} is not a valid header name")))?;
        let header_value = reqwest::header::HeaderValue::from_str(&value)
            .map_err(|_| bad(format!("the value of {name} is not a valid header value")))?;
        headers.insert(header_name, header_value);
    }
    Ok(headers)
}

pub(crate) fn valid_subject(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 100
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Input subjects: valid subjects, or the empty subject (messages from endpoints).
pub(crate) fn check_input_subjects(subjects: &[String]) -> Result<()> {
    if subjects.len() > MAX_SUBJECTS {
        return Err(invalid(format!(
            "at most {MAX_SUBJECTS} input subjects are allowed"
        )));
    }
    for subject in subjects {
        if !subject.is_empty() && !valid_subject(subject) {
            return Err(FabricError::invalid(
                "invalid_subject",
                format!("input subject {subject:?} is not valid: 1-100 letters, digits, '_', '-' or '.' (or \"\" for messages from endpoints)"),
            ));
        }
    }
    Ok(())
}

/// The subjects a handler may push: the manifest's fixed ones and the values of its output
/// subject fields (their defaults included).
pub(crate) fn output_subjects(
    manifest: &Manifest,
    values: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let mut subjects: BTreeSet<String> = manifest.output_subjects.iter().cloned().collect();
    for field in manifest.configuration.iter().filter(|f| f.output_subject) {
        if let Some(value) = values.get(&field.name).or(field.default.as_ref()) {
            subjects.insert(value.clone());
        }
    }
    subjects
}

/// The values a handler runs with: stored values with defaults filled in and placeholders
/// replaced by variables, each checked again.
pub(crate) fn resolve_values(
    manifest: &Manifest,
    builtin: Option<&Builtin>,
    stored: &BTreeMap<String, String>,
    variables: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut resolved = BTreeMap::new();
    for field in &manifest.configuration {
        let Some(text) = stored.get(&field.name).or(field.default.as_ref()) else {
            continue;
        };
        let per_message =
            builtin.is_some_and(|b| b.role(&field.name) == FieldRole::MessageTemplate);
        let filled = template::render(text, |path| {
            let Some(name) = path.strip_prefix("variables.") else {
                // Message placeholders of per-message templates are filled at run time.
                return if per_message {
                    Ok(format!("{{{{ {path} }}}}"))
                } else {
                    Err("only {{ variables.Name }} placeholders can be filled here".to_string())
                };
            };
            variables.get(name).cloned().ok_or_else(|| {
                format!("there is no variable {name} for this channel, its environment or its account; create it with PUT /variables/{{scopeType}}/{{scopeId}}/{name}")
            })
        })
        .map_err(|e| FabricError::invalid("unresolved_variable", format!("configuration field {}: {e}", field.name)))?;
        check_value(manifest, builtin, &field.name, &filled)?;
        resolved.insert(field.name.clone(), filled);
    }
    Ok(resolved)
}

/// Parses an identifier given in a request.
pub(crate) fn parse_id(what: &str, text: &str) -> Result<Uuid> {
    Uuid::parse_str(text.trim())
        .map_err(|_| invalid(format!("{what} {text:?} is not an identifier (a UUID)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtins::builtin_by_name;
    use serde_json::json;

    fn average() -> Manifest {
        let text = r#"
name = "average-in-period"
runtime = "wasm-component"
runtime_version = "1.0.0"
component = "handler.wasm"
output_subjects = ["Average"]

[[configuration]]
name = "MeasurementType"
type = "string"
required = true

[[configuration]]
name = "DurationInSeconds"
type = "number"
default = 60

[[configuration]]
name = "OutputSubject"
type = "string"
output_subject = true
default = "Average"
"#;
        Manifest::parse(text).unwrap()
    }

    fn normalize(value: serde_json::Value) -> Result<BTreeMap<String, String>> {
        normalize_values(&average(), None, value.as_object().unwrap())
    }

    #[test]
    fn strings_and_native_json_both_become_text() {
        let values =
            normalize(json!({"measurementtype": "Temperature", "DurationInSeconds": 60})).unwrap();
        assert_eq!(values["MeasurementType"], "Temperature");
        assert_eq!(values["DurationInSeconds"], "60");
        let values =
            normalize(json!({"MeasurementType": "T", "DurationInSeconds": "2.5"})).unwrap();
        assert_eq!(values["DurationInSeconds"], "2.5");
    }

    #[test]
    fn wrong_values_are_rejected_with_the_reason() {
        let unknown = normalize(json!({"MeasurementType": "T", "Colour": "red"})).unwrap_err();
        assert_eq!(unknown.code, "unknown_configuration_field");
        assert!(
            unknown
                .message
                .contains("MeasurementType, DurationInSeconds, OutputSubject"),
            "{}",
            unknown.message
        );
        let missing = normalize(json!({})).unwrap_err();
        assert_eq!(missing.code, "missing_configuration_field");
        let typed =
            normalize(json!({"MeasurementType": "T", "DurationInSeconds": "soon"})).unwrap_err();
        assert!(
            typed.message.contains("takes a number"),
            "{}",
            typed.message
        );
        let subject =
            normalize(json!({"MeasurementType": "T", "OutputSubject": "a b"})).unwrap_err();
        assert!(
            subject.message.contains("output subject"),
            "{}",
            subject.message
        );
    }

    #[test]
    fn placeholders_are_checked_once_filled() {
        let values = normalize(
            json!({"MeasurementType": "T", "DurationInSeconds": "{{ variables.Window }}"}),
        )
        .unwrap();
        let bad = normalize(json!({"MeasurementType": "{{ env.HOME }}"})).unwrap_err();
        assert_eq!(bad.code, "invalid_template");
        let variables = BTreeMap::from([("Window".to_string(), "30".to_string())]);
        let resolved = resolve_values(&average(), None, &values, &variables).unwrap();
        assert_eq!(resolved["DurationInSeconds"], "30");
        assert_eq!(resolved["OutputSubject"], "Average");
        let missing = resolve_values(&average(), None, &values, &BTreeMap::new()).unwrap_err();
        assert_eq!(missing.code, "unresolved_variable");
        let wrong = BTreeMap::from([("Window".to_string(), "long".to_string())]);
        assert!(resolve_values(&average(), None, &values, &wrong).is_err());
    }

    #[test]
    fn builtin_roles_are_checked() {
        let alert = builtin_by_name("Generate Alert").unwrap();
        let check = |value: serde_json::Value| {
            normalize_values(&alert.manifest, Some(alert), value.as_object().unwrap())
        };
        let bad = check(json!({"Trigger": "msg.Temperature >", "AlertType": "Hot"})).unwrap_err();
        assert_eq!(bad.code, "invalid_trigger");
        assert!(bad.message.contains("cannot be parsed"), "{}", bad.message);
        assert!(check(json!({"Trigger": "msg.Temperature > 50", "AlertType": "Hot"})).is_ok());

        let webhook = builtin_by_name("webhook").unwrap();
        let check = |value: serde_json::Value| {
            normalize_values(&webhook.manifest, Some(webhook), value.as_object().unwrap())
        };
        assert_eq!(
            check(json!({"Url": "ftp://example.com"})).unwrap_err().code,
            "invalid_url"
        );
        assert_eq!(
            check(json!({"Url": "http://127.0.0.1:9/x", "Headers": "[1]"}))
                .unwrap_err()
                .code,
            "invalid_headers"
        );
        let values =
            check(json!({"Url": "http://127.0.0.1:9/x", "Headers": {"X-Key": "k"}})).unwrap();
        assert_eq!(values["Headers"], r#"{"X-Key":"k"}"#);
    }
}
