//! Running channels from a terminal: `mh deploy`, `mh undeploy`, `mh logs`, `mh gallery`.

use std::collections::HashMap;
use std::time::Duration;

use clap::Args;
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Client;

/// Seconds one `mh logs --follow` request waits for new entries (the server caps it).
const FOLLOW_WAIT: u64 = 30;

#[derive(Args)]
pub struct DeployCommand {
    /// Channel identifier or name.
    channel: String,
    /// Environment identifier or name.
    #[arg(long, default_value = "local")]
    environment: String,
}

#[derive(Args)]
pub struct LogsCommand {
    /// Channel identifier or name.
    channel: String,
    /// Only entries of this environment (identifier or name) [default: all].
    #[arg(long)]
    environment: Option<String>,
    /// Keep printing new entries as they arrive, until interrupted.
    #[arg(long, short)]
    follow: bool,
}

fn print(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// `mh deploy`: starts (or restarts with the current configuration) the channel's handlers.
pub async fn deploy(command: DeployCommand) -> anyhow::Result<()> {
    let client = Client::from_environment()?;
    let answer: Value = client
        .post(
            &format!("/channels/{}/deployments", command.channel),
            &json!({"environment": command.environment}),
        )
        .await?;
    print(&answer)
}

/// `mh undeploy`: stops the channel's handlers in the environment.
pub async fn undeploy(command: DeployCommand) -> anyhow::Result<()> {
    let client = Client::from_environment()?;
    let path = format!(
        "/channels/{}/deployments/{}",
        command.channel, command.environment
    );
    client.send(Method::DELETE, &path, |r| r).await?;
    eprintln!(
        "channel {} undeployed from {}",
        command.channel, command.environment
    );
    Ok(())
}

/// `mh gallery`: the handlers anyone may add to a channel.
pub async fn gallery() -> anyhow::Result<()> {
    let client = Client::from_environment()?;
    print(&client.get::<Value>("/gallery/handlers").await?)
}

/// `mh logs`: prints `time level handler text` lines of the channel's log stream, oldest first.
pub async fn logs(command: LogsCommand) -> anyhow::Result<()> {
    let client = Client::from_environment()?;
    // Handler names read better than identifiers; deleted handlers keep their identifier.
    let handlers: Vec<Value> = client
        .get(&format!("/channels/{}/handlers", command.channel))
        .await?;
    let names: HashMap<String, String> = handlers
        .iter()
        .filter_map(|h| {
            Some((
                h["handlerConfigurationId"].as_str()?.to_string(),
                h["name"].as_str()?.to_string(),
            ))
        })
        .collect();
    let wait = if command.follow { FOLLOW_WAIT } else { 0 };
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/channels/{}/logs?max=1000&wait={wait}", command.channel);
        if let Some(environment) = &command.environment {
            path.push_str(&format!("&environment={environment}"));
        }
        if let Some(after) = &after {
            path.push_str(&format!("&after={after}"));
        }
        let page: Value = client.get(&path).await?;
        let entries = page["entries"].as_array().cloned().unwrap_or_default();
        for entry in &entries {
            let handler = match entry["handler"].as_str() {
                Some(id) => names.get(id).map_or(id, String::as_str),
                None => "-",
            };
            println!(
                "{} {} {} {}",
                entry["at"].as_str().unwrap_or_default(),
                entry["level"].as_str().unwrap_or_default(),
                handler,
                entry["text"].as_str().unwrap_or_default()
            );
        }
        match entries.last().and_then(|e| e["id"].as_str()) {
            Some(last) => after = Some(last.to_string()),
            None if !command.follow => return Ok(()),
            // A long poll that ran out; ask again at once (gently, should the server not wait).
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}
