//! Topics: `joinTopic` and the native half of a topic target. One iroh-gossip per
//! endpoint finds the members and spreads their heads (created on the first join, ALPN
//! `GOSSIP_ALPN`); authors push their runs to each member directly (`topic/push.rs`,
//! on the repair connections of `REPAIR_ALPN`); the rules
//! that make delivery exact (signed runs, per-author order, repair, gaps) are the core's
//! `topic` module, run by `topic/member.rs` and `topic/repair.rs`. Topic connections never
//! reach `accept()`: the endpoint's accept loop hands them to `Topics::route`.

mod gate;
mod member;
mod message;
mod push;
mod repair;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use alkdev_iroh_core::batch::OutboxError;
use alkdev_iroh_core::codec;
use alkdev_iroh_core::identity;
use alkdev_iroh_core::topic::envelope::{TopicId, RUN_OVERHEAD};
use alkdev_iroh_core::topic::retention::{RetentionLimits, RetentionLog};
use alkdev_iroh_core::topic::{topic_id, MAX_MESSAGE_BYTES};
use iroh::address_lookup::memory::MemoryLookup;
use iroh::EndpointAddr;
use iroh_gossip::api::JoinOptions;
use iroh_gossip::net::Gossip;
use iroh_gossip::proto::TopicId as GossipTopicId;
use napi::bindgen_prelude::{Buffer, Either, PromiseRaw};
use napi::Env;
use napi_derive::napi;

pub use gate::{Gate, GateHook};
use member::{Member, Settings};
pub use message::{TopicClosed, TopicMessage};
use repair::Dialer;

use crate::connection_state::ConnOwner;
use crate::endpoint::{Endpoint, EndpointAddrInfo};
use crate::error::{CodedError, ErrorCode, IrohError, IrohResult};
use crate::mailbox::Address;
use crate::pending::spawn;
use crate::pump::PumpLimits;

pub const GOSSIP_ALPN: &[u8] = b"alkdev-iroh/topic/1";
pub const REPAIR_ALPN: &[u8] = b"alkdev-iroh/topic-repair/1";

/// The largest event a run can carry.
const MAX_EVENT_BYTES: usize = MAX_MESSAGE_BYTES - RUN_OVERHEAD - codec::HEADER_LEN;
const DEFAULT_MAX_BUFFERED_BYTES: usize = 8 * 1024 * 1024;
const DEFAULT_RECEIVE_BUFFER_BYTES: usize = 32 * 1024 * 1024;
const DEFAULT_HEADS_INTERVAL: Duration = Duration::from_secs(1);
/// Gossip's queue towards our receiver task, which drains it at once: roomy so that a
/// burst never makes it lag.
const SUBSCRIPTION_CAPACITY: usize = 65_536;
/// How long `close()` waits for queued events to be written to the members.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The endpoint's gossip and its joined topics.
pub struct Topics {
    gossip: Gossip,
    lookup: MemoryLookup,
    gate: Arc<Gate>,
    members: Mutex<HashMap<TopicId, Weak<Member>>>,
    dialer: Arc<Dialer>,
    /// The endpoint's close token and the tasks its close waits for.
    closed: tokio_util::sync::CancellationToken,
    tasks: tokio_util::task::TaskTracker,
}

impl Topics {
    pub(crate) fn new(ep: &iroh::Endpoint, gate: Arc<Gate>, owner: &ConnOwner) -> IrohResult<Arc<Self>> {
        let lookup = MemoryLookup::new();
        ep.address_lookup().map_err(|_| IrohError::endpoint_closed())?.add(lookup.clone());
        let gossip = Gossip::builder().max_message_size(MAX_MESSAGE_BYTES).alpn(GOSSIP_ALPN).spawn(ep.clone());
        Ok(Arc::new(Topics {
            gossip,
            lookup,
            gate,
            members: Mutex::new(HashMap::new()),
            dialer: Arc::new(Dialer::new(ep.clone())),
            closed: owner.closed.clone(),
            tasks: owner.tasks.clone(),
        }))
    }

    fn member(&self, topic: &TopicId) -> Option<Arc<Member>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner()).get(topic).and_then(Weak::upgrade)
    }

    /// Takes a topic connection off the accept loop's hands; gives any other back.
    pub fn route(self: &Arc<Self>, conn: iroh::endpoint::Connection) -> Option<iroh::endpoint::Connection> {
        if conn.alpn() == GOSSIP_ALPN {
            let gossip = self.gossip.clone();
            tokio::spawn(self.tasks.track_future(async move {
                if let Err(e) = gossip.handle_connection(conn).await {
                    tracing::debug!("gossip did not take a connection: {e}");
                }
            }));
            return None;
        }
        if conn.alpn() == REPAIR_ALPN {
            let serving = repair::serve(conn, Arc::downgrade(self), self.closed.clone(), self.tasks.clone());
            tokio::spawn(self.tasks.track_future(serving));
            return None;
        }
        Some(conn)
    }

    /// Stops every member and the gossip engine: the endpoint is closing.
    pub async fn shutdown(&self) {
        let members: Vec<Arc<Member>> =
            self.members.lock().unwrap_or_else(|e| e.into_inner()).drain().filter_map(|(_, m)| m.upgrade()).collect();
        for m in members {
            m.stop(TopicClosed::local(0, "the endpoint closed"));
        }
        self.dialer.forget_all();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.gossip.shutdown()).await;
    }
}

/// What `joinTopic` hands the addon, after lib/options.js checked the user's `TopicOptions`.
#[napi(object)]
pub struct NativeTopicOptions {
    /// Members to join through: node ids, tickets or `addr()` objects.
    pub bootstrap: Option<Vec<Either<String, EndpointAddrInfo>>>,
    /// Node ids that may be members; anyone when absent.
    pub allow: Option<Vec<String>>,
    pub max_event_bytes: Option<u32>,
    pub max_buffered_bytes: Option<u32>,
    pub receive_buffer_bytes: Option<u32>,
    pub retention_bytes: Option<u32>,
    pub retention_ms: Option<u32>,
    pub heads_interval_ms: Option<u32>,
}

/// Joins the topic `name` on `endpoint`; what the member hears goes to mailbox address `to`.
#[napi(catch_unwind, ts_return_type = "Promise<TopicPump>")]
pub fn join_topic<'env>(
    env: &'env Env,
    endpoint: &Endpoint,
    name: String,
    options: NativeTopicOptions,
    #[napi(ts_arg_type = "number")] to: u32,
) -> napi::Result<PromiseRaw<'env, TopicPump>> {
    let to_js = Address::new(to).map_err(|e| napi::Error::from_reason(e.message))?;
    let shared = endpoint.shared().clone();
    spawn(env, async move {
        let max_event = options.max_event_bytes.map_or(MAX_EVENT_BYTES, |n| n as usize);
        if max_event == 0 || max_event > MAX_EVENT_BYTES {
            return Err(IrohError::invalid_argument(format!("maxEventBytes must be between 1 and {MAX_EVENT_BYTES}")));
        }
        let allow = options
            .allow
            .map(|ids| ids.iter().map(|id| identity::parse_node_id(id)).collect::<IrohResult<HashSet<_>>>())
            .transpose()?;
        let mut bootstrap = Vec::new();
        for target in options.bootstrap.unwrap_or_default() {
            let addr: EndpointAddr = match &target {
                Either::A(s) => identity::parse_target(s)?,
                Either::B(a) => identity::addr_from_parts(&a.node_id, a.relay_url.as_deref(), &a.direct_addresses)?,
            };
            bootstrap.push(addr);
        }
        let (ep, topics) = shared.topics()?;
        let topic = topic_id(&name);
        if topics.member(&topic).is_some() {
            return Err(IrohError::invalid_argument(format!("this endpoint has joined topic {name:?} already")));
        }
        topics.gate.set(topic, allow.clone());
        let mut ids = Vec::new();
        for addr in bootstrap {
            ids.push(addr.id);
            if !addr.addrs.is_empty() {
                topics.lookup.add_endpoint_info(addr);
            }
        }
        ids.retain(|id| *id != ep.id());
        let join = JoinOptions { bootstrap: ids.iter().copied().collect(), subscription_capacity: SUBSCRIPTION_CAPACITY };
        let subscription = topics
            .gossip
            .subscribe_with_opts(GossipTopicId::from_bytes(topic), join)
            .await
            .map_err(|e| IrohError::new(ErrorCode::Connect, format!("cannot join topic {name:?}: {e}")))?;
        let (sender, receiver) = subscription.split();
        let settings = Settings {
            max_event,
            max_buffered: options.max_buffered_bytes.map_or(DEFAULT_MAX_BUFFERED_BYTES, |n| n as usize),
            receive_buffer: options.receive_buffer_bytes.map_or(DEFAULT_RECEIVE_BUFFER_BYTES, |n| n as usize),
            heads_every: options.heads_interval_ms.map_or(DEFAULT_HEADS_INTERVAL, |ms| Duration::from_millis(ms.max(10).into())),
        };
        let mut limits = RetentionLimits::default();
        if let Some(b) = options.retention_bytes {
            limits.max_bytes = b as usize;
        }
        if let Some(ms) = options.retention_ms {
            limits.max_age_ms = ms.into();
        }
        let allow = allow.map(|ids| ids.iter().map(|id| *id.as_bytes()).collect());
        let stopped = topics.closed.child_token();
        let member =
            Member::new(topic, ep.secret_key().clone(), settings, allow, ids, RetentionLog::new(limits), sender, to_js, stopped);
        topics.members.lock().unwrap_or_else(|e| e.into_inner()).insert(topic, Arc::downgrade(&member));
        let tasks = &topics.tasks;
        tokio::spawn(tasks.track_future(member.clone().receive_loop(receiver)));
        tokio::spawn(tasks.track_future(member.clone().send_loop()));
        tokio::spawn(tasks.track_future(member.clone().heads_loop()));
        tokio::spawn(tasks.track_future(member.clone().deliver_loop()));
        tokio::spawn(tasks.track_future(repair::repair_loop(member.clone(), topics.dialer.clone(), tasks.clone())));
        tokio::spawn(tasks.track_future(push::push_loop(member.clone(), topics.dialer.clone(), tasks.clone())));
        Ok(TopicPump { member, topics: Arc::downgrade(&topics) })
    })
}

/// The native half of a topic target: the raw pump interface of lib/pump.d.ts.
#[napi]
pub struct TopicPump {
    member: Arc<Member>,
    topics: Weak<Topics>,
}

impl TopicPump {
    fn check_open(&self) -> IrohResult<()> {
        if self.member.stopped.is_cancelled() {
            return Err(IrohError::new(ErrorCode::ConnectionClosed, "the topic is closed"));
        }
        Ok(())
    }

    fn leave(&self) {
        if let Some(topics) = self.topics.upgrade() {
            let mut members = topics.members.lock().unwrap_or_else(|e| e.into_inner());
            if members.get(&self.member.topic).is_some_and(|m| m.ptr_eq(&Arc::downgrade(&self.member))) {
                members.remove(&self.member.topic);
                topics.gate.remove(&self.member.topic);
            }
        }
    }
}

#[napi]
impl TopicPump {
    /// Queues one serialized event; throws `ERR_IROH_FRAME_TOO_LARGE` past `maxEventBytes`
    /// and `ERR_IROH_BUFFER_FULL` past `maxBufferedBytes`.
    #[napi(catch_unwind)]
    pub fn send(&self, payload: &[u8]) -> Result<f64, CodedError> {
        self.check_open()?;
        let pushed = {
            let mut st = self.member.state();
            st.outbox.push(payload, 0)
        };
        match pushed {
            Ok(len) => Ok(self.member.queued(len)),
            Err(OutboxError::FrameTooLarge { len, max }) => Err(IrohError::new(
                ErrorCode::FrameTooLarge,
                format!("the event is {len} bytes serialized, more than maxEventBytes ({max})"),
            )
            .into()),
            Err(OutboxError::Full { buffered, len, max }) => {
                self.member.want_drain();
                Err(IrohError::new(
                    ErrorCode::BufferFull,
                    format!("{buffered} bytes are waiting to be sent and {len} more would pass maxBufferedBytes ({max}): wait for flush() or the drain event"),
                )
                .into())
            }
        }
    }

    /// Queues frames JS encoded and checked itself (wire format, back to back).
    #[napi(catch_unwind)]
    pub fn send_frames(&self, frames: &[u8]) -> Result<f64, CodedError> {
        self.check_open()?;
        codec::check_frames(frames, self.member.settings.max_event)
            .map_err(|e| IrohError::new(ErrorCode::Internal, format!("badly staged frames: {e}")))?;
        self.member.state().outbox.push_frames(frames);
        Ok(self.member.queued(frames.len()))
    }

    /// Like `sendFrames`, taking the staging buffer itself.
    #[napi(catch_unwind)]
    pub fn send_staged(&self, frames: Buffer) -> Result<f64, CodedError> {
        self.check_open()?;
        codec::check_frames(&frames, self.member.settings.max_event)
            .map_err(|e| IrohError::new(ErrorCode::Internal, format!("badly staged frames: {e}")))?;
        let len = frames.len();
        self.member.state().outbox.push_owned(bytes::Bytes::from_owner(frames));
        Ok(self.member.queued(len))
    }

    #[napi(catch_unwind)]
    pub fn limits(&self) -> PumpLimits {
        PumpLimits {
            max_frame_bytes: self.member.settings.max_event as f64,
            max_buffered_bytes: self.member.settings.max_buffered as f64,
            broadcast_id: 0,
        }
    }

    #[napi(catch_unwind)]
    pub fn buffered_amount(&self) -> f64 {
        self.member.buffered() as f64
    }

    #[napi(catch_unwind)]
    pub fn want_drain(&self) {
        self.member.want_drain();
    }

    /// Nothing to probe: a topic has no one peer.
    #[napi(catch_unwind)]
    pub fn nudge(&self) {}

    #[napi(catch_unwind)]
    pub fn ack(&self) {
        self.member.ack();
    }

    /// A topic event JS could not parse: dropped (the JS side reports it).
    #[napi(catch_unwind)]
    pub fn malformed_frame(&self, _message: String) {}

    /// The topic's id (hex): what its signatures cover. Package-internal, for tests.
    #[napi(catch_unwind)]
    pub fn topic_id(&self) -> String {
        self.member.topic.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Where each author session stands, as JSON: for diagnosing a stall. Package-internal.
    #[napi(catch_unwind)]
    pub fn debug_state(&self) -> String {
        self.member.debug_state()
    }

    /// This member's session number (it changes each time the member joins).
    #[napi(catch_unwind)]
    pub fn session(&self) -> String {
        self.member.session.to_string()
    }

    /// Package-internal, for tests of hostile members: gossips `message` as it is.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn raw_broadcast<'env>(&self, env: &'env Env, message: Buffer) -> napi::Result<PromiseRaw<'env, ()>> {
        let sender = self.member.sender();
        let message = bytes::Bytes::copy_from_slice(&message);
        spawn(env, async move {
            let sender = sender.ok_or_else(|| IrohError::new(ErrorCode::ConnectionClosed, "the topic is closed"))?;
            sender.broadcast(message).await.map_err(|e| IrohError::new(ErrorCode::ConnectionClosed, e.to_string()))
        })
    }

    /// Resolves once everything queued so far has been handed to gossip.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn flush<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let member = self.member.clone();
        let target = member.enqueued.load(Ordering::Acquire);
        spawn(env, async move {
            let mut written = member.written.subscribe();
            tokio::select! {
                r = written.wait_for(|w| *w >= target) => r.map(|_| ()).map_err(|_| IrohError::new(ErrorCode::ConnectionClosed, "the topic closed")),
                _ = member.stopped.cancelled() => {
                    if *member.written.borrow() >= target { Ok(()) } else { Err(IrohError::new(ErrorCode::ConnectionClosed, "the topic closed before all was sent")) }
                }
            }
        })
    }

    /// Hands what is queued to the members (bounded by `CLOSE_WAIT`), then leaves the topic.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env, code: Option<u32>, reason: Option<String>) -> napi::Result<PromiseRaw<'env, ()>> {
        let member = self.member.clone();
        self.leave();
        spawn(env, async move {
            let target = member.enqueued.load(Ordering::Acquire);
            let mut written = member.written.subscribe();
            let handed_over = async {
                let _ = written.wait_for(|w| *w >= target).await;
                member.pushes.wait_while(|p| !p.idle()).await;
            };
            tokio::select! {
                _ = tokio::time::timeout(CLOSE_WAIT, handed_over) => {}
                _ = member.stopped.cancelled() => {}
            }
            member.stop(TopicClosed::local(code.unwrap_or(0), &reason.unwrap_or_default()));
            Ok(())
        })
    }
}
