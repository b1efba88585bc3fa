//! filter: passes on, unchanged, the JSON messages whose `Field` equals `Equals`.

use messagehandler_sdk::{export_handler, push, Config, Handler, Message, Output};
use serde_json::Value;

struct Filter {
    field: String,
    equals: String,
    subject: String,
}

/// Whether `body` has `field` (dot-separated for nested objects) equal to `equals`: strings by
/// their text, other values by the JSON value `equals` spells, since configuration values are
/// text (`2` matches the number 2, `true` the boolean).
pub fn matches(body: &Value, field: &str, equals: &str) -> bool {
    let found = field
        .split('.')
        .try_fold(body, |value, name| value.get(name));
    match found {
        Some(Value::String(text)) => text == equals,
        Some(Value::Null) | None => false,
        Some(other) => equals.parse::<Value>().is_ok_and(|wanted| wanted == *other),
    }
}

impl Handler for Filter {
    fn init(config: Config) -> Result<Self, String> {
        Ok(Filter {
            field: config.require("Field")?.to_string(),
            equals: config.require("Equals")?.to_string(),
            subject: config
                .get("OutputSubject")
                .unwrap_or("Filtered")
                .to_string(),
        })
    }

    fn handle(&mut self, batch: Vec<Message>) -> Result<(), String> {
        for message in batch {
            // The handler sees its own output too; passing it on again would loop.
            if message.subject == self.subject || !message.is_json() {
                continue;
            }
            let pass = message
                .json::<Value>()
                .is_ok_and(|body| matches(&body, &self.field, &self.equals));
            if pass {
                push(Output::forward(&self.subject, &message))?;
            }
        }
        Ok(())
    }
}

export_handler!(Filter);

#[cfg(test)]
mod tests {
    use super::matches;
    use serde_json::json;

    #[test]
    fn fields_compare_by_text() {
        let body = json!({"Site": "north", "Floor": 2, "Alarm": true, "Device": {"Kind": "probe"}});
        assert!(matches(&body, "Site", "north"));
        assert!(!matches(&body, "Site", "south"));
        assert!(matches(&body, "Floor", "2"));
        assert!(matches(&body, "Alarm", "true"));
        assert!(matches(&body, "Device.Kind", "probe"));
        assert!(!matches(&body, "Device.Missing", "probe"));
        assert!(!matches(&body, "Missing", ""));
        assert!(!matches(&json!([1]), "Site", "north"));
    }
}
