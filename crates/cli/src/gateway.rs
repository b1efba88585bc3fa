//! Trying the gateway by hand: `mh send`, `mh receive`, `mh device register`, `mh tail`.
//!
//! `send` and `receive` act as a device or system when given `--token` (a device token or a
//! shared access signature, e.g. from `MH_GATEWAY_TOKEN`), and as the account of `mh login`
//! otherwise. `tail` always acts as the account; `device register` needs no credentials.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

use crate::client::{Client, Settings};

/// Where to connect and how to authenticate a data-plane request.
#[derive(Args)]
pub struct Connection {
    /// Base URL of the server [default: from `mh login` or MH_API_URL].
    #[arg(long, env = "MH_API_URL")]
    url: Option<String>,
    /// A device token or a `SharedAccessSignature ...`; without it the `mh login` account is used.
    #[arg(long, env = "MH_GATEWAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Args)]
pub struct SendCommand {
    /// Endpoint identifier.
    endpoint: String,
    /// The message; read from --file or standard input when absent.
    #[arg(long, conflicts_with = "file")]
    data: Option<String>,
    #[arg(long)]
    file: Option<PathBuf>,
    /// A JSON array sent as application/json is a batch of messages.
    #[arg(long, default_value = "application/json")]
    content_type: String,
    /// Only this channel of the endpoint's inbound routes (identifier or name).
    #[arg(long)]
    channel: Option<String>,
    /// Only this environment (identifier or name).
    #[arg(long)]
    environment: Option<String>,
    /// NAME=VALUE, sent as x-mh-property-NAME; repeatable.
    #[arg(long = "property", value_parser = parse_property)]
    properties: Vec<(String, String)>,
    /// Idempotency key: resending with the same key stores nothing new.
    #[arg(long)]
    message_id: Option<String>,
    /// Put the message into the endpoint's inbox for this device instead (account only).
    #[arg(long)]
    to_device: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Args)]
pub struct ReceiveCommand {
    /// Endpoint identifier.
    endpoint: String,
    #[arg(long, default_value_t = 10)]
    max: usize,
    /// Seconds to wait when the inbox is empty.
    #[arg(long, default_value_t = 10)]
    wait: u64,
    /// Complete each received message (otherwise its lock simply expires).
    #[arg(long)]
    complete: bool,
    #[command(flatten)]
    connection: Connection,
}

#[derive(Subcommand)]
pub enum DeviceCommand {
    /// Register a device behind an endpoint (or refresh its token); prints the device token.
    Register {
        endpoint: String,
        device: String,
        /// base64(HMAC-SHA256(enrollment key, device id)), for the `key` policy.
        #[arg(long, conflicts_with = "enrollment_key")]
        key_proof: Option<String>,
        /// The endpoint's enrollment key; the proof is computed from it.
        #[arg(long, env = "MH_ENROLLMENT_KEY", hide_env_values = true)]
        enrollment_key: Option<String>,
        /// The device's current token, to refresh it.
        #[arg(long, env = "MH_GATEWAY_TOKEN", hide_env_values = true)]
        token: Option<String>,
        #[arg(long, env = "MH_API_URL")]
        url: Option<String>,
    },
}

#[derive(Args)]
pub struct TailCommand {
    /// Channel identifier or name.
    channel: String,
    /// Environment identifier or name.
    #[arg(long, default_value = "local")]
    environment: String,
    /// Start after this message id (default: from the beginning).
    #[arg(long)]
    after: Option<String>,
    /// Stop after printing the messages there are now, instead of following.
    #[arg(long)]
    no_follow: bool,
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

fn base_url(explicit: Option<String>) -> anyhow::Result<String> {
    match explicit.or(Settings::load()?.url) {
        Some(url) => Ok(url.trim_end_matches('/').to_string()),
        None => bail!("no server URL: pass --url, set MH_API_URL or run `mh login`"),
    }
}

fn authorization(token: &str) -> String {
    if token.starts_with("SharedAccessSignature ") {
        token.to_string()
    } else {
        format!("Bearer {token}")
    }
}

/// Sends one request with `--token` credentials, or as the logged-in account.
async fn request(
    connection: Connection,
    method: Method,
    path: &str,
    build: impl Fn(RequestBuilder) -> RequestBuilder,
) -> anyhow::Result<Value> {
    let response = match connection.token {
        Some(token) => {
            let url = format!("{}{path}", base_url(connection.url)?);
            let request = reqwest::Client::new()
                .request(method, &url)
                .header("authorization", authorization(&token));
            let response = build(request)
                .send()
                .await
                .with_context(|| format!("cannot reach {url}"))?;
            checked(response).await?
        }
        None => {
            let mut settings = Settings::load()?;
            settings.url = connection.url.or(settings.url);
            Client::from_settings(settings)?
                .send(method, path, build)
                .await?
        }
    };
    json(response).await
}

async fn checked(response: Response) -> anyhow::Result<Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    bail!(
        "{} ({} {})",
        body["message"].as_str().unwrap_or("request failed"),
        status.as_u16(),
        body["error"].as_str().unwrap_or("error")
    )
}

async fn json(response: Response) -> anyhow::Result<Value> {
    if response.status() == reqwest::StatusCode::NO_CONTENT {
        return Ok(Value::Null);
    }
    response.json().await.context("the server answered no JSON")
}

fn print(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

pub async fn send(command: SendCommand) -> anyhow::Result<()> {
    let body = match (&command.data, &command.file) {
        (Some(data), _) => data.clone().into_bytes(),
        (None, Some(path)) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        (None, None) => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
            bytes
        }
    };
    let path = match &command.to_device {
        Some(_) => format!("/endpoints/{}/inbox", command.endpoint),
        None => format!("/endpoints/{}/messages", command.endpoint),
    };
    let build = |request: RequestBuilder| {
        let mut request = request
            .header("content-type", &command.content_type)
            .body(body.clone());
        let optional = [
            ("x-mh-channel", &command.channel),
            ("x-mh-environment", &command.environment),
            ("x-mh-message-id", &command.message_id),
            ("x-mh-device", &command.to_device),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                request = request.header(name, value);
            }
        }
        for (name, value) in &command.properties {
            request = request.header(format!("x-mh-property-{name}"), value);
        }
        request
    };
    let receipt = request(command.connection, Method::POST, &path, build).await?;
    print(&receipt)
}

pub async fn receive(command: ReceiveCommand) -> anyhow::Result<()> {
    let path = format!(
        "/endpoints/{}/messages?max={}&wait={}",
        command.endpoint, command.max, command.wait
    );
    let token = command.connection.token.clone();
    let url = command.connection.url.clone();
    let received = request(command.connection, Method::GET, &path, |r| r).await?;
    let messages = received["messages"].as_array().cloned().unwrap_or_default();
    for delivery in &messages {
        print(delivery)?;
        if command.complete {
            let lock = delivery["lockToken"].as_str().unwrap_or_default();
            let connection = Connection {
                url: url.clone(),
                token: token.clone(),
            };
            let path = format!("/endpoints/{}/messages/{lock}/complete", command.endpoint);
            request(connection, Method::POST, &path, |r| r).await?;
        }
    }
    Ok(())
}

pub async fn device(command: DeviceCommand) -> anyhow::Result<()> {
    let DeviceCommand::Register {
        endpoint,
        device,
        key_proof,
        enrollment_key,
        token,
        url,
    } = command;
    let proof = match (key_proof, enrollment_key) {
        (Some(proof), _) => Some(proof),
        (None, Some(key)) => {
            use base64::Engine;
            let key = base64::engine::general_purpose::STANDARD
                .decode(key.trim())
                .context("the enrollment key is not base64")?;
            Some(mh_gateway::enrollment_proof(&key, &device))
        }
        (None, None) => None,
    };
    let url = format!("{}/devices/register/{endpoint}/{device}", base_url(url)?);
    let mut request = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json")
        .header("content-type", "application/json");
    if let Some(proof) = proof {
        request = request.header("x-mh-device-key", proof);
    }
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    print(&json(checked(response).await?).await?)
}

pub async fn tail(command: TailCommand) -> anyhow::Result<()> {
    let client = Client::from_environment()?;
    let mut after = command.after;
    let wait = if command.no_follow { 0 } else { 30 };
    loop {
        let mut path = format!(
            "/channels/{}/messages?environment={}&max=1000&wait={wait}",
            command.channel, command.environment
        );
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let page: Value = client.get(&path).await?;
        let messages = page["messages"].as_array().cloned().unwrap_or_default();
        for message in &messages {
            print(message)?;
        }
        if let Some(last) = messages.last().and_then(|m| m["id"].as_str()) {
            after = Some(last.to_string());
        } else if command.no_follow {
            return Ok(());
        } else {
            // An empty page is a long poll that ran out; ask again at once, gently on errors.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
