//! A small JSON-over-HTTP client for setting scenarios up (accounts, channels, endpoints, devices)
//! and for the inbox consumer; the load itself comes from the load-generator process.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    pub fn new(base: &str) -> Self {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.to_string(),
        }
    }

    /// Sends a request and returns the status and the body's bytes.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::from(body)))?)
            .await
            .with_context(|| format!("request to {path}"))?;
        let status = response.status().as_u16();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }

    /// Sends a request and returns the status and the JSON body (`Null` when there is none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<(u16, Value)> {
        let (status, bytes) = self.raw(method, path, headers, body).await?;
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, json))
    }

    /// Like [`Http::call`] with a JSON body, failing unless the status is 2xx.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        bearer: &str,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let authorization = format!("Bearer {bearer}");
        let (status, answer) = self
            .call(
                method,
                path,
                &[
                    ("Authorization", &authorization),
                    ("Content-Type", "application/json"),
                ],
                serde_json::to_vec(body)?,
            )
            .await?;
        anyhow::ensure!(
            (200..300).contains(&status),
            "{path} answered {status}: {answer}"
        );
        Ok(answer)
    }
}
