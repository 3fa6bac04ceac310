//! The NATS JetStream publisher: a [`Sink`] that publishes each outbox event, its Formance
//! envelope as the body, on the configured subject, with `Nats-Msg-Id` set to the event id so
//! that JetStream drops the copies a retry or a restart sends again within the stream's
//! duplicate window (two minutes by default).
//!
//! It connects lazily, on its first batch: a NATS that is down at startup or later never
//! blocks the service; the batch fails, the generic publisher backs off and sends it again,
//! and the outbox keeps every event meanwhile (the backlog gauge shows how many wait). Once
//! connected, the client reconnects by itself. The stream is created, capturing the
//! subject, when it is missing.
//!
//! A batch is pipelined: every message is sent, then every acknowledgement awaited; the batch
//! counts as delivered only when JetStream acknowledged all of it.

use std::future::IntoFuture;
use std::time::Duration;

use actix::Addr;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use futures::future::{LocalBoxFuture, try_join_all};
use tokio_util::sync::CancellationToken;

use super::publisher::machine::ReaderLimits;
use super::publisher::{Publisher, PublisherOptions, Sink, SinkError, StartAt, StopPublisher};
use super::redact_url;
use crate::settings::{EventsSettings, NatsSettings};
use crate::storage::StorageHandle;
use crate::storage::commands::events::DropCursor;
use crate::storage::queries::events::StoredEvent;

/// The publisher's name: its cursor and its metrics label.
pub const PUBLISHER: &str = "nats";
/// JetStream's deduplication header: the event id.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The connector the event belongs to (absent for events of no connector).
pub const CONNECTOR_ID: &str = "Tributary-Connector-Id";
/// The event's number in its connector's sequence (1, 2, 3 …), for consumers to order by.
pub const SEQUENCE: &str = "Tributary-Sequence";
/// The Formance event type (`SAVED_PAYMENT` …), to filter without parsing the body.
pub const EVENT_TYPE: &str = "Tributary-Event-Type";

/// How long a connection attempt, a stream lookup or one acknowledgement may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How the NATS publisher reads the outbox: large batches (pipelined), a short idle poll,
/// and retries backing off to a few seconds so an outage ends soon after NATS is back.
pub const LIMITS: ReaderLimits = ReaderLimits {
    batch: 500,
    idle_poll: Duration::from_millis(100),
    retry_initial: Duration::from_millis(200),
    retry_max: Duration::from_secs(3),
};

/// Why a batch could not be published.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    /// The server could not be reached.
    #[error("connecting to NATS at {url}: {source}")]
    Connect {
        url: String,
        source: async_nats::ConnectError,
    },
    /// The stream could not be found or created.
    #[error("getting or creating the JetStream stream {stream}: {source}")]
    Stream {
        stream: String,
        source: jetstream::context::CreateStreamError,
    },
    /// A message could not be sent.
    #[error("publishing event {id}: {source}")]
    Publish {
        id: uuid::Uuid,
        source: jetstream::context::PublishError,
    },
    /// JetStream did not acknowledge a message (in time).
    #[error("JetStream did not acknowledge the batch: {0}")]
    Ack(jetstream::context::PublishError),
    /// The batch as a whole took too long (the client's buffer full while disconnected).
    #[error("publishing a batch of {0} events timed out")]
    Timeout(usize),
}

/// The headers of one event's message.
pub fn headers(event: &StoredEvent) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(MSG_ID, event.id.to_string().as_str());
    if !event.connector_id.is_empty() {
        headers.insert(CONNECTOR_ID, event.connector_id.as_str());
    }
    headers.insert(SEQUENCE, event.sequence.to_string().as_str());
    headers.insert(EVENT_TYPE, event.event_type.as_str());
    headers
}

/// The stream created when missing: the configured name, capturing the configured subject.
pub fn stream_config(settings: &NatsSettings) -> stream::Config {
    stream::Config {
        name: settings.stream.clone(),
        subjects: vec![settings.subject.clone()],
        ..Default::default()
    }
}

/// Publishes outbox batches to JetStream, connecting on first use.
pub struct NatsSink {
    settings: NatsSettings,
    /// The JetStream context once connected and the stream is known to exist.
    jetstream: Option<jetstream::Context>,
    /// The connection, kept across a failed stream lookup.
    client: Option<async_nats::Client>,
}

impl NatsSink {
    /// A sink for `settings`; nothing is connected until the first batch.
    pub fn new(settings: NatsSettings) -> Self {
        Self {
            settings,
            jetstream: None,
            client: None,
        }
    }

    /// The JetStream context, connecting and creating the stream first if need be.
    async fn context(&mut self) -> Result<jetstream::Context, NatsError> {
        if let Some(context) = &self.jetstream {
            return Ok(context.clone());
        }
        let client = match &self.client {
            Some(client) => client.clone(),
            None => {
                let client = async_nats::ConnectOptions::new()
                    .name("tributary")
                    .connection_timeout(TIMEOUT)
                    .connect(self.settings.url.as_str())
                    .await
                    .map_err(|source| NatsError::Connect {
                        url: redact_url(&self.settings.url),
                        source,
                    })?;
                tracing::info!(url = %redact_url(&self.settings.url), "connected to NATS");
                self.client = Some(client.clone());
                client
            }
        };
        let context = jetstream::ContextBuilder::new()
            .timeout(TIMEOUT)
            .build(client);
        context
            .get_or_create_stream(stream_config(&self.settings))
            .await
            .map_err(|source| NatsError::Stream {
                stream: self.settings.stream.clone(),
                source,
            })?;
        self.jetstream = Some(context.clone());
        Ok(context)
    }

    /// Sends every event, then awaits every acknowledgement.
    async fn publish(&mut self, events: &[StoredEvent]) -> Result<(), NatsError> {
        let context = self.context().await?;
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(events.len());
        for event in events {
            let ack = context
                .publish_with_headers(
                    self.settings.subject.clone(),
                    headers(event),
                    event.envelope.clone().into(),
                )
                .await
                .map_err(|source| NatsError::Publish {
                    id: event.id,
                    source,
                })?;
            acks.push(ack);
        }
        let acks = try_join_all(acks.into_iter().map(IntoFuture::into_future))
            .await
            .map_err(NatsError::Ack)?;
        let duplicates = acks.iter().filter(|ack| ack.duplicate).count();
        if duplicates > 0 {
            metrics::counter!("tributary_events_nats_duplicates_total")
                .increment(duplicates as u64);
            tracing::info!(
                duplicates,
                "JetStream dropped events it already had (sent again after a retry or restart)"
            );
        }
        Ok(())
    }
}

impl Sink for NatsSink {
    fn deliver<'a>(
        &'a mut self,
        events: &'a [StoredEvent],
    ) -> LocalBoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            // Each step has its own timeout; this bounds a client buffer that stays full.
            let result = tokio::time::timeout(TIMEOUT * 3, self.publish(events))
                .await
                .unwrap_or(Err(NatsError::Timeout(events.len())));
            if let Err(NatsError::Stream { .. } | NatsError::Publish { .. } | NatsError::Ack(_)) =
                &result
            {
                // The stream may have been deleted: look it up (and create it) again.
                self.jetstream = None;
            }
            result.map_err(|error| SinkError(error.to_string()))
        })
    }
}

/// Starts the NATS publisher when `[events.nats]` is set; it stops when `shutdown` is
/// cancelled. Must run inside an actix System.
pub fn start(
    settings: &EventsSettings,
    storage: &StorageHandle,
    shutdown: &CancellationToken,
) -> Option<Addr<Publisher>> {
    let Some(nats) = settings.nats.clone() else {
        // A cursor left by a NATS publisher configured before would hold back pruning forever.
        storage.write_detached(DropCursor {
            publisher: PUBLISHER.into(),
        });
        return None;
    };
    tracing::info!(url = %redact_url(&nats.url), stream = %nats.stream, subject = %nats.subject, "publishing events to NATS JetStream");
    let publisher = Publisher::start(
        storage.clone(),
        NatsSink::new(nats),
        PublisherOptions {
            name: PUBLISHER.into(),
            start_at: StartAt::Oldest,
            limits: LIMITS,
        },
    );
    let addr = publisher.clone();
    let shutdown = shutdown.clone();
    actix_rt::spawn(async move {
        shutdown.cancelled().await;
        let _ = addr.send(StopPublisher).await;
    });
    Some(publisher)
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn event(connector_id: &str) -> StoredEvent {
        StoredEvent {
            position: 7,
            id: uuid::Uuid::from_u128(0x1234),
            connector_id: connector_id.into(),
            sequence: 42,
            event_type: "SAVED_PAYMENT".into(),
            envelope: "{}".into(),
            created_at: Utc::now(),
        }
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).map(|v| v.as_str())
    }

    #[test]
    fn the_message_id_is_the_event_id_and_the_headers_say_where_it_belongs() {
        let headers = headers(&event("conn-1"));
        assert_eq!(
            header(&headers, MSG_ID),
            Some("00000000-0000-0000-0000-000000001234")
        );
        assert_eq!(header(&headers, CONNECTOR_ID), Some("conn-1"));
        assert_eq!(header(&headers, SEQUENCE), Some("42"));
        assert_eq!(header(&headers, EVENT_TYPE), Some("SAVED_PAYMENT"));
    }

    #[test]
    fn an_event_of_no_connector_has_no_connector_header() {
        let headers = headers(&event(""));
        assert_eq!(header(&headers, CONNECTOR_ID), None);
        assert!(header(&headers, MSG_ID).is_some());
    }

    #[test]
    fn the_stream_captures_the_configured_subject() {
        let config = stream_config(&NatsSettings {
            url: "nats://x:4222".into(),
            stream: "S".into(),
            subject: "events.payments".into(),
        });
        assert_eq!(config.name, "S");
        assert_eq!(config.subjects, ["events.payments"]);
    }
}
