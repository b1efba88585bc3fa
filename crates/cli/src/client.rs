//! The API client behind every client command (`mh definitions`, `mh package`, `mh review`, ...).
//!
//! Where to connect and as whom comes from `mh login`'s credentials file, with `MH_API_URL`,
//! `MH_CLIENT_ID` and `MH_CLIENT_SECRET` taking precedence (what CI systems set). Access tokens are
//! fetched on first use, renewed before they expire with the refresh grant (falling back to the
//! client credentials grant), and renewed once more if the server still answers 401. Server
//! errors become [`ClientError::Api`], shown as `<message> (<status> <code>)`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;
use tokio::sync::Mutex;

/// File name of the credentials inside the configuration directory.
const CREDENTIALS_FILE: &str = "credentials.toml";
/// Renew a token this long before it expires, so that a request never carries a stale one.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{message} ({status} {code})")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach the API at {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What `mh login` stores.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// `MH_CLIENT_CONFIG`, else `$XDG_CONFIG_HOME/messagehandler/credentials.toml`, else
/// `~/.config/messagehandler/credentials.toml`.
pub fn credentials_path() -> Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(path) = non_empty("MH_CLIENT_CONFIG") {
        return Ok(PathBuf::from(path));
    }
    let config_dir = match non_empty("XDG_CONFIG_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => non_empty("HOME")
            .map(|home| PathBuf::from(home).join(".config"))
            .ok_or_else(|| {
                ClientError::Config(
                    "cannot find a configuration directory: set HOME, XDG_CONFIG_HOME or MH_CLIENT_CONFIG".into(),
                )
            })?,
    };
    Ok(config_dir.join("messagehandler").join(CREDENTIALS_FILE))
}

impl Settings {
    fn read(path: &Path) -> Result<Settings> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| {
                ClientError::Config(format!(
                    "{} is not a valid credentials file: {e}",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(ClientError::File {
                action: "read",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The stored settings with the environment's on top.
    pub fn load() -> Result<Settings> {
        let stored = Settings::read(&credentials_path()?)?;
        let env = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        Ok(Settings {
            url: env("MH_API_URL").or(stored.url),
            client_id: env("MH_CLIENT_ID").or(stored.client_id),
            client_secret: env("MH_CLIENT_SECRET").or(stored.client_secret),
        })
    }

    /// Writes the settings readable by the owner only: the file holds a client secret.
    pub fn save(&self, path: &Path) -> Result<()> {
        let file_error = |action, source| ClientError::File {
            action,
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| file_error("create the directory of", e))?;
        }
        let text = toml::to_string(self)
            .map_err(|e| ClientError::Config(format!("cannot encode the credentials: {e}")))?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| file_error("write", e))?;
        // `mode` applies to new files only; an existing file may have been wider.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(|e| file_error("restrict the permissions of", e))?;
        }
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(|e| file_error("write", e))
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
    refresh_token: Option<String>,
}

struct Token {
    access: String,
    refresh: Option<String>,
    renew_at: Instant,
}

/// An authenticated connection to one API.
pub struct Client {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: String,
    token: Mutex<Option<Token>>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    message: Option<String>,
    error_description: Option<String>,
}

/// Turns a non-success response into [`ClientError::Api`], keeping the server's words.
async fn api_error(response: Response) -> ClientError {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => ClientError::Api {
            status: status.as_u16(),
            code: body.error,
            message: body
                .message
                .or(body.error_description)
                .unwrap_or_else(|| status.to_string()),
        },
        Err(_) => ClientError::Api {
            status: status.as_u16(),
            code: status
                .canonical_reason()
                .unwrap_or("error")
                .to_ascii_lowercase()
                .replace(' ', "_"),
            message: if text.trim().is_empty() {
                format!("the server answered {status}")
            } else {
                text.trim().to_string()
            },
        },
    }
}

impl Client {
    /// A client from the credentials file and the environment.
    pub fn from_settings(settings: Settings) -> Result<Client> {
        let missing = |what: &str, variable: &str| {
            ClientError::Config(format!("no {what}: run `mh login` or set {variable}"))
        };
        let url = settings
            .url
            .ok_or_else(|| missing("API URL", "MH_API_URL"))?;
        let client_id = settings
            .client_id
            .ok_or_else(|| missing("client id", "MH_CLIENT_ID"))?;
        let client_secret = settings
            .client_secret
            .ok_or_else(|| missing("client secret", "MH_CLIENT_SECRET"))?;
        Client::new(&url, client_id, client_secret)
    }

    pub fn from_environment() -> Result<Client> {
        Client::from_settings(Settings::load()?)
    }

    pub fn new(url: &str, client_id: String, client_secret: String) -> Result<Client> {
        let url = url.trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ClientError::Config(format!(
                "the API URL {url:?} must start with http:// or https://"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| ClientError::Http {
                url: url.clone(),
                source,
            })?;
        Ok(Client {
            http,
            url,
            client_id,
            client_secret,
            token: Mutex::new(None),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn http_error(&self, source: reqwest::Error) -> ClientError {
        ClientError::Http {
            url: self.url.clone(),
            source,
        }
    }

    async fn request_token(&self, refresh: Option<&str>) -> Result<Token> {
        let mut body = serde_json::json!({
            "grant_type": if refresh.is_some() { "refresh_token" } else { "client_credentials" },
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        });
        if let Some(refresh) = refresh {
            body["refresh_token"] = Value::String(refresh.to_string());
        }
        let response = self
            .http
            .post(format!("{}/authorize", self.url))
            .json(&body)
            .send()
            .await
            .map_err(|e| self.http_error(e))?;
        if !response.status().is_success() {
            return Err(api_error(response).await);
        }
        let token: TokenResponse = response.json().await.map_err(|e| self.http_error(e))?;
        let lifetime = Duration::from_secs(token.expires_in);
        Ok(Token {
            access: token.access_token,
            refresh: token.refresh_token,
            renew_at: Instant::now() + lifetime.saturating_sub(EXPIRY_MARGIN),
        })
    }

    /// A valid access token: the cached one, a refreshed one, or a new one.
    async fn access_token(&self, force_new: bool) -> Result<String> {
        let mut slot = self.token.lock().await;
        if let Some(token) = slot.as_ref() {
            if !force_new && Instant::now() < token.renew_at {
                return Ok(token.access.clone());
            }
        }
        let refresh = slot.as_ref().and_then(|token| token.refresh.clone());
        let token = match refresh {
            // A refresh token can be spent or expired; the client credentials still work then.
            Some(refresh) => match self.request_token(Some(&refresh)).await {
                Ok(token) => token,
                Err(_) => self.request_token(None).await?,
            },
            None => self.request_token(None).await?,
        };
        let access = token.access.clone();
        *slot = Some(token);
        Ok(access)
    }

    /// Sends the request built by `build` with a bearer token, once more with a new token if the
    /// server answers 401, and turns error answers into [`ClientError::Api`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let url = format!("{}{}", self.url, path);
        let mut retried = false;
        loop {
            let token = self.access_token(retried).await?;
            let request = build(self.http.request(method.clone(), &url)).bearer_auth(token);
            let response = request.send().await.map_err(|e| self.http_error(e))?;
            if response.status() == StatusCode::UNAUTHORIZED && !retried {
                retried = true;
                continue;
            }
            if !response.status().is_success() {
                return Err(api_error(response).await);
            }
            return Ok(response);
        }
    }

    async fn json<T: DeserializeOwned>(&self, response: Response) -> Result<T> {
        response.json().await.map_err(|e| self.http_error(e))
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self.send(Method::GET, path, |r| r).await?;
        self.json(response).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let response = self.send(Method::POST, path, |r| r.json(body)).await?;
        self.json(response).await
    }
}

#[derive(clap::Args)]
pub struct LoginCommand {
    /// Base URL of the API, e.g. https://api.example.com.
    #[arg(long)]
    url: String,
    #[arg(long)]
    client_id: String,
    /// Secrets are base64url and may begin with '-', which must not read as a flag.
    #[arg(long, allow_hyphen_values = true)]
    client_secret: String,
}

/// `mh login`: checks the credentials against the server, then stores them.
pub async fn login(command: LoginCommand) -> anyhow::Result<()> {
    let client = Client::new(
        &command.url,
        command.client_id.clone(),
        command.client_secret.clone(),
    )?;
    let account: Value = client.get("/accounts/me").await?;
    let path = credentials_path()?;
    Settings {
        url: Some(client.url().to_string()),
        client_id: Some(command.client_id),
        client_secret: Some(command.client_secret),
    }
    .save(&path)?;
    eprintln!(
        "logged in to {} as account {}; credentials stored in {}",
        client.url(),
        account["name"].as_str().unwrap_or("?"),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_beginning_with_a_hyphen_is_a_value() {
        use clap::Parser;
        #[derive(Parser)]
        struct Login {
            #[command(flatten)]
            command: LoginCommand,
        }
        let parsed = Login::try_parse_from([
            "mh",
            "--url",
            "http://localhost:1",
            "--client-id",
            "id",
            "--client-secret",
            "-Pa_b",
        ])
        .unwrap();
        assert_eq!(parsed.command.client_secret, "-Pa_b");
    }

    #[test]
    fn saved_credentials_are_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(CREDENTIALS_FILE);
        let settings = Settings {
            url: Some("http://localhost:1".into()),
            client_id: Some("id".into()),
            client_secret: Some("secret".into()),
        };
        settings.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = Settings::read(&path).unwrap();
        assert_eq!(read.client_secret.as_deref(), Some("secret"));
        assert!(Settings::read(&dir.path().join("missing"))
            .unwrap()
            .url
            .is_none());
    }
}
