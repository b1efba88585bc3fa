//! Built-in handlers: native code owned by the system account, always `Accepted`, listed in the
//! gallery next to the public WebAssembly definitions and configured like them.
//!
//! - **Generate Alert** pushes `{Type, Trigger, Message, Who, When}` for each message matching its
//!   trigger.
//! - **Forward to endpoint** (the endpoint router) puts matching messages into an endpoint's inbox,
//!   only while that endpoint holds an outbound route for the channel and environment.
//! - **Webhook** POSTs matching messages to an `http(s)` URL, with retries and a time limit.

mod alert;
mod forward;
mod webhook;

use std::sync::LazyLock;

use mh_package::{ConfigurationField, FieldType, Manifest};
use uuid::Uuid;

pub(crate) use alert::GenerateAlert;
pub(crate) use forward::ForwardToEndpoint;
pub(crate) use webhook::Webhook;

/// The account that owns the built-ins. It is not a row in the store: nobody can sign in as it.
pub const SYSTEM_ACCOUNT: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0001);
pub const SYSTEM_ACCOUNT_NAME: &str = "system";
/// Built-ins have one version; it changes only if their configuration fields ever change.
pub const BUILTIN_VERSION: &str = "1.0.0";
/// `Manifest::runtime` of the built-ins.
pub const RUNTIME_BUILTIN: &str = "builtin";

/// Which native implementation a built-in definition stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinKind {
    GenerateAlert,
    ForwardToEndpoint,
    Webhook,
}

/// What a configuration value of a built-in means beyond its type; checked when the handler is
/// configured (and again once templates are filled at deployment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldRole {
    Plain,
    /// A CEL expression over the message.
    Trigger,
    /// An `http` or `https` URL.
    Url,
    /// A JSON object of header names to values.
    Headers,
    /// An endpoint identifier of the configuring account.
    Endpoint,
    /// A device id behind that endpoint.
    Device,
    /// A template filled per message: `{{ message.Field }}` stays for run time, only
    /// `{{ variables.Name }}` is filled at deployment.
    MessageTemplate,
}

/// One built-in definition.
#[derive(Debug)]
pub struct Builtin {
    pub id: Uuid,
    pub kind: BuiltinKind,
    pub manifest: Manifest,
    roles: Vec<(&'static str, FieldRole)>,
}

impl Builtin {
    pub(crate) fn role(&self, field: &str) -> FieldRole {
        self.roles
            .iter()
            .find(|(name, _)| *name == field)
            .map_or(FieldRole::Plain, |(_, role)| *role)
    }
}

fn field(
    name: &str,
    required: bool,
    default: Option<&str>,
    output_subject: bool,
    description: &str,
) -> ConfigurationField {
    ConfigurationField {
        name: name.to_string(),
        field_type: FieldType::String,
        required,
        default: default.map(str::to_string),
        description: description.to_string(),
        output_subject,
    }
}

fn trigger_field(default: Option<&str>) -> ConfigurationField {
    field(
        "Trigger",
        default.is_none(),
        default,
        false,
        "CEL expression over the message (msg or message), channel, environment and variables, e.g. msg.Temperature > 50",
    )
}

fn manifest(
    name: &str,
    description: &str,
    output_subjects: &[&str],
    configuration: Vec<ConfigurationField>,
) -> Manifest {
    Manifest {
        name: name.to_string(),
        description: description.to_string(),
        runtime: RUNTIME_BUILTIN.to_string(),
        runtime_version: BUILTIN_VERSION.to_string(),
        component: String::new(),
        output_subjects: output_subjects.iter().map(|s| s.to_string()).collect(),
        configuration,
    }
}

static BUILTINS: LazyLock<Vec<Builtin>> = LazyLock::new(|| {
    vec![
        Builtin {
            id: Uuid::from_u128(0x6d68_0000_0000_4000_8000_0000_0000_0a1e),
            kind: BuiltinKind::GenerateAlert,
            manifest: manifest(
                "Generate Alert",
                "Raises an alert {Type, Trigger, Message, Who, When} for every message that matches the trigger",
                &["Alert"],
                vec![
                    trigger_field(None),
                    field("AlertType", true, None, false, "The alert's Type, e.g. TemperatureOutOfRange"),
                    field("OutputSubject", false, Some("Alert"), true, "Subject the alerts are pushed with"),
                ],
            ),
            roles: vec![("Trigger", FieldRole::Trigger)],
        },
        Builtin {
            id: Uuid::from_u128(0x6d68_0000_0000_4000_8000_0000_0000_0f0e),
            kind: BuiltinKind::ForwardToEndpoint,
            manifest: manifest(
                "Forward to endpoint",
                "Puts the messages that match the trigger into an endpoint's inbox; the endpoint needs an outbound route for the channel and environment",
                &[],
                vec![
                    trigger_field(Some("true")),
                    field("Endpoint", true, None, false, "Identifier of the endpoint whose inbox receives the messages"),
                    field("Device", false, None, false, "Only this device of the endpoint receives them; empty: any receiver"),
                ],
            ),
            roles: vec![
                ("Trigger", FieldRole::Trigger),
                ("Endpoint", FieldRole::Endpoint),
                ("Device", FieldRole::Device),
            ],
        },
        Builtin {
            id: Uuid::from_u128(0x6d68_0000_0000_4000_8000_0000_0000_0eb0),
            kind: BuiltinKind::Webhook,
            manifest: manifest(
                "Webhook",
                "POSTs the messages that match the trigger to an http(s) URL, with retries",
                &[],
                vec![
                    trigger_field(Some("true")),
                    field("Url", true, None, false, "http:// or https:// URL the messages are posted to"),
                    field("Headers", false, None, false, "JSON object of extra request headers, e.g. {\"X-Api-Key\": \"{{ variables.ApiKey }}\"}"),
                    field("Body", false, None, false, "Body template with {{ message.Field }} placeholders; empty: the message body as received"),
                ],
            ),
            roles: vec![
                ("Trigger", FieldRole::Trigger),
                ("Url", FieldRole::Url),
                ("Headers", FieldRole::Headers),
                ("Body", FieldRole::MessageTemplate),
            ],
        },
    ]
});

/// Every built-in, in gallery order.
pub fn builtins() -> &'static [Builtin] {
    &BUILTINS
}

/// The built-in with this definition id.
pub fn builtin(id: Uuid) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.id == id)
}

/// The built-in with this exact name (as the gallery spells it), ignoring ASCII case.
pub fn builtin_by_name(name: &str) -> Option<&'static Builtin> {
    BUILTINS
        .iter()
        .find(|b| b.manifest.name.eq_ignore_ascii_case(name))
}
