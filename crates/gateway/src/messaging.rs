//! Moving messages: ingress into channel streams along authorized inbound routes, direct
//! messages into endpoint inboxes, and egress from those inboxes.

use std::time::Duration;

use mh_log::{DeadLetter, Delivery, Envelope, StreamId};
use mh_store::Direction;
use uuid::Uuid;

use crate::{EndpointEntry, Gateway, GatewayError, Principal, ResolvedRoute, Result};

/// Largest `max` of one receive or read.
pub const MAX_BATCH: usize = 1000;

/// Narrows ingress to some of the endpoint's inbound routes (`x-mh-channel`,
/// `x-mh-environment`: identifier or name).
#[derive(Debug, Default, Clone)]
pub struct RouteSelector {
    pub channel: Option<String>,
    pub environment: Option<String>,
}

/// Where messages went: one entry per route, ids in input order.
#[derive(Debug, Clone)]
pub struct RouteReceipt {
    pub channel: Uuid,
    pub environment: Uuid,
    pub ids: Vec<Uuid>,
}

#[derive(Debug, Clone)]
pub struct IngestReceipt {
    pub routes: Vec<RouteReceipt>,
}

fn matches(reference: &Option<String>, id: Uuid, name: &str) -> bool {
    match reference {
        None => true,
        Some(reference) => reference == name || Uuid::parse_str(reference).is_ok_and(|r| r == id),
    }
}

fn require_protocol(enabled: &[String], protocol: &str, direction: &str) -> Result<()> {
    if enabled.iter().any(|p| p == protocol) {
        Ok(())
    } else {
        Err(GatewayError::forbidden(
            "protocol_not_enabled",
            format!("protocol {protocol} is not enabled for {direction} on this endpoint"),
        ))
    }
}

impl Gateway {
    /// The inbound routes a send goes to. A selector naming a route the endpoint is not
    /// authorized for is refused rather than ignored, so that a typo never drops messages.
    pub fn inbound_routes<'e>(
        &self,
        entry: &'e EndpointEntry,
        selector: &RouteSelector,
    ) -> Result<Vec<&'e ResolvedRoute>> {
        let inbound = entry.routes.iter().filter(|r| r.direction == Direction::In);
        let selected: Vec<_> = inbound
            .filter(|r| {
                matches(&selector.channel, r.channel, &r.channel_name)
                    && matches(&selector.environment, r.environment, &r.environment_name)
            })
            .collect();
        if selected.is_empty() {
            let message = match (&selector.channel, &selector.environment) {
                (None, None) => "this endpoint has no authorized inbound route".to_string(),
                (channel, environment) => format!(
                    "this endpoint is not authorized to send to channel {} in environment {}",
                    channel.as_deref().unwrap_or("(any)"),
                    environment.as_deref().unwrap_or("(any)")
                ),
            };
            return Err(GatewayError::forbidden("route_not_authorized", message));
        }
        Ok(selected)
    }

    /// Appends `messages` to every selected inbound route's stream; answers once they are durable.
    pub async fn ingest(
        &self,
        entry: &EndpointEntry,
        protocol: &str,
        principal: &Principal,
        selector: &RouteSelector,
        mut messages: Vec<Envelope>,
    ) -> Result<IngestReceipt> {
        require_protocol(&entry.endpoint.protocols_in, protocol, "ingress")?;
        let routes = self.inbound_routes(entry, selector)?;
        let device = principal.device();
        let partition_key = device.map_or_else(|| entry.endpoint.id.to_string(), str::to_string);
        for message in &mut messages {
            message.endpoint = Some(entry.endpoint.id);
            message.device = device.map(str::to_string);
            message.partition_key.clone_from(&partition_key);
        }
        let mut receipts = Vec::with_capacity(routes.len());
        for route in routes {
            let stream = StreamId::new(route.channel, route.environment);
            let ids = self.log.append(stream, messages.clone()).await?;
            receipts.push(RouteReceipt {
                channel: route.channel,
                environment: route.environment,
                ids,
            });
        }
        Ok(IngestReceipt { routes: receipts })
    }

    /// Puts messages straight into the endpoint's inbox, for one device or for any receiver.
    pub async fn deliver(
        &self,
        entry: &EndpointEntry,
        device: Option<&str>,
        mut messages: Vec<Envelope>,
    ) -> Result<Vec<Uuid>> {
        if let Some(device) = device {
            crate::validate_device_id(device)?;
            if self
                .device_state(entry.endpoint.id, device)
                .await?
                .is_none()
            {
                return Err(GatewayError::not_found(format!(
                    "device {device:?} is not registered on this endpoint"
                )));
            }
        }
        for message in &mut messages {
            message.endpoint = Some(entry.endpoint.id);
            message.device = device.map(str::to_string);
            message.partition_key =
                device.map_or_else(|| entry.endpoint.id.to_string(), str::to_string);
        }
        Ok(self.inboxes.enqueue(entry.endpoint.id, messages).await?)
    }

    /// Receives up to `max` messages for `principal` (a device gets its own and undirected ones),
    /// long-polling up to `wait` (capped by the configured maximum).
    pub async fn receive(
        &self,
        entry: &EndpointEntry,
        protocol: &str,
        principal: &Principal,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>> {
        require_protocol(&entry.endpoint.protocols_out, protocol, "egress")?;
        Ok(self
            .inboxes
            .receive(
                entry.endpoint.id,
                principal.device(),
                max.clamp(1, MAX_BATCH),
                self.config.lock_duration,
                wait.min(self.config.max_wait),
            )
            .await?)
    }

    pub async fn complete(&self, entry: &EndpointEntry, lock_token: &str) -> Result<()> {
        Ok(self.inboxes.complete(entry.endpoint.id, lock_token).await?)
    }

    /// Completes several locks in one call; the log commits them together. Answers, per token and
    /// in order, whether it was completed (`false`: unknown, expired or already used).
    pub async fn complete_many(
        &self,
        entry: &EndpointEntry,
        lock_tokens: &[String],
    ) -> Result<Vec<bool>> {
        let outcomes = futures_util::future::join_all(
            lock_tokens
                .iter()
                .map(|token| self.inboxes.complete(entry.endpoint.id, token)),
        )
        .await;
        outcomes
            .into_iter()
            .map(|outcome| match outcome {
                Ok(()) => Ok(true),
                Err(mh_log::LogError::LockLost) => Ok(false),
                Err(error) => Err(error.into()),
            })
            .collect()
    }

    pub async fn abandon(&self, entry: &EndpointEntry, lock_token: &str) -> Result<()> {
        Ok(self.inboxes.abandon(entry.endpoint.id, lock_token).await?)
    }

    pub async fn dead_letters(&self, entry: &EndpointEntry, max: usize) -> Result<Vec<DeadLetter>> {
        Ok(self
            .inboxes
            .dead_letters(entry.endpoint.id, max.clamp(1, MAX_BATCH))
            .await?)
    }

    /// Reads a channel stream without consuming it; `wait` is capped like a receive.
    pub async fn tail(
        &self,
        stream: StreamId,
        after: Option<Uuid>,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Envelope>> {
        Ok(self
            .log
            .read(
                stream,
                after,
                max.clamp(1, MAX_BATCH),
                wait.min(self.config.max_wait),
            )
            .await?)
    }
}
