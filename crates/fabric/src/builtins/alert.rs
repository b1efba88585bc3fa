//! Generate Alert: `{Type, Trigger, Message, Who, When}` for every matching message.

use bytes::Bytes;
use mh_log::Envelope;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::runtime::{Effects, Matcher, Output};

pub(crate) struct GenerateAlert {
    pub matcher: Matcher,
    pub alert_type: String,
    pub subject: String,
}

impl GenerateAlert {
    pub fn handle(&mut self, batch: &[Envelope], effects: &mut Effects) -> Result<(), String> {
        for message in batch {
            let Some(body) = self.matcher.matches(message, effects) else {
                continue;
            };
            // Who: the device when the message came from one, else its endpoint.
            let who = message
                .device
                .clone()
                .or_else(|| message.endpoint.map(|e| e.to_string()))
                .unwrap_or_default();
            let when = OffsetDateTime::now_utc()
                .format(&Rfc3339)
                .map_err(|e| format!("cannot format the alert time: {e}"))?;
            let alert = json!({
                "Type": self.alert_type,
                "Trigger": self.matcher.expression(),
                "Message": body,
                "Who": who,
                "When": when,
            });
            let body =
                serde_json::to_vec(&alert).map_err(|e| format!("cannot encode the alert: {e}"))?;
            effects.outputs.push(Output {
                subject: self.subject.clone(),
                properties: Default::default(),
                content_type: Some("application/json".to_string()),
                body: Bytes::from(body),
                partition_key: message.partition_key.clone(),
            });
        }
        Ok(())
    }
}
