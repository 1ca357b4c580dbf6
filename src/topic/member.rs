//! One joined topic: the tasks that move its events. The receiver drains gossip without
//! ever waiting on JS (a gossip subscription that falls behind loses events for good),
//! verifies and sequences runs, and queues what is deliverable; a delivery task hands it
//! to JS a batch at a time (at most two unacknowledged); the sender cuts what JS staged
//! into signed runs; a heads task announces how far this member's session has got; the
//! repair task asks for what is missing (`repair.rs`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use alkdev_iroh_core::batch::{Batch, BatchPayload, Outbox, MAX_BATCH_BYTES};
use alkdev_iroh_core::codec::HEADER_LEN;
use alkdev_iroh_core::topic::envelope::{self, Envelope, EnvelopeError, Run, StreamKey, TopicId, RUN_OVERHEAD};
use alkdev_iroh_core::topic::retention::RetentionLog;
use alkdev_iroh_core::topic::stream::Stream;
use alkdev_iroh_core::topic::{cut_runs, MAX_MESSAGE_BYTES};
use bytes::{Bytes, BytesMut};
use iroh::{EndpointId, SecretKey};
use iroh_gossip::api::{Event, GossipReceiver, GossipSender};
use tokio::sync::{watch, Notify};
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::message::{TopicClosed, TopicMessage};
use super::push::Pushes;
use crate::mailbox::Address;

/// Event batches with JS that it has not acknowledged yet, at most.
const BATCHES_WITH_JS: u32 = 2;
/// A missing range waits this long for the runs still in flight before it is asked for.
pub const REPAIR_GRACE: Duration = Duration::from_millis(250);
/// Heads intervals after its join past which a member takes every new session from its start.
const SETTLED_AFTER_HEADS: u32 = 3;

/// What a member is configured with.
pub struct Settings {
    pub max_event: usize,
    pub max_buffered: usize,
    /// Bytes of events waiting for JS past which further runs are left to repair.
    pub receive_buffer: usize,
    pub heads_every: Duration,
}

/// One author session, as this member receives it.
pub struct Tracked {
    pub stream: Stream,
    /// The neighbour that delivered the latest evidence of a missing range.
    pub hint: Option<EndpointId>,
    pub missing_since: Option<Instant>,
    pub repairing: bool,
    /// Gossip lagged: ask the author for whatever follows, without knowing what is missing.
    pub probe: bool,
    /// Since when members other than the author have answered without the missing range.
    pub gone_since: Option<Instant>,
}

enum ToJs {
    Events { author: [u8; 32], frames: Bytes },
    Notice(TopicMessage),
}

pub struct State {
    pub outbox: Outbox,
    /// Bytes taken from the outbox and not yet handed to gossip.
    in_flight: usize,
    next_seq: u64,
    want_drain: bool,
    pub streams: HashMap<StreamKey, Tracked>,
    pub log: RetentionLog,
    to_js: VecDeque<ToJs>,
    to_js_bytes: usize,
    with_js: u32,
    /// Authors heard from (heads or runs), reported once each.
    members: HashSet<[u8; 32]>,
    pub neighbors: HashSet<EndpointId>,
    /// Authors already reported as not allowed (reported once, not per run).
    refused: HashSet<[u8; 32]>,
    /// Events handed to JS per author: for diagnosing a stall.
    delivered: HashMap<[u8; 32], u64>,
}

pub struct Member {
    pub topic: TopicId,
    pub me: EndpointId,
    key: SecretKey,
    pub session: u64,
    pub settings: Settings,
    allow: Option<HashSet<[u8; 32]>>,
    /// The members it joined through: asked again whenever it has no neighbour.
    bootstrap: Vec<EndpointId>,
    state: Mutex<State>,
    /// Taken when the member stops: gossip leaves the topic once no sender is left.
    sender: Mutex<Option<GossipSender>>,
    to_js: Address,
    wake_sender: Notify,
    wake_js: Notify,
    /// Bytes handed to the outbox, and (watched) bytes handed to gossip: `flush`.
    pub enqueued: AtomicU64,
    pub written: watch::Sender<u64>,
    /// Fires when the member stops (its `close()`, or the endpoint's).
    pub stopped: CancellationToken,
    /// Its runs on their way to each member (`push.rs`).
    pub pushes: Pushes,
    /// Set by the first `stop`: JS hears `closed` once.
    finished: std::sync::atomic::AtomicBool,
    started: Instant,
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Member {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        topic: TopicId,
        key: SecretKey,
        settings: Settings,
        allow: Option<HashSet<[u8; 32]>>,
        bootstrap: Vec<EndpointId>,
        log: RetentionLog,
        sender: GossipSender,
        to_js: Address,
        stopped: CancellationToken,
    ) -> Arc<Self> {
        let outbox = Outbox::new(settings.max_event, settings.max_buffered);
        Arc::new(Member {
            topic,
            me: key.public(),
            session: rand_session(),
            key,
            allow,
            bootstrap,
            state: Mutex::new(State {
                outbox,
                in_flight: 0,
                next_seq: 0,
                want_drain: false,
                streams: HashMap::new(),
                log,
                to_js: VecDeque::new(),
                to_js_bytes: 0,
                with_js: 0,
                members: HashSet::new(),
                neighbors: HashSet::new(),
                refused: HashSet::new(),
                delivered: HashMap::new(),
            }),
            settings,
            sender: Mutex::new(Some(sender)),
            to_js,
            wake_sender: Notify::new(),
            wake_js: Notify::new(),
            enqueued: AtomicU64::new(0),
            written: watch::channel(0).0,
            stopped,
            pushes: Pushes::default(),
            finished: std::sync::atomic::AtomicBool::new(false),
            started: Instant::now(),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn sender(&self) -> Option<GossipSender> {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn post(&self, message: TopicMessage) {
        self.to_js.post(message);
    }

    // ---- sending ----

    /// Called after JS queued frames: the sender takes them.
    pub fn queued(&self, bytes: usize) -> f64 {
        self.enqueued.fetch_add(bytes as u64, Ordering::AcqRel);
        self.wake_sender.notify_one();
        self.buffered() as f64
    }

    pub fn buffered(&self) -> usize {
        let st = self.state();
        st.outbox.len() + st.in_flight
    }

    pub fn want_drain(&self) {
        let mut st = self.state();
        if st.outbox.is_empty() && st.in_flight == 0 {
            drop(st);
            self.post(TopicMessage::Drain);
        } else {
            st.want_drain = true;
        }
    }

    /// Cuts what JS staged into signed runs and hands them to the push queues, in order.
    pub async fn send_loop(self: Arc<Self>) {
        let max_run = MAX_MESSAGE_BYTES - RUN_OVERHEAD;
        loop {
            let (chunks, first) = {
                let mut st = self.state();
                let chunks = st.outbox.take();
                let bytes: usize = chunks.iter().map(Bytes::len).sum();
                st.in_flight += bytes;
                (chunks, st.next_seq)
            };
            if chunks.is_empty() {
                tokio::select! {
                    _ = self.wake_sender.notified() => continue,
                    _ = self.stopped.cancelled() => return,
                }
            }
            let staged = join(chunks);
            let mut seq = first;
            for (range, count) in cut_runs(&staged, max_run) {
                let message = envelope::encode_run(&self.topic, &self.key, self.session, seq, &staged[range.clone()]);
                let run = Run {
                    key: StreamKey { author: *self.me.as_bytes(), session: self.session },
                    first: seq,
                    count,
                    frames: staged.slice(range.clone()),
                    message: message.clone(),
                };
                seq += count;
                {
                    let mut st = self.state();
                    st.next_seq = seq;
                    let now = self.now_ms();
                    st.log.keep(&run, now);
                }
                if self.sender().is_none() {
                    return;
                }
                self.pushes.send(&message);
                // Wait for a peer that is behind (not for long: a slow one is left to repair).
                tokio::select! {
                    _ = self.pushes.wait_while(Pushes::congested) => {}
                    _ = self.stopped.cancelled() => return,
                }
                let drained = {
                    let mut st = self.state();
                    st.in_flight -= range.len();
                    let drained = st.want_drain && st.in_flight == 0 && st.outbox.is_empty();
                    if drained {
                        st.want_drain = false;
                    }
                    drained
                };
                self.written.send_modify(|w| *w += range.len() as u64);
                if drained {
                    self.post(TopicMessage::Drain);
                }
            }
        }
    }

    /// Announces this session's heads now and then: a member that lost the last run of a
    /// burst hears of it here, and members hear of each other before anything is sent.
    pub async fn heads_loop(self: Arc<Self>) {
        let mut nonce = 0u64;
        loop {
            nonce += 1;
            let next = self.state().next_seq;
            let message = envelope::encode_heads(&self.topic, &self.key, self.session, next, nonce);
            let Some(sender) = self.sender() else { return };
            tokio::select! {
                _ = sender.broadcast(message) => {}
                _ = self.stopped.cancelled() => return,
            }
            // A member left with no neighbour (say its old connections were still being
            // torn down when it rejoined after a restart) hears and reaches nobody: join
            // again through the bootstrap members and every member heard from.
            let lonely: Option<Vec<EndpointId>> = {
                let st = self.state();
                st.neighbors.is_empty().then(|| {
                    let heard = st.members.iter().filter_map(|m| EndpointId::from_bytes(m).ok());
                    self.bootstrap.iter().copied().chain(heard).filter(|id| *id != self.me).collect()
                })
            };
            if let Some(peers) = lonely.filter(|p| !p.is_empty()) {
                tokio::select! {
                    _ = sender.join_peers(peers) => {}
                    _ = self.stopped.cancelled() => return,
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.heads_every) => {}
                _ = self.stopped.cancelled() => return,
            }
        }
    }

    // ---- receiving ----

    /// Drains gossip: never waits on JS.
    pub async fn receive_loop(self: Arc<Self>, mut receiver: GossipReceiver) {
        loop {
            let event = tokio::select! {
                e = receiver.next() => e,
                _ = self.stopped.cancelled() => return,
            };
            match event {
                Some(Ok(Event::Received(message))) => self.take_message(message.content, Some(message.delivered_from), false),
                Some(Ok(Event::NeighborUp(id))) => {
                    self.state().neighbors.insert(id);
                    self.pushes.hear(id);
                    self.notice(TopicMessage::Neighbor { node_id: id.to_string(), up: true });
                }
                Some(Ok(Event::NeighborDown(id))) => {
                    self.state().neighbors.remove(&id);
                    self.notice(TopicMessage::Neighbor { node_id: id.to_string(), up: false });
                }
                // Gossip dropped events on their way here: ask every author for what follows.
                Some(Ok(Event::Lagged)) => {
                    let mut st = self.state();
                    for tracked in st.streams.values_mut() {
                        tracked.probe = true;
                        tracked.missing_since.get_or_insert_with(Instant::now);
                    }
                }
                Some(Err(e)) => {
                    return self.stop(TopicClosed::error(&format!("gossip failed: {e}"), "ERR_IROH_CONNECTION_CLOSED"))
                }
                None => return self.stop(TopicClosed::error("the gossip engine stopped", "ERR_IROH_CONNECTION_CLOSED")),
            }
        }
    }

    /// A gossip message or a repaired run. `repaired`: it answers a request of ours.
    pub fn take_message(&self, content: Bytes, from: Option<EndpointId>, repaired: bool) {
        match envelope::decode(&self.topic, content, self.settings.max_event) {
            Ok(Envelope::Run(run)) => self.take_run(run, from, repaired),
            Ok(Envelope::Heads(heads)) => {
                if heads.key.author == *self.me.as_bytes() || !self.admits(&heads.key.author) {
                    return;
                }
                if let Ok(id) = EndpointId::from_bytes(&heads.key.author) {
                    self.pushes.hear(id);
                }
                let mut st = self.state();
                self.met(&mut st, heads.key.author);
                let first = self.first_of_new_session(heads.next);
                let tracked = st.streams.entry(heads.key).or_insert_with(|| Tracked::new(Stream::starting_at(first)));
                tracked.stream.note_end(heads.next);
                tracked.saw_missing(from);
            }
            Err(e) => self.refused_envelope(e, None),
        }
    }

    /// Reports a message that did not decode; `sender` names who sent a malformed one.
    fn refused_envelope(&self, error: EnvelopeError, sender: Option<&EndpointId>) {
        self.notice(match error {
            EnvelopeError::BadSignature { author } => {
                TopicMessage::Dropped { author: Some(hex(&author)), reason: "a run whose signature does not verify".into() }
            }
            EnvelopeError::Malformed(why) => TopicMessage::Dropped { author: sender.map(|id| hex(id.as_bytes())), reason: why },
        })
    }

    /// A run its author pushed to us directly. Only authors push: a run of someone else's
    /// on a push stream is dropped. A pushed run that repair delivered first is no replay.
    pub fn take_pushed(&self, content: Bytes, from: EndpointId) {
        match envelope::decode(&self.topic, content, self.settings.max_event) {
            Ok(Envelope::Run(run)) if run.key.author == *from.as_bytes() => self.take_run(run, Some(from), true),
            Ok(_) => self.notice(TopicMessage::Dropped {
                author: Some(hex(from.as_bytes())),
                reason: "a pushed message that is not a run of the member that pushed it".into(),
            }),
            Err(e) => self.refused_envelope(e, Some(&from)),
        }
    }

    /// A push stream announced a run longer than any run can be: it is closed.
    pub fn pushed_malformed(&self, from: EndpointId, len: usize) {
        self.notice(TopicMessage::Dropped {
            author: Some(hex(from.as_bytes())),
            reason: format!("a pushed run of {len} bytes, more than a run can hold"),
        });
    }

    fn admits(&self, author: &[u8; 32]) -> bool {
        if self.allow.as_ref().is_none_or(|a| a.contains(author)) {
            return true;
        }
        if self.state().refused.insert(*author) {
            self.notice(TopicMessage::Dropped {
                author: Some(hex(author)),
                reason: "an event from an author this topic does not allow".into(),
            });
        }
        false
    }

    /// Where delivery of a session first heard of at `seen` starts. A member that has
    /// been joined for a few heads intervals would have heard of any older session by now,
    /// so a session new to it started after it joined: all of it is delivered (repair
    /// fetches what came before `seen`). A member that just joined starts where it came in.
    fn first_of_new_session(&self, seen: u64) -> u64 {
        if self.started.elapsed() >= self.settings.heads_every * SETTLED_AFTER_HEADS {
            0
        } else {
            seen
        }
    }

    fn met(&self, st: &mut State, author: [u8; 32]) {
        if st.members.insert(author) {
            if let Ok(id) = EndpointId::from_bytes(&author) {
                self.pushes.hear(id);
            }
            self.queue(st, ToJs::Notice(TopicMessage::Member { node_id: hex(&author) }));
        }
    }

    fn take_run(&self, run: Run, from: Option<EndpointId>, repaired: bool) {
        if run.key.author == *self.me.as_bytes() || !self.admits(&run.key.author) {
            return;
        }
        let mut st = self.state();
        let now = self.now_ms();
        st.log.keep(&run, now);
        self.met(&mut st, run.key.author);
        let key = run.key;
        let over = st.to_js_bytes > self.settings.receive_buffer;
        let first = self.first_of_new_session(run.first);
        let tracked = st.streams.entry(key).or_insert_with(|| Tracked::new(Stream::starting_at(first)));
        if over {
            // JS is far behind: leave the run in the log, where the repair finds it once JS
            // has caught up, rather than queue without bound.
            tracked.stream.note_end(run.end());
            tracked.saw_missing(from);
            return;
        }
        let before = tracked.stream.next();
        let end = run.end();
        let ready = tracked.stream.accept(run);
        let replayed = !repaired && ready.is_empty() && end <= before;
        if tracked.stream.missing().is_some() {
            tracked.saw_missing(from);
        } else if !tracked.probe {
            tracked.missing_since = None;
        }
        for frames in ready {
            self.queue(&mut st, ToJs::Events { author: key.author, frames });
        }
        drop(st);
        if replayed {
            self.notice(TopicMessage::Dropped {
                author: Some(hex(&key.author)),
                reason: "a run that was delivered already (a replay)".into(),
            });
        }
    }

    /// Skips a range nobody has any more: JS hears `gap`, then what follows it.
    pub fn skip(&self, key: StreamKey, from: u64, to: u64) {
        let mut st = self.state();
        let Some(tracked) = st.streams.get_mut(&key) else { return };
        if tracked.stream.next() != from {
            return;
        }
        let ready = tracked.stream.skip_to(to);
        tracked.missing_since = tracked.stream.missing().map(|_| Instant::now());
        self.queue(&mut st, ToJs::Notice(TopicMessage::Gap { author: hex(&key.author), from: from as f64, to: to as f64 }));
        for frames in ready {
            self.queue(&mut st, ToJs::Events { author: key.author, frames });
        }
    }

    /// Whether JS's queue has room for repaired runs.
    pub fn has_room(&self) -> bool {
        self.state().to_js_bytes <= self.settings.receive_buffer
    }

    fn notice(&self, message: TopicMessage) {
        let mut st = self.state();
        self.queue(&mut st, ToJs::Notice(message));
    }

    fn queue(&self, st: &mut State, item: ToJs) {
        if let ToJs::Events { frames, .. } = &item {
            st.to_js_bytes += frames.len();
        }
        st.to_js.push_back(item);
        self.wake_js.notify_one();
    }

    pub fn debug_state(&self) -> String {
        let st = self.state();
        let streams: Vec<serde_json::Value> = st
            .streams
            .iter()
            .map(|(k, t)| {
                serde_json::json!({
                    "author": hex(&k.author)[..8],
                    "session": k.session,
                    "delivered": st.delivered.get(&k.author).copied().unwrap_or(0),
                    "next": t.stream.next(),
                    "knownEnd": t.stream.known_end(),
                    "held": t.stream.held_bytes(),
                    "missing": t.stream.missing(),
                    "repairing": t.repairing,
                    "probe": t.probe,
                    "since": t.missing_since.map(|s| s.elapsed().as_millis() as u64),
                })
            })
            .collect();
        serde_json::json!({
            "toJs": st.to_js.len(),
            "toJsBytes": st.to_js_bytes,
            "withJs": st.with_js,
            "neighbors": st.neighbors.len(),
            "pushPeers": self.pushes.peer_count(),
            "pushQueued": self.pushes.queued_bytes(),
            "streams": streams,
        })
        .to_string()
    }

    // ---- to JS ----

    /// JS took the last batch.
    pub fn ack(&self) {
        let mut st = self.state();
        st.with_js = st.with_js.saturating_sub(1);
        self.wake_js.notify_one();
    }

    /// Hands queued events to JS, a batch of one author's events at a time.
    pub async fn deliver_loop(self: Arc<Self>) {
        loop {
            tokio::select! {
                _ = self.wake_js.notified() => {}
                _ = self.stopped.cancelled() => return,
            }
            while let Some(message) = self.next_for_js() {
                self.post(message);
            }
        }
    }

    fn next_for_js(&self) -> Option<TopicMessage> {
        let mut st = self.state();
        loop {
            match st.to_js.front()? {
                ToJs::Notice(_) => {
                    let Some(ToJs::Notice(message)) = st.to_js.pop_front() else { return None };
                    return Some(message);
                }
                ToJs::Events { author, .. } => {
                    if st.with_js >= BATCHES_WITH_JS {
                        return None;
                    }
                    let author = *author;
                    let mut batch = Batch::default();
                    let mut bad = 0;
                    while let Some(ToJs::Events { author: a, frames }) = st.to_js.front() {
                        if *a != author || (!batch.is_empty() && batch.bytes() + frames.len() > MAX_BATCH_BYTES) {
                            break;
                        }
                        let Some(ToJs::Events { frames, .. }) = st.to_js.pop_front() else { break };
                        st.to_js_bytes -= frames.len();
                        let mut count = 0;
                        for_each_frame(&frames, |frame| {
                            count += 1;
                            if batch.push_json(frame).is_err() {
                                bad += 1;
                            }
                        });
                        *st.delivered.entry(author).or_default() += count;
                    }
                    if bad > 0 {
                        st.to_js.push_front(ToJs::Notice(TopicMessage::Dropped {
                            author: Some(hex(&author)),
                            reason: format!("{bad} events that are not JSON objects with a string type"),
                        }));
                    }
                    if let Some(BatchPayload::Json(json)) = batch.take() {
                        st.with_js += 1;
                        return Some(TopicMessage::Events { author: hex(&author), json });
                    }
                }
            }
        }
    }

    /// Stops the member: its tasks end, JS hears `closed` (once).
    pub fn stop(&self, closed: TopicClosed) {
        // The endpoint's close may have fired `stopped` (a child of its token) already.
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        self.stopped.cancel();
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Let go of what it holds now, not when JS collects its handle.
        {
            let mut st = self.state();
            st.log = RetentionLog::default();
            st.streams.clear();
            st.to_js.clear();
            st.to_js_bytes = 0;
            st.outbox.take();
        }
        self.pushes.clear();
        self.post(TopicMessage::Closed { closed });
    }
}

impl Tracked {
    fn new(stream: Stream) -> Self {
        Tracked { stream, hint: None, missing_since: None, repairing: false, probe: false, gone_since: None }
    }

    fn saw_missing(&mut self, from: Option<EndpointId>) {
        if self.stream.missing().is_some() {
            self.missing_since.get_or_insert_with(Instant::now);
            if from.is_some() {
                self.hint = from;
            }
        }
    }
}

fn join(chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.into_iter().next().unwrap_or_default();
    }
    let mut out = BytesMut::with_capacity(chunks.iter().map(Bytes::len).sum());
    for c in chunks {
        out.extend_from_slice(&c);
    }
    out.freeze()
}

fn for_each_frame(frames: &[u8], mut f: impl FnMut(&[u8])) {
    let mut at = 0;
    while at + HEADER_LEN <= frames.len() {
        let len = u32::from_be_bytes([frames[at], frames[at + 1], frames[at + 2], frames[at + 3]]) as usize;
        let end = (at + HEADER_LEN + len).min(frames.len());
        f(&frames[at + HEADER_LEN..end]);
        at = end;
    }
}

/// A random session number: a member restarted from its key file starts a new session.
fn rand_session() -> u64 {
    let bytes = alkdev_iroh_core::identity::generate_secret_key().to_bytes();
    u64::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]])
}
