//! `mh definitions`, `mh package` and `mh review`: handler development from a terminal or a CI job.
//! Every command prints the server's JSON answer on stdout; progress goes to stderr.

use std::io::IsTerminal;
use std::path::PathBuf;

use bytes_stream::chunks;
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Client;

#[derive(Subcommand)]
pub enum DefinitionsCommand {
    /// Create a handler definition; prints it with its new identifier.
    Create {
        name: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List every uploaded version of your definitions.
    List,
    /// Show a definition with all its versions.
    Show { id: String },
    /// Make an accepted version the one used by default.
    Activate { id: String, version: String },
}

#[derive(Subcommand)]
pub enum PackageCommand {
    /// Build a handler crate for wasm32-wasip2 and package it with its handler.toml (a zip).
    Build(crate::package_build::BuildCommand),
    /// Upload a package (a zip, or a directory zipped on the fly) as a new version.
    Push {
        definition_id: String,
        version: String,
        /// A .zip file, or a directory with handler.toml at its root.
        path: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Versions waiting for review, oldest first (reviewer accounts).
    List,
    /// Accept a version.
    Accept {
        id: String,
        version: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Reject a version.
    Reject {
        id: String,
        version: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
}

fn print(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn definitions(command: DefinitionsCommand) -> anyhow::Result<()> {
    let client = Client::from_environment()?;
    let answer: Value = match command {
        DefinitionsCommand::Create { name, description } => {
            client
                .post(
                    "/handlers/definitions",
                    &json!({"name": name, "description": description}),
                )
                .await?
        }
        DefinitionsCommand::List => client.get("/handlers/definitions").await?,
        DefinitionsCommand::Show { id } => {
            client.get(&format!("/handlers/definitions/{id}")).await?
        }
        DefinitionsCommand::Activate { id, version } => {
            client
                .post(
                    &format!("/handlers/definitions/{id}/activate"),
                    &json!({"version": version}),
                )
                .await?
        }
    };
    print(&answer)
}

pub async fn review(command: ReviewCommand) -> anyhow::Result<()> {
    let client = Client::from_environment()?;
    let (id, version, decision, comment) = match command {
        ReviewCommand::List => return print(&client.get::<Value>("/reviews").await?),
        ReviewCommand::Accept {
            id,
            version,
            comment,
        } => (id, version, "accept", comment),
        ReviewCommand::Reject {
            id,
            version,
            comment,
        } => (id, version, "reject", comment),
    };
    let answer: Value = client
        .post(
            &format!("/handlers/definitions/{id}/{version}/review"),
            &json!({"decision": decision, "comment": comment}),
        )
        .await?;
    print(&answer)
}

pub async fn package(command: PackageCommand) -> anyhow::Result<()> {
    let (definition_id, version, path) = match command {
        PackageCommand::Build(command) => return crate::package_build::run(command).await,
        PackageCommand::Push {
            definition_id,
            version,
            path,
        } => (definition_id, version, path),
    };
    let bytes = if path.is_dir() {
        mh_package::zip_directory(&path)?
    } else {
        std::fs::read(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?
    };
    let client = Client::from_environment()?;
    let total = bytes.len() as u64;
    let route = format!("/handlers/definitions/{definition_id}/{version}/package");

    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(format!("uploading {version}"));
        Some(bar)
    } else {
        eprintln!(
            "uploading {} ({total} bytes) as version {version} of {definition_id} to {}",
            path.display(),
            client.url()
        );
        None
    };
    let result = client
        .send(Method::POST, &route, |request| {
            let body = reqwest::Body::wrap_stream(chunks(bytes.clone(), progress.clone()));
            request
                .header(reqwest::header::CONTENT_TYPE, "application/zip")
                .header(reqwest::header::CONTENT_LENGTH, total)
                .body(body)
        })
        .await;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let answer: Value = result?.json().await?;
    eprintln!(
        "uploaded version {} of {definition_id}: {}",
        answer["version"].as_str().unwrap_or(&version),
        answer["status"].as_str().unwrap_or("?")
    );
    print(&answer)
}

/// The upload body as a stream of chunks, so that the progress bar follows what was sent.
mod bytes_stream {
    use futures_util::stream::{self, Stream};
    use indicatif::ProgressBar;

    const CHUNK: usize = 64 * 1024;

    pub fn chunks(
        bytes: Vec<u8>,
        progress: Option<ProgressBar>,
    ) -> impl Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
        let pieces: Vec<Vec<u8>> = bytes.chunks(CHUNK).map(<[u8]>::to_vec).collect();
        stream::iter(pieces.into_iter().map(move |piece| {
            if let Some(bar) = &progress {
                bar.inc(piece.len() as u64);
            }
            Ok(piece)
        }))
    }
}
