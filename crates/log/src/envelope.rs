//! The message envelope and what the traits hand out, plus their compact binary encoding.

use std::collections::BTreeMap;

use bytes::Bytes;
use uuid::Uuid;

/// One message as the platform moves it.
///
/// Build one with `Envelope { body, partition_key, ..Default::default() }`; the log fills in the
/// id (and `enqueued_at` when it is 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// UUIDv7, assigned by the log at append/enqueue; increasing within a stream or inbox.
    pub id: Uuid,
    /// The endpoint the message came in through (or is addressed to), if any.
    pub endpoint: Option<Uuid>,
    /// The device that sent it, or (in an inbox) the only device that may receive it.
    pub device: Option<String>,
    /// The channel whose stream holds it; set by [`crate::MessageLog::append`].
    pub channel: Option<Uuid>,
    /// The environment whose stream holds it; set by [`crate::MessageLog::append`].
    pub environment: Option<Uuid>,
    /// When the platform first accepted it, unix milliseconds.
    pub enqueued_at: i64,
    /// The MIME type of `body`, when known.
    pub content_type: Option<String>,
    /// Custom properties (`x-mh-property-*` headers, handler metadata).
    pub properties: BTreeMap<String, String>,
    /// Order is kept per partition key: the device id, else the endpoint id.
    pub partition_key: String,
    /// The output subject a handler pushed it with, if any.
    pub subject: Option<String>,
    /// How many handler/channel hops it went through (loop protection).
    pub hops: u32,
    /// Caller-chosen deduplication key: a second append of the same key to the same stream (or
    /// inbox) stores nothing and returns the first id. At most 1024 bytes.
    pub idempotency_key: Option<String>,
    /// The payload, at most 256 KiB (enforced by the gateway).
    pub body: Bytes,
}

/// A stream: the messages of one channel in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    /// The channel.
    pub channel: Uuid,
    /// The environment it runs in.
    pub environment: Uuid,
}

impl StreamId {
    /// The stream of `channel` in `environment`.
    pub fn new(channel: Uuid, environment: Uuid) -> Self {
        StreamId {
            channel,
            environment,
        }
    }

    pub(crate) fn key(&self) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..16].copy_from_slice(self.channel.as_bytes());
        k[16..].copy_from_slice(self.environment.as_bytes());
        k
    }
}

/// A message handed to a receiver, locked until `locked_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Proves the lock: pass it to complete/abandon. Random, bound to the inbox.
    pub lock_token: String,
    /// How many times this message has been delivered, this delivery included (1 = first).
    pub delivery_count: u32,
    /// Unix milliseconds when the lock expires and the message becomes visible again.
    pub locked_until: i64,
    /// The message.
    pub message: Envelope,
}

/// A message that was moved out of an inbox because nobody could complete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Why it was dead-lettered.
    pub reason: String,
    /// Unix milliseconds when it was dead-lettered.
    pub dead_lettered_at: i64,
    /// How many times it had been delivered.
    pub delivery_count: u32,
    /// The message.
    pub message: Envelope,
}

/// One line of a channel's log stream (handler logs and faults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// UUIDv7 assigned by the log on append (callers pass `Uuid::nil()`); increasing per channel.
    pub id: Uuid,
    /// Unix milliseconds; the log sets it on append when the caller left it 0.
    pub at: i64,
    /// The environment whose run wrote it.
    pub environment: Uuid,
    /// The handler configuration that wrote it; `None` for the runtime itself.
    pub handler: Option<Uuid>,
    /// `"trace"` | `"debug"` | `"info"` | `"warn"` | `"error"`
    pub level: String,
    /// The line itself.
    pub text: String,
}

/// A message a handler could not process (or that exceeded the hop limit), kept per stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamDeadLetter {
    /// UUIDv7 assigned on append (callers pass `Uuid::nil()`).
    pub id: Uuid,
    /// The handler configuration that gave up on it.
    pub handler: Uuid,
    /// Why it was given up on.
    pub reason: String,
    /// How many times processing was attempted.
    pub attempts: u32,
    /// Unix milliseconds; the log sets it on append when the caller left it 0.
    pub dead_lettered_at: i64,
    /// The message, as the handler got it.
    pub message: Envelope,
}

/// The binary record of an envelope: compact, no per-field names, bodies copied once.
///
/// Layout: `id[16] flags[1] enqueued_at[i64 LE] hops[varint]`, then the optional uuids
/// (endpoint, channel, environment) as 16 bytes each when their flag is set, then the strings
/// (device, content type, subject, idempotency key when flagged; partition key always) as
/// `varint len + bytes`, then `varint count` properties as two such strings each, then the body as
/// `varint len + bytes`. Flags leave room for new optional fields without a format break.
pub(crate) mod codec {
    use super::*;
    use crate::{LogError, Result};

    const ENDPOINT: u8 = 1;
    const DEVICE: u8 = 1 << 1;
    const CHANNEL: u8 = 1 << 2;
    const ENVIRONMENT: u8 = 1 << 3;
    const CONTENT_TYPE: u8 = 1 << 4;
    const SUBJECT: u8 = 1 << 5;
    const IDEMPOTENCY_KEY: u8 = 1 << 6;

    /// Upper bound of the encoded size, used to reserve buffers once.
    pub fn encoded_len_hint(e: &Envelope) -> usize {
        let strings = e.device.as_ref().map_or(0, String::len)
            + e.content_type.as_ref().map_or(0, String::len)
            + e.subject.as_ref().map_or(0, String::len)
            + e.idempotency_key.as_ref().map_or(0, String::len)
            + e.partition_key.len()
            + e.properties
                .iter()
                .map(|(k, v)| k.len() + v.len() + 10)
                .sum::<usize>();
        16 + 1 + 8 + 5 + 48 + 5 * 5 + strings + 10 + e.body.len() + 5
    }

    pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
        put_varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }

    /// Appends the record of `e` to `out`.
    pub fn encode(e: &Envelope, out: &mut Vec<u8>) {
        let mut flags = 0u8;
        let opt = [
            (e.endpoint.is_some(), ENDPOINT),
            (e.device.is_some(), DEVICE),
            (e.channel.is_some(), CHANNEL),
            (e.environment.is_some(), ENVIRONMENT),
            (e.content_type.is_some(), CONTENT_TYPE),
            (e.subject.is_some(), SUBJECT),
            (e.idempotency_key.is_some(), IDEMPOTENCY_KEY),
        ];
        for (set, bit) in opt {
            if set {
                flags |= bit;
            }
        }
        out.extend_from_slice(e.id.as_bytes());
        out.push(flags);
        out.extend_from_slice(&e.enqueued_at.to_le_bytes());
        put_varint(out, u64::from(e.hops));
        for id in [e.endpoint, e.channel, e.environment].into_iter().flatten() {
            out.extend_from_slice(id.as_bytes());
        }
        for s in [&e.device, &e.content_type, &e.subject, &e.idempotency_key]
            .into_iter()
            .flatten()
        {
            put_bytes(out, s.as_bytes());
        }
        put_bytes(out, e.partition_key.as_bytes());
        put_varint(out, e.properties.len() as u64);
        for (k, v) in &e.properties {
            put_bytes(out, k.as_bytes());
            put_bytes(out, v.as_bytes());
        }
        put_bytes(out, &e.body);
    }

    /// A cursor over a buffer that holds one or more records; bodies are zero-copy slices of
    /// the buffer.
    pub struct Reader {
        buf: Bytes,
        pos: usize,
    }

    impl Reader {
        pub fn new(buf: Bytes) -> Self {
            Reader { buf, pos: 0 }
        }

        pub fn is_empty(&self) -> bool {
            self.pos >= self.buf.len()
        }

        fn take(&mut self, n: usize) -> Result<&[u8]> {
            let end = self
                .pos
                .checked_add(n)
                .filter(|end| *end <= self.buf.len())
                .ok_or(LogError::Corrupt("record truncated"))?;
            let s = &self.buf[self.pos..end];
            self.pos = end;
            Ok(s)
        }

        pub fn varint(&mut self) -> Result<u64> {
            let mut v = 0u64;
            for shift in (0..64).step_by(7) {
                let b = self.take(1)?[0];
                v |= u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    return Ok(v);
                }
            }
            Err(LogError::Corrupt("varint too long"))
        }

        fn len(&mut self) -> Result<usize> {
            usize::try_from(self.varint()?).map_err(|_| LogError::Corrupt("length too large"))
        }

        pub fn uuid(&mut self) -> Result<Uuid> {
            let b: [u8; 16] = self
                .take(16)?
                .try_into()
                .map_err(|_| LogError::Corrupt("uuid"))?;
            Ok(Uuid::from_bytes(b))
        }

        pub fn string(&mut self) -> Result<String> {
            let n = self.len()?;
            let b = self.take(n)?;
            String::from_utf8(b.to_vec()).map_err(|_| LogError::Corrupt("string is not UTF-8"))
        }

        pub fn i64(&mut self) -> Result<i64> {
            let b: [u8; 8] = self
                .take(8)?
                .try_into()
                .map_err(|_| LogError::Corrupt("i64"))?;
            Ok(i64::from_le_bytes(b))
        }

        pub fn u32(&mut self) -> Result<u32> {
            u32::try_from(self.varint()?).map_err(|_| LogError::Corrupt("u32 out of range"))
        }

        /// Decodes the next record.
        pub fn envelope(&mut self) -> Result<Envelope> {
            let id = self.uuid()?;
            let flags = self.take(1)?[0];
            let enqueued_at = self.i64()?;
            let hops = self.u32()?;
            let opt_uuid = |bit: u8, r: &mut Self| -> Result<Option<Uuid>> {
                if flags & bit != 0 {
                    r.uuid().map(Some)
                } else {
                    Ok(None)
                }
            };
            let endpoint = opt_uuid(ENDPOINT, self)?;
            let channel = opt_uuid(CHANNEL, self)?;
            let environment = opt_uuid(ENVIRONMENT, self)?;
            let opt_string = |bit: u8, r: &mut Self| -> Result<Option<String>> {
                if flags & bit != 0 {
                    r.string().map(Some)
                } else {
                    Ok(None)
                }
            };
            let device = opt_string(DEVICE, self)?;
            let content_type = opt_string(CONTENT_TYPE, self)?;
            let subject = opt_string(SUBJECT, self)?;
            let idempotency_key = opt_string(IDEMPOTENCY_KEY, self)?;
            let partition_key = self.string()?;
            let count = self.len()?;
            let mut properties = BTreeMap::new();
            for _ in 0..count {
                let k = self.string()?;
                let v = self.string()?;
                properties.insert(k, v);
            }
            let n = self.len()?;
            let start = self.pos;
            self.take(n)?;
            let body = self.buf.slice(start..start + n);
            Ok(Envelope {
                id,
                endpoint,
                device,
                channel,
                environment,
                enqueued_at,
                content_type,
                properties,
                partition_key,
                subject,
                hops,
                idempotency_key,
                body,
            })
        }

        /// Skips `n` bytes (a record the caller pages past, by its length prefix).
        pub fn skip(&mut self, n: usize) -> Result<()> {
            self.take(n).map(|_| ())
        }

        /// Reads a length prefix.
        pub fn length(&mut self) -> Result<usize> {
            self.len()
        }

        /// Everything not read yet.
        pub fn rest(&self) -> &[u8] {
            self.buf.get(self.pos..).unwrap_or_default()
        }

        /// The id of the record that starts here, without consuming it.
        pub fn peek_id(&self) -> Result<Uuid> {
            let b: [u8; 16] = self
                .buf
                .get(self.pos..self.pos + 16)
                .and_then(|s| s.try_into().ok())
                .ok_or(LogError::Corrupt("record truncated"))?;
            Ok(Uuid::from_bytes(b))
        }
    }

    /// Levels stored as one byte; anything else is kept verbatim behind [`OTHER_LEVEL`], so
    /// an unexpected level costs bytes, never the line.
    const LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];
    const OTHER_LEVEL: u64 = 0;
    const HAS_HANDLER: u64 = 1;

    /// Log entry value (the id lives in the key): `flags[varint] at[i64 LE] environment[16]
    /// handler[16]? level[varint: 1..=5, or 0 + string] text[rest]`.
    pub fn encode_log_entry(e: &LogEntry, out: &mut Vec<u8>) {
        put_varint(out, if e.handler.is_some() { HAS_HANDLER } else { 0 });
        out.extend_from_slice(&e.at.to_le_bytes());
        out.extend_from_slice(e.environment.as_bytes());
        if let Some(h) = e.handler {
            out.extend_from_slice(h.as_bytes());
        }
        match LEVELS.iter().position(|l| *l == e.level) {
            Some(i) => put_varint(out, i as u64 + 1),
            None => {
                put_varint(out, OTHER_LEVEL);
                put_bytes(out, e.level.as_bytes());
            }
        }
        out.extend_from_slice(e.text.as_bytes());
    }

    /// Inverse of [`encode_log_entry`].
    pub fn decode_log_entry(id: Uuid, value: &[u8]) -> Result<LogEntry> {
        let mut r = Reader::new(Bytes::copy_from_slice(value));
        let flags = r.varint()?;
        let at = r.i64()?;
        let environment = r.uuid()?;
        let handler = if flags & HAS_HANDLER != 0 {
            Some(r.uuid()?)
        } else {
            None
        };
        let level = match r.varint()? {
            OTHER_LEVEL => r.string()?,
            n => usize::try_from(n - 1)
                .ok()
                .and_then(|i| LEVELS.get(i))
                .ok_or(LogError::Corrupt("log level"))?
                .to_string(),
        };
        let text = String::from_utf8(r.rest().to_vec())
            .map_err(|_| LogError::Corrupt("log text is not UTF-8"))?;
        Ok(LogEntry {
            id,
            at,
            environment,
            handler,
            level,
            text,
        })
    }

    /// Stream dead-letter value (the id lives in the key): `dead_lettered_at[i64 LE]
    /// handler[16] attempts[varint] reason[varint len + bytes]`, then the envelope record.
    pub fn encode_stream_dead_letter(d: &StreamDeadLetter, out: &mut Vec<u8>) {
        out.extend_from_slice(&d.dead_lettered_at.to_le_bytes());
        out.extend_from_slice(d.handler.as_bytes());
        put_varint(out, u64::from(d.attempts));
        put_bytes(out, d.reason.as_bytes());
        encode(&d.message, out);
    }

    /// Inverse of [`encode_stream_dead_letter`].
    pub fn decode_stream_dead_letter(id: Uuid, value: &[u8]) -> Result<StreamDeadLetter> {
        let mut r = Reader::new(Bytes::copy_from_slice(value));
        let dead_lettered_at = r.i64()?;
        let handler = r.uuid()?;
        let attempts = r.u32()?;
        let reason = r.string()?;
        let message = r.envelope()?;
        Ok(StreamDeadLetter {
            id,
            handler,
            reason,
            attempts,
            dead_lettered_at,
            message,
        })
    }
}
