//! Model-based interleaving test of transfer initiations (money out): seeded random batches of
//! CONCURRENT HTTP calls (create validated/unvalidated, approve, reject, retry, reverse full or
//! partial, delete, get, pause/resume of the connector) on a few initiations of one DUMMY-PAY
//! connector, with DUMMY-PAY failures injected between batches (the `outbox` replaced by a
//! plain file, so sends and reversals fail, then restored). After every batch the service's
//! state is checked against the pure machine (`tributary::money_out::machine`) as the oracle:
//! every history is a legal path of the machine from WAITING_FOR_VALIDATION ending at the
//! current status; the successes of a concurrent group of calls on one initiation are exactly
//! the API transitions its history shows (so never two retries of one FAILED status), and every
//! refusal names a status the initiation had that the machine refuses the event from; one
//! instruction file per initiation, a PROCESSED initiation has its one payment; what is left
//! after reversals is exact, never negative, and 0 exactly when REVERSED; no 5xx, no stuck
//! initiation. A failing seed is shrunk by dropping batches and printed for replay.
//!
//! Sizing (not `TRIBUTARY_`-prefixed: the settings read that prefix):
//! `TRANSFERS_MODEL_ITERATIONS` seeds (default 6), `TRANSFERS_MODEL_BATCHES` batches per seed
//! (default 10), `TRANSFERS_MODEL_SEED` replays one seed, `TRANSFERS_MODEL_BASE` moves the
//! first seed, `TRANSFERS_MODEL_NO_SHRINK` skips shrinking.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary::ids::{ConnectorKey, PaymentKey};
use tributary::money_out::machine::{self, Event, Next, Status};

use crate::transfers::{Setup, call};

/// Initiation slots: each op targets the slot's latest initiation.
const SLOTS: usize = 3;

/// Every initiation's amount.
const AMOUNT: u64 = 100;

/// How long an unpaused service may take to finish the sends a batch started.
const SETTLE: Duration = Duration::from_secs(15);

/// Every event of the machine (to decide whether a history step is legal).
const EVENTS: [Event; 14] = [
    Event::Approve,
    Event::Reject,
    Event::Retry,
    Event::Reverse,
    Event::Delete,
    Event::Send,
    Event::Succeeded,
    Event::Failed,
    Event::OutcomeUnknown,
    Event::SendReversal,
    Event::ReversedFully,
    Event::ReversedPartially,
    Event::ReversalFailed,
    Event::NotSent,
];

/// SplitMix64: small, seedable, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One HTTP call of a batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    /// Creates the slot's next initiation (two in one batch share a reference).
    Create { slot: usize, validated: bool },
    /// `POST /status` VALIDATED.
    Approve(usize),
    /// `POST /status` REJECTED.
    Reject(usize),
    /// `POST /retry`.
    Retry(usize),
    /// `POST /reverse` of `amount`.
    Reverse { slot: usize, amount: u64 },
    /// `DELETE`.
    Delete(usize),
    /// `GET`.
    Get(usize),
    /// Pauses the connector.
    Pause,
    /// Resumes the connector.
    Resume,
}

/// What happens to DUMMY-PAY's outbox after a batch (when nothing runs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// Nothing.
    None,
    /// The outbox becomes a plain file: sends and reversals fail.
    Block,
    /// The outbox is restored.
    Unblock,
}

/// Concurrent calls, then a fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub ops: Vec<Op>,
    pub then: Fault,
}

fn generate(seed: u64, batches: usize) -> Vec<Batch> {
    let mut rng = Rng(seed);
    (0..batches)
        .map(|_| {
            let n = 2 + rng.below(5);
            let hot = rng.below(SLOTS);
            let ops = (0..n)
                .map(|_| {
                    // Mostly the batch's hot slot, so that calls race on one initiation.
                    let slot = if rng.below(4) == 0 {
                        rng.below(SLOTS)
                    } else {
                        hot
                    };
                    match rng.below(100) {
                        0..=14 => Op::Create {
                            slot,
                            validated: rng.below(2) == 0,
                        },
                        15..=29 => Op::Approve(slot),
                        30..=36 => Op::Reject(slot),
                        37..=51 => Op::Retry(slot),
                        52..=71 => Op::Reverse {
                            slot,
                            amount: [AMOUNT, 30, 50, 70, 1, 150][rng.below(6)],
                        },
                        72..=79 => Op::Delete(slot),
                        80..=89 => Op::Get(slot),
                        90..=94 => Op::Pause,
                        _ => Op::Resume,
                    }
                })
                .collect();
            let then = match rng.below(10) {
                0 | 1 => Fault::Block,
                2..=4 => Fault::Unblock,
                _ => Fault::None,
            };
            Batch { ops, then }
        })
        .collect()
}

/// Whether an answer is the runtime's "another operation on the connector is in progress".
fn busy(body: &Value) -> bool {
    body["errorMessage"]
        .as_str()
        .is_some_and(|m| m.contains("is in progress"))
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    calls: usize,
    successes: usize,
}

/// The history of an initiation, oldest first.
fn history(data: &Value) -> Vec<Status> {
    let mut h: Vec<Status> = data["relatedAdjustments"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["status"].as_str().and_then(Status::parse))
                .collect()
        })
        .unwrap_or_default();
    h.reverse(); // the API lists the newest first
    h
}

fn int(v: &Value) -> Option<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
}

/// Whether some event of the machine moves `from` to `to`.
fn legal_step(from: Status, to: Status) -> bool {
    EVENTS
        .iter()
        .any(|e| machine::next(from, *e) == Ok(Next::To(to)))
}

fn transient(s: Status) -> bool {
    matches!(
        s,
        Status::Validated
            | Status::AskRetried
            | Status::Processing
            | Status::AskReversed
            | Status::ReverseProcessing
    )
}

/// The API event of a state-changing op, and the status its success writes.
fn api_event(op: &Op) -> Option<(Event, Option<Status>)> {
    match op {
        Op::Approve(_) => Some((Event::Approve, Some(Status::Validated))),
        Op::Reject(_) => Some((Event::Reject, Some(Status::Rejected))),
        Op::Retry(_) => Some((Event::Retry, Some(Status::AskRetried))),
        Op::Reverse { .. } => Some((Event::Reverse, Some(Status::AskReversed))),
        Op::Delete(_) => Some((Event::Delete, None)),
        _ => None,
    }
}

fn slot_of(op: &Op) -> Option<usize> {
    match op {
        Op::Create { slot, .. }
        | Op::Approve(slot)
        | Op::Reject(slot)
        | Op::Retry(slot)
        | Op::Reverse { slot, .. }
        | Op::Delete(slot)
        | Op::Get(slot) => Some(*slot),
        Op::Pause | Op::Resume => None,
    }
}

struct World<'a> {
    s: &'a Setup,
    /// Each slot's latest initiation id.
    slots: [Option<String>; SLOTS],
    /// Every id ever created, by reference.
    ids: BTreeMap<String, String>,
    blocked: bool,
    reversals: usize,
    stats: Stats,
}

impl World<'_> {
    fn outbox_dir(&self) -> std::path::PathBuf {
        self.s.dir.path().join("outbox")
    }

    fn held_dir(&self) -> std::path::PathBuf {
        self.s.dir.path().join("outbox.held")
    }

    fn fault(&mut self, fault: Fault) -> Result<(), String> {
        let io = |e: std::io::Error| format!("fault injection: {e}");
        match (fault, self.blocked) {
            (Fault::Block, false) => {
                if self.outbox_dir().exists() {
                    std::fs::rename(self.outbox_dir(), self.held_dir()).map_err(io)?;
                }
                std::fs::write(self.outbox_dir(), "blocked").map_err(io)?;
                self.blocked = true;
            }
            (Fault::Unblock, true) => {
                std::fs::remove_file(self.outbox_dir()).map_err(io)?;
                if self.held_dir().exists() {
                    std::fs::rename(self.held_dir(), self.outbox_dir()).map_err(io)?;
                }
                self.blocked = false;
            }
            _ => {}
        }
        Ok(())
    }

    /// The instruction files (name → content), wherever the outbox is held.
    fn instructions(&self) -> Result<BTreeMap<String, Value>, String> {
        let dir = if self.blocked {
            self.held_dir()
        } else {
            self.outbox_dir()
        };
        let mut out = BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(out);
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                return Err(format!("a temporary file is left in the outbox: {name}"));
            }
            let text = std::fs::read(e.path()).map_err(|e| format!("reading {name}: {e}"))?;
            let v: Value =
                serde_json::from_slice(&text).map_err(|e| format!("{name} is not JSON: {e}"))?;
            out.insert(name, v);
        }
        Ok(out)
    }

    async fn paused(&self) -> bool {
        let row = self
            .s
            .app
            .db
            .client()
            .await
            .query_one(
                "SELECT enabled FROM connectors WHERE id = $1",
                &[&self.s.connector_id],
            )
            .await
            .expect("connector row");
        !row.get::<_, bool>(0)
    }

    async fn get(&self, id: &str) -> Result<Option<Value>, String> {
        let (code, body) = self.s.get(id).await;
        match code {
            200 => Ok(Some(body["data"].clone())),
            404 => Ok(None),
            _ => Err(format!("GET {id}: {code} {body}")),
        }
    }

    /// Every existing initiation, by id.
    async fn snapshot(&self) -> Result<BTreeMap<String, Value>, String> {
        let mut out = BTreeMap::new();
        for id in self.ids.values() {
            if let Some(v) = self.get(id).await? {
                out.insert(id.clone(), v);
            }
        }
        Ok(out)
    }

    /// Waits until no initiation is mid-send (unless the connector is paused).
    async fn settle(&self) -> Result<BTreeMap<String, Value>, String> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let snap = self.snapshot().await?;
            let busy: Vec<_> = snap
                .values()
                .filter(|v| {
                    v["status"]
                        .as_str()
                        .and_then(Status::parse)
                        .is_some_and(transient)
                })
                .map(|v| format!("{} {}", v["id"], v["status"]))
                .collect();
            if busy.is_empty() || self.paused().await {
                return Ok(snap);
            }
            if Instant::now() > deadline {
                return Err(format!("stuck initiations (connector running): {busy:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn call(&self, op: &Op, reference: &str) -> (u16, Value) {
        let s = self.s;
        let id = slot_of(op)
            .and_then(|k| self.slots[k].clone())
            // An id that was never created: the call must answer 404 or 400.
            .unwrap_or_else(|| format!("{}-missing", self.s.connector_id));
        match op {
            Op::Create { validated, .. } => {
                s.create(s.initiation(reference, "TRANSFER", AMOUNT, *validated))
                    .await
            }
            Op::Approve(_) => {
                s.post(&id, "status", Some(json!({"status": "VALIDATED"})))
                    .await
            }
            Op::Reject(_) => {
                s.post(&id, "status", Some(json!({"status": "REJECTED"})))
                    .await
            }
            Op::Retry(_) => s.post(&id, "retry", None).await,
            Op::Reverse { amount, .. } => {
                let body = json!({"reference": reference, "amount": amount, "asset": "EUR/2",
                                  "description": "model", "metadata": null});
                s.post(&id, "reverse", Some(body)).await
            }
            Op::Delete(_) => {
                let url = s.url(&format!("/transfer-initiations/{id}"));
                call(&s.http, s.http.delete(url), None).await
            }
            Op::Get(_) => s.get(&id).await,
            Op::Pause | Op::Resume => {
                let action = if *op == Op::Pause { "pause" } else { "resume" };
                let url = s.url(&format!(
                    "/connectors/dummy-pay/{}/{action}",
                    s.connector_id
                ));
                call(&s.http, s.http.post(url), None).await
            }
        }
    }

    async fn batch(&mut self, index: usize, batch: &Batch) -> Result<(), String> {
        let before = self.snapshot().await?;
        let ids_before = self.slots.clone();
        // References: a slot's creates in one batch share one (exactly one may succeed).
        let references: Vec<String> = batch
            .ops
            .iter()
            .map(|op| match op {
                Op::Create { slot, .. } => format!("r{slot}-{index}"),
                _ => {
                    let r = format!("rev-{index}-{}", self.reversals);
                    self.reversals += 1;
                    r
                }
            })
            .collect();
        let answers = futures::future::join_all(
            batch
                .ops
                .iter()
                .zip(&references)
                .map(|(op, r)| self.call(op, r)),
        )
        .await;
        self.stats.calls += answers.len();
        self.stats.successes += answers.iter().filter(|(c, _)| *c < 300).count();
        let described = || {
            batch
                .ops
                .iter()
                .zip(&answers)
                .map(|(op, (c, b))| format!("{op:?} → {c} {}", b["errorMessage"]))
                .collect::<Vec<_>>()
                .join("; ")
        };
        for (op, (code, body)) in batch.ops.iter().zip(&answers) {
            if *code >= 500 {
                return Err(format!("{op:?} answered {code} {body}"));
            }
        }
        // Creates: per reference, one success at most (exactly one: the reference is new).
        let connector = ConnectorKey::parse(&self.s.connector_id).expect("connector id");
        let mut created: BTreeMap<usize, (String, usize)> = BTreeMap::new();
        for ((op, (code, body)), reference) in batch.ops.iter().zip(&answers).zip(&references) {
            if let Op::Create { slot, .. } = op {
                let entry = created.entry(*slot).or_insert((reference.clone(), 0));
                match code {
                    200 => {
                        entry.1 += 1;
                        let id = body["data"]["id"].as_str().unwrap_or_default().to_string();
                        self.ids.insert(reference.clone(), id.clone());
                        self.slots[*slot] = Some(id);
                    }
                    400 if body["errorCode"] == "CONFLICT" => {}
                    // A pause or resume of the connector in progress: nothing was stored.
                    _ if busy(body) => {}
                    _ => return Err(format!("create {reference}: {code} {body}")),
                }
            }
        }
        let busy_creates = |reference: &str| {
            batch
                .ops
                .iter()
                .zip(&answers)
                .zip(&references)
                .any(|((op, (_, b)), r)| {
                    matches!(op, Op::Create { .. }) && r == reference && busy(b)
                })
        };
        for (reference, n) in created.values() {
            if *n > 1 || (*n == 0 && !busy_creates(reference)) {
                return Err(format!(
                    "{n} successful creates of new reference {reference}: {}",
                    described()
                ));
            }
        }
        let after = self.settle().await?;
        // Concurrent groups, per initiation that existed before the batch.
        for (slot, id) in ids_before.iter().enumerate() {
            let Some(id) = id else { continue };
            let ops: Vec<(&Op, &(u16, Value))> = batch
                .ops
                .iter()
                .zip(&answers)
                .filter(|(op, _)| slot_of(op) == Some(slot) && api_event(op).is_some())
                .collect();
            if ops.is_empty() {
                continue;
            }
            let pre = before.get(id).map(history).unwrap_or_default();
            let now = after.get(id).map(history);
            let mut had: BTreeSet<&'static str> = BTreeSet::new();
            if let Some(last) = pre.last() {
                had.insert(last.as_str());
            }
            let new: Vec<Status> = match &now {
                Some(h) => h.get(pre.len()..).unwrap_or_default().to_vec(),
                None => Vec::new(),
            };
            had.extend(new.iter().map(|s| s.as_str()));
            let ok = |event: Event| {
                ops.iter()
                    .filter(|(op, (c, _))| *c < 300 && api_event(op).map(|e| e.0) == Some(event))
                    .count()
            };
            // Approved (retried, reversed) but not dispatched: a pause or resume in progress.
            // The transition is written, then failed, and the answer is the error.
            let undispatched = |event: Event| {
                ops.iter()
                    .filter(|(op, (c, b))| {
                        *c >= 300 && busy(b) && api_event(op).map(|e| e.0) == Some(event)
                    })
                    .count()
            };
            let deleted = ok(Event::Delete);
            if now.is_none() != (deleted == 1 || !before.contains_key(id)) {
                return Err(format!(
                    "{id}: {deleted} successful deletes but it {}: {}",
                    if now.is_none() { "is gone" } else { "exists" },
                    described()
                ));
            }
            if deleted > 1 {
                return Err(format!("{id}: deleted twice: {}", described()));
            }
            if now.is_some() {
                for (event, to) in [
                    (Event::Approve, Status::Validated),
                    (Event::Reject, Status::Rejected),
                    (Event::Retry, Status::AskRetried),
                    (Event::Reverse, Status::AskReversed),
                ] {
                    let written = new.iter().filter(|s| **s == to).count();
                    if written != ok(event) + undispatched(event) {
                        return Err(format!(
                            "{id}: {} successful {event:?} calls but {written} {to} history \
                             entries (from {:?}, new {new:?}): {}",
                            ok(event),
                            pre.last(),
                            described()
                        ));
                    }
                }
            } else if ok(Event::Approve) + ok(Event::Retry) + ok(Event::Reverse) > 0 {
                return Err(format!(
                    "{id}: deleted, yet sent in the same batch: {}",
                    described()
                ));
            }
            // Every refusal is one the machine makes from a status the initiation had.
            let left_now = now
                .as_ref()
                .and(after.get(id))
                .and_then(|v| int(&v["amount"]));
            // Attempts this batch started (answered or not): the others' reads went stale.
            let new_attempts = ok(Event::Approve)
                + ok(Event::Retry)
                + undispatched(Event::Approve)
                + undispatched(Event::Retry);
            for (op, (code, body)) in &ops {
                if *code < 300 {
                    continue;
                }
                let message = body["errorMessage"].as_str().unwrap_or_default();
                let (event, _) = api_event(op).expect("state-changing");
                let justified = if *code == 404 {
                    now.is_none()
                } else if let Some(rest) = message.split("its status is ").nth(1) {
                    let named = rest.split(' ').next().unwrap_or_default();
                    let refused =
                        Status::parse(named).is_some_and(|s| machine::next(s, event).is_err());
                    refused && (now.is_none() || had.contains(named))
                } else if busy(body) {
                    true // counted with the transitions above
                } else if message.contains("changed meanwhile") {
                    new_attempts > 0
                } else if message.contains("greater than what is left") {
                    matches!((op, left_now), (Op::Reverse { amount, .. }, Some(left))
                             if i128::from(*amount) > left)
                        || now.is_none()
                } else {
                    false
                };
                if !justified {
                    return Err(format!(
                        "{id}: unjustified answer to {op:?}: {code} {body} (had {had:?}): {}",
                        described()
                    ));
                }
            }
        }
        self.fault(batch.then)?;
        self.invariants(&after, &connector).await
    }

    /// What must hold of every initiation at any quiet point.
    async fn invariants(
        &self,
        snap: &BTreeMap<String, Value>,
        connector: &ConnectorKey,
    ) -> Result<(), String> {
        let files = self.instructions()?;
        let db = self.s.app.db.client().await;
        for (reference, id) in &self.ids {
            let file = files.get(&format!("{reference}.json"));
            let Some(v) = snap.get(id) else {
                if file.is_some() {
                    return Err(format!("deleted {id} has an instruction file"));
                }
                continue;
            };
            let h = history(v);
            let status = v["status"].as_str().and_then(Status::parse);
            if h.first() != Some(&Status::WaitingForValidation) {
                return Err(format!("{id}: history does not start at creation: {h:?}"));
            }
            if let Some(w) = h.windows(2).find(|w| !legal_step(w[0], w[1])) {
                return Err(format!("{id}: illegal step {} → {} in {h:?}", w[0], w[1]));
            }
            if h.last().copied() != status {
                return Err(format!("{id}: status {status:?} is not the last of {h:?}"));
            }
            let processed = h.contains(&Status::Processed);
            let payments = v["relatedPayments"].as_array().cloned().unwrap_or_default();
            let expected = PaymentKey {
                connector: connector.clone(),
                reference: reference.clone(),
                payment_type: "TRANSFER".into(),
            }
            .id();
            if processed {
                if payments.len() != 1 || payments[0]["paymentID"] != expected.as_str() {
                    return Err(format!("{id}: processed, payments {payments:?}"));
                }
                match file {
                    Some(f) if f["initiationId"] == id.as_str() => {}
                    _ => return Err(format!("{id}: processed without its instruction {file:?}")),
                }
            } else {
                if !payments.is_empty() {
                    return Err(format!("{id}: never processed, payments {payments:?}"));
                }
                // Sent then interrupted (a pause): allowed only as an outcome-unknown failure.
                if file.is_some() && !h.contains(&Status::Failed) {
                    return Err(format!("{id}: an instruction but history {h:?}"));
                }
            }
            // Reversals: what is left is the initial amount less the processed reversals.
            let initial = int(&v["initialAmount"]).unwrap_or(-1);
            let left = int(&v["amount"]).unwrap_or(-1);
            let rows = db
                .query(
                    "SELECT reference, amount::text, status FROM transfer_reversals
                     WHERE transfer_initiation_id = $1",
                    &[id],
                )
                .await
                .map_err(|e| format!("reversals: {e}"))?;
            let mut reversed = 0i128;
            let mut done = 0usize;
            for r in &rows {
                let (reference, amount, rstatus): (String, String, String) =
                    (r.get(0), r.get(1), r.get(2));
                let amount: i128 = amount.parse().map_err(|e| format!("amount: {e}"))?;
                let file = files.get(&format!("{reference}.reversal.json"));
                if rstatus == "PROCESSED" {
                    reversed += amount;
                    done += 1;
                    if file.is_none_or(|f| f["initiationId"] != id.as_str()) {
                        return Err(format!("{id}: reversal {reference} without its file"));
                    }
                } else if file.is_some() && rstatus != "FAILED" {
                    return Err(format!("{id}: reversal {reference} {rstatus} has a file"));
                }
            }
            let finished = h
                .iter()
                .filter(|s| matches!(s, Status::PartiallyReversed | Status::Reversed))
                .count();
            if finished != done {
                return Err(format!("{id}: {done} processed reversals, history {h:?}"));
            }
            if left < 0 || left != initial - reversed {
                return Err(format!(
                    "{id}: left {left}, initial {initial}, reversed {reversed}"
                ));
            }
            if (left == 0) != (status == Some(Status::Reversed)) {
                return Err(format!("{id}: left {left} but status {status:?}"));
            }
        }
        Ok(())
    }
}

/// Runs `batches` on a fresh service; `Err` names the first broken rule.
async fn run(batches: &[Batch]) -> Result<Stats, String> {
    let s = Setup::start().await;
    let result = run_on(&s, batches).await;
    // Stopped, so that the services of many seeds do not pile up in the test process.
    s.app.shutdown.cancel();
    result
}

async fn run_on(s: &Setup, batches: &[Batch]) -> Result<Stats, String> {
    let mut world = World {
        s,
        slots: Default::default(),
        ids: BTreeMap::new(),
        blocked: false,
        reversals: 0,
        stats: Stats::default(),
    };
    for (i, batch) in batches.iter().enumerate() {
        world
            .batch(i, batch)
            .await
            .map_err(|e| format!("batch {i}: {e}"))?;
    }
    // The end: the connector running, the outbox restored, everything settled and consistent.
    let (code, body) = world.call(&Op::Resume, "").await;
    if code >= 500 {
        return Err(format!("final resume: {code} {body}"));
    }
    world.fault(Fault::Unblock)?;
    let snap = world.settle().await?;
    let connector = ConnectorKey::parse(&s.connector_id).expect("connector id");
    world
        .invariants(&snap, &connector)
        .await
        .map_err(|e| format!("at the end: {e}"))?;
    let (code, body) = call(&s.http, s.http.get(s.url("/transfer-initiations")), None).await;
    if code != 200 {
        return Err(format!("the service is not live: {code} {body}"));
    }
    Ok(world.stats)
}

/// Drops chunks of batches while the run still fails (best effort: runs are concurrent).
async fn shrink(mut batches: Vec<Batch>, mut error: String) -> (Vec<Batch>, String) {
    let mut chunk = batches.len() / 2;
    while chunk >= 1 {
        let mut start = 0;
        let mut progressed = false;
        while start < batches.len() {
            let mut candidate = batches.clone();
            candidate.drain(start..(start + chunk).min(batches.len()));
            match run(&candidate).await {
                Err(e) => {
                    batches = candidate;
                    error = e;
                    progressed = true;
                }
                Ok(_) => start += chunk,
            }
        }
        if !progressed {
            chunk /= 2;
        }
    }
    (batches, error)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[actix_rt::test]
async fn concurrent_calls_on_initiations_agree_with_the_machine() {
    let seeds: Vec<u64> = match std::env::var("TRANSFERS_MODEL_SEED") {
        Ok(seed) => vec![seed.parse().expect("TRANSFERS_MODEL_SEED is a number")],
        Err(_) => {
            let base = env_usize("TRANSFERS_MODEL_BASE", 0x7a11) as u64;
            let n = env_usize("TRANSFERS_MODEL_ITERATIONS", 6) as u64;
            (0..n).map(|i| base.wrapping_add(i)).collect()
        }
    };
    let per_seed = env_usize("TRANSFERS_MODEL_BATCHES", 10);
    let started = Instant::now();
    let mut total = Stats::default();
    for seed in &seeds {
        let batches = generate(*seed, per_seed);
        match run(&batches).await {
            Ok(stats) => {
                total.calls += stats.calls;
                total.successes += stats.successes;
            }
            Err(error) => {
                eprintln!("transfers model: seed {seed} failed: {error}");
                let (batches, error) = if std::env::var("TRANSFERS_MODEL_NO_SHRINK").is_ok() {
                    (batches, error)
                } else {
                    shrink(batches, error).await
                };
                panic!(
                    "seed {seed} (replay: TRANSFERS_MODEL_SEED={seed}): {error}\n  shrunk to {} \
                     batches: {batches:#?}",
                    batches.len()
                );
            }
        }
    }
    eprintln!(
        "transfers model: {} seeds x {per_seed} batches, {} calls ({} 2xx) in {:.1?}",
        seeds.len(),
        total.calls,
        total.successes,
        started.elapsed()
    );
}

/// Replays `batches` `times` times (the races they hold are timing-dependent).
async fn replay(batches: Vec<Batch>, times: usize) {
    for i in 0..times {
        if let Err(e) = run(&batches).await {
            panic!("replay {i}: {e}");
        }
    }
}

/// A retry racing a resume of its connector (seed 1001, shrunk): the resume fails "never
/// sent" the retry whose task is not recorded yet, the retry's dispatch meets the resume in
/// progress, and its own fallback FAILED was then refused — so the retry answered "cannot mark
/// failed …: its status is FAILED", an internal event's refusal instead of why it failed.
#[actix_rt::test]
async fn a_retry_racing_a_resume_answers_why_it_was_not_sent() {
    let batches = vec![
        Batch {
            ops: vec![Op::Get(0)],
            then: Fault::Block,
        },
        Batch {
            ops: vec![Op::Create {
                slot: 0,
                validated: true,
            }],
            then: Fault::Unblock,
        },
        Batch {
            ops: vec![Op::Pause],
            then: Fault::None,
        },
        Batch {
            ops: vec![Op::Resume, Op::Retry(0)],
            then: Fault::None,
        },
    ];
    replay(batches, 8).await;
}
