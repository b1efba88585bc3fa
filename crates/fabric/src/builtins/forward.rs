//! Forward to endpoint (the endpoint router): matching messages go into an endpoint's inbox.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mh_log::{Envelope, StreamId};
use mh_store::{Direction, MetadataStore};
use uuid::Uuid;

use crate::runtime::{Effects, Matcher};

/// How long a looked-up route decision is trusted: route changes take effect within this time
/// without a store query per batch.
const ROUTE_RECHECK: Duration = Duration::from_secs(1);

pub(crate) struct ForwardToEndpoint {
    pub matcher: Matcher,
    pub endpoint: Uuid,
    pub device: Option<String>,
    pub stream: StreamId,
    pub store: Arc<dyn MetadataStore>,
    /// The last route decision and when it was made.
    pub authorized: Option<(bool, Instant)>,
}

impl ForwardToEndpoint {
    pub async fn handle(
        &mut self,
        batch: &[Envelope],
        effects: &mut Effects,
    ) -> Result<(), String> {
        let mut matched = Vec::new();
        for message in batch {
            if self.matcher.matches(message, effects).is_some() {
                matched.push(message);
            }
        }
        if matched.is_empty() {
            return Ok(());
        }
        if !self.route_authorized().await? {
            effects.log(
                "warn",
                format!(
                    "{} matching message(s) not forwarded: endpoint {} has no outbound route for this channel and environment; add one to the endpoint to receive them",
                    matched.len(),
                    self.endpoint
                ),
            );
            return Ok(());
        }
        for message in matched {
            let mut forwarded = message.clone();
            forwarded.id = Uuid::nil();
            forwarded.idempotency_key = None;
            forwarded.endpoint = Some(self.endpoint);
            forwarded.device.clone_from(&self.device);
            if let Some(device) = &self.device {
                forwarded.partition_key.clone_from(device);
            }
            effects.deliveries.push((self.endpoint, forwarded));
        }
        Ok(())
    }

    async fn route_authorized(&mut self) -> Result<bool, String> {
        if let Some((authorized, at)) = self.authorized {
            if at.elapsed() < ROUTE_RECHECK {
                return Ok(authorized);
            }
        }
        let endpoint = self
            .store
            .endpoint(self.endpoint)
            .await
            .map_err(|e| format!("cannot look up endpoint {}: {e}", self.endpoint))?;
        let authorized = endpoint.is_some_and(|endpoint| {
            endpoint.routes.iter().any(|route| {
                route.direction == Direction::Out
                    && route.channel_id == self.stream.channel
                    && route.environment_id == self.stream.environment
            })
        });
        self.authorized = Some((authorized, Instant::now()));
        Ok(authorized)
    }
}
