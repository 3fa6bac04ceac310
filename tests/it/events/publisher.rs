//! The generic publisher: in order, from a durable cursor, again after a failure, and from
//! where it stopped after a restart.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::future::LocalBoxFuture;
use tributary::events::publisher::machine::ReaderLimits;
use tributary::events::publisher::{
    Publisher, PublisherOptions, Sink, SinkError, StartAt, StopPublisher,
};
use tributary::storage::StorageHandle;
use tributary::storage::commands::connectors::WipeConnectorData;
use tributary::storage::queries::events::{self as outbox, StoredEvent};

use crate::helpers::{TestDb, eventually};
use crate::storage_actor::keyed_connector;

/// A sink that keeps what it got and refuses the first `fail` deliveries.
#[derive(Clone, Default)]
struct Recorder {
    got: Rc<RefCell<Vec<i64>>>,
    fail: Rc<RefCell<u32>>,
    calls: Rc<RefCell<u32>>,
}

impl Sink for Recorder {
    fn deliver<'a>(
        &'a mut self,
        events: &'a [StoredEvent],
    ) -> LocalBoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            *self.calls.borrow_mut() += 1;
            let mut fail = self.fail.borrow_mut();
            if *fail > 0 {
                *fail -= 1;
                return Err(SinkError("refused".into()));
            }
            self.got
                .borrow_mut()
                .extend(events.iter().map(|e| e.position));
            Ok(())
        })
    }
}

fn options(name: &str, start_at: StartAt) -> PublisherOptions {
    PublisherOptions {
        name: name.into(),
        start_at,
        limits: ReaderLimits {
            batch: 3,
            idle_poll: Duration::from_millis(20),
            retry_initial: Duration::from_millis(10),
            retry_max: Duration::from_millis(50),
        },
    }
}

/// `n` events: resets of a fresh connector are one event each.
async fn append(storage: &StorageHandle, n: usize) {
    let connector = keyed_connector(storage).await;
    for _ in 0..n {
        storage
            .write(WipeConnectorData { id: connector.id() })
            .await
            .expect("reset");
    }
}

async fn positions(storage: &StorageHandle) -> Vec<i64> {
    outbox::after(storage.pool(), 0, 1000)
        .await
        .expect("outbox")
        .events
        .iter()
        .map(|e| e.position)
        .collect()
}

#[actix_rt::test]
async fn events_arrive_in_order_once_and_the_cursor_is_saved() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    append(&storage, 7).await;
    let sink = Recorder::default();
    *sink.fail.borrow_mut() = 2;
    let publisher = Publisher::start(
        storage.clone(),
        sink.clone(),
        options("test", StartAt::Oldest),
    );
    let all = positions(&storage).await;
    eventually("all events delivered", Duration::from_secs(10), || {
        let got = sink.got.clone();
        let n = all.len();
        async move { got.borrow().len() >= n }
    })
    .await;
    // Later events too, without a restart.
    append(&storage, 2).await;
    let all = positions(&storage).await;
    eventually("later events delivered", Duration::from_secs(10), || {
        let got = sink.got.clone();
        let n = all.len();
        async move { got.borrow().len() >= n }
    })
    .await;
    assert_eq!(
        *sink.got.borrow(),
        all,
        "in order, each once, after two refusals"
    );
    assert!(
        *sink.calls.borrow() >= 2 + 3,
        "the refused batch was sent again"
    );
    let last = *all.last().expect("events");
    eventually("the cursor saved", Duration::from_secs(10), || {
        let pool = storage.pool().clone();
        async move { outbox::cursor(&pool, "test").await.ok().flatten() == Some(last) }
    })
    .await;
    publisher.do_send(StopPublisher);

    // A new publisher under the same name starts after the cursor: nothing sent twice.
    append(&storage, 1).await;
    let again = Recorder::default();
    let _p = Publisher::start(
        storage.clone(),
        again.clone(),
        options("test", StartAt::Oldest),
    );
    eventually("the new event delivered", Duration::from_secs(10), || {
        let got = again.got.clone();
        async move { !got.borrow().is_empty() }
    })
    .await;
    let newest = *positions(&storage).await.last().expect("events");
    assert_eq!(*again.got.borrow(), [newest]);
}

#[actix_rt::test]
async fn a_publisher_starting_at_the_newest_skips_the_past_and_holds_a_cursor() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    append(&storage, 3).await;
    let head = *positions(&storage).await.last().expect("events");
    let sink = Recorder::default();
    let _p = Publisher::start(
        storage.clone(),
        sink.clone(),
        options("new", StartAt::Newest),
    );
    eventually("the start cursor saved", Duration::from_secs(10), || {
        let pool = storage.pool().clone();
        async move { outbox::cursor(&pool, "new").await.ok().flatten() == Some(head) }
    })
    .await;
    append(&storage, 1).await;
    eventually("the new event delivered", Duration::from_secs(10), || {
        let got = sink.got.clone();
        async move { !got.borrow().is_empty() }
    })
    .await;
    assert_eq!(sink.got.borrow().len(), 1);
    assert!(sink.got.borrow()[0] > head);
}

/// A save still in flight from a publisher being stopped must not bring back a cursor dropped
/// meanwhile (a deactivated webhook's): only an existing cursor moves.
#[actix_rt::test]
async fn a_late_save_never_recreates_a_dropped_cursor() {
    use tributary::storage::commands::events::{AdvanceCursor, DropCursor, StartCursor};
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    let cursor = |name: &'static str| {
        let pool = storage.pool().clone();
        async move { outbox::cursor(&pool, name).await.expect("cursor") }
    };
    storage
        .write(StartCursor {
            publisher: "p".into(),
            position: 5,
        })
        .await
        .expect("start");
    storage
        .write(StartCursor {
            publisher: "p".into(),
            position: 1,
        })
        .await
        .expect("start again");
    assert_eq!(cursor("p").await, Some(5), "an existing cursor is kept");
    storage
        .write(AdvanceCursor {
            publisher: "p".into(),
            position: 3,
        })
        .await
        .expect("advance");
    assert_eq!(cursor("p").await, Some(5), "never moves back");
    storage
        .write(DropCursor {
            publisher: "p".into(),
        })
        .await
        .expect("drop");
    storage
        .write(AdvanceCursor {
            publisher: "p".into(),
            position: 9,
        })
        .await
        .expect("a late save");
    assert_eq!(cursor("p").await, None);
}

/// A payment's event whose rows were deleted by hand (a reset or uninstall writes the
/// envelopes out first, so only that can cause it) cannot be built: it is skipped, and the
/// cursor still passes it, even when a whole batch is such events.
#[actix_rt::test]
async fn events_whose_rows_are_gone_are_skipped_and_the_cursor_passes_them() {
    use tributary::sdk::ingest::{Amount, Batch, PaymentData, PaymentStatus, PaymentType, Scheme};

    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    let connector = keyed_connector(&storage).await;
    let mut batch = Batch::default();
    for i in 0..3 {
        batch.payments.push(PaymentData {
            reference: format!("gone-{i}"),
            created_at: chrono::Utc::now(),
            payment_type: PaymentType::PayIn,
            status: PaymentStatus::Succeeded,
            scheme: Scheme::Other,
            asset: "EUR/2".into(),
            amount: Amount::payment("amount", "1").expect("amount"),
            source_account: None,
            destination_account: None,
            raw: None,
            metadata: Default::default(),
        });
    }
    super::outbox::ingest(&storage, &connector, batch).await;
    assert_eq!(positions(&storage).await.len(), 3);
    db.client()
        .await
        .execute("DELETE FROM payment_adjustments", &[])
        .await
        .expect("delete by hand");
    assert!(positions(&storage).await.is_empty(), "cannot be built");
    append(&storage, 2).await;
    let sink = Recorder::default();
    let _publisher = Publisher::start(
        storage.clone(),
        sink.clone(),
        options("gone", StartAt::Oldest),
    );
    let resets = positions(&storage).await;
    assert_eq!(resets.len(), 2);
    eventually(
        "the later events delivered",
        Duration::from_secs(10),
        || {
            let got = sink.got.clone();
            async move { got.borrow().len() >= 2 }
        },
    )
    .await;
    assert_eq!(*sink.got.borrow(), resets);
}

/// A sink that appends `more` events (resets) during its first delivery, while the publisher
/// reads the next page ahead.
struct AppendingRecorder {
    recorder: Recorder,
    storage: StorageHandle,
    more: Rc<RefCell<usize>>,
}

impl Sink for AppendingRecorder {
    fn deliver<'a>(
        &'a mut self,
        events: &'a [StoredEvent],
    ) -> LocalBoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let more = std::mem::take(&mut *self.more.borrow_mut());
            append(&self.storage, more).await;
            self.recorder.deliver(events).await
        })
    }
}

/// Events committed while a full batch is delivered (and the next page read ahead) arrive
/// in order, each once, whichever read sees them first.
#[actix_rt::test]
async fn events_appended_during_a_delivery_arrive_in_order_once() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
    append(&storage, 7).await;
    let recorder = Recorder::default();
    let sink = AppendingRecorder {
        recorder: recorder.clone(),
        storage: storage.clone(),
        more: Rc::new(RefCell::new(5)),
    };
    let _publisher = Publisher::start(storage.clone(), sink, options("ahead", StartAt::Oldest));
    eventually("every event delivered", Duration::from_secs(10), || {
        let got = recorder.got.clone();
        async move { got.borrow().len() >= 12 }
    })
    .await;
    let all = positions(&storage).await;
    assert_eq!(all.len(), 12);
    assert_eq!(*recorder.got.borrow(), all, "in order, each once");
}
