//! Handler state: one `meta` key per state key of a consumer (`keys::state`), written by the
//! writer in the same engine batch as the consumer's checkpoint, so one commit makes both
//! durable or neither.

use std::collections::BTreeMap;

use async_trait::async_trait;
use uuid::Uuid;

use super::writer::Op;
use super::{keys, EmbeddedLog};
use crate::{HandlerStates, Result, StreamId};

#[async_trait]
impl HandlerStates for EmbeddedLog {
    fn state(&self, stream: StreamId, consumer: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let k = keys::state(&stream, consumer, key)?;
        Ok(self.shared.ks.meta.get(k)?.map(|v| v.to_vec()))
    }

    async fn commit(
        &self,
        stream: StreamId,
        consumer: &str,
        position: Option<Uuid>,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<()> {
        keys::check_consumer(consumer)?;
        // One engine batch must not hold the same key twice (no defined winner), and the
        // caller expects the last write of a key to count: collapse here.
        let mut collapsed = BTreeMap::new();
        for (key, value) in writes {
            collapsed.insert(keys::state(&stream, consumer, &key)?, value);
        }
        if position.is_none() && collapsed.is_empty() {
            return Ok(());
        }
        let consumer = consumer.to_owned();
        self.call(|reply| Op::CommitState {
            stream,
            consumer,
            position,
            writes: collapsed.into_iter().collect(),
            reply,
        })
        .await
    }

    async fn forget_consumer(&self, stream: StreamId, consumer: &str) -> Result<()> {
        keys::check_consumer(consumer)?;
        let consumer = consumer.to_owned();
        self.call(|reply| Op::ForgetConsumer {
            stream,
            consumer,
            reply,
        })
        .await
    }
}
