//! Webhook: matching messages are POSTed to an `http(s)` URL.

use std::time::Duration;

use mh_log::Envelope;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::StatusCode;

use crate::runtime::{json_path, Effects, Matcher};
use crate::template;

/// Tries per message before the batch fails (and the runner's own retries take over).
const ATTEMPTS: u32 = 3;
/// First pause between tries; doubles after each.
const BACKOFF: Duration = Duration::from_millis(250);

pub(crate) struct Webhook {
    pub matcher: Matcher,
    pub client: reqwest::Client,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    /// `{{ message.Field }}` template; `None` posts the message body as received.
    pub body: Option<String>,
}

impl Webhook {
    pub async fn handle(
        &mut self,
        batch: &[Envelope],
        effects: &mut Effects,
    ) -> Result<(), String> {
        for message in batch {
            let Some(json) = self.matcher.matches(message, effects) else {
                continue;
            };
            let (body, content_type) = match &self.body {
                None => (
                    message.body.to_vec(),
                    message
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "application/octet-stream".to_string()),
                ),
                Some(body) => {
                    let text = template::render(body, |path| fill(&json, path))
                        .map_err(|e| format!("the webhook body cannot be built: {e}"))?;
                    let content_type = if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
                        "application/json"
                    } else {
                        "text/plain; charset=utf-8"
                    };
                    (text.into_bytes(), content_type.to_string())
                }
            };
            self.post(body, &content_type).await?;
        }
        Ok(())
    }

    async fn post(&self, body: Vec<u8>, content_type: &str) -> Result<(), String> {
        let mut pause = BACKOFF;
        let mut last_error = String::new();
        for attempt in 1..=ATTEMPTS {
            let request = self
                .client
                .post(self.url.clone())
                .headers(self.headers.clone())
                .header(CONTENT_TYPE, content_type)
                .body(body.clone());
            match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    last_error = format!("the webhook {} answered {status}", self.url);
                    if !retryable(status) {
                        break;
                    }
                }
                Err(error) => {
                    last_error = format!("the webhook {} could not be reached: {error}", self.url);
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        Err(last_error)
    }
}

/// Client errors other than timeouts and rate limits will answer the same on a retry.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
}

/// The text of `message.Path` in the message: strings as they are, anything else as JSON.
fn fill(message: &serde_json::Value, path: &str) -> Result<String, String> {
    let field = path
        .strip_prefix("message.")
        .or_else(|| path.strip_prefix("msg."))
        .ok_or_else(|| {
            "webhook bodies can use {{ message.Field }} placeholders only".to_string()
        })?;
    match json_path(message, field) {
        Some(serde_json::Value::String(text)) => Ok(text.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(format!("the message has no field {field}")),
    }
}
