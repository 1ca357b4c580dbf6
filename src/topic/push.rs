//! Push: an author hands each of its runs straight to every member it has heard of, over
//! the repair connection (one unidirectional stream per topic and peer). Gossip carries
//! only heads and membership. Its actor awaits each neighbour's send queue, and a
//! neighbour's receive loop awaits the actor, so under a burst two members waiting on
//! each other stalled the whole topic; a push stream waits on nothing but its own peer.
//! A slow member gets its own bounded queue: once it is full, its runs wait in the
//! author's retention log for its repair, and the author stops waiting for it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use alkdev_iroh_core::topic::MAX_MESSAGE_BYTES;
use bytes::Bytes;
use iroh::endpoint::RecvStream;
use iroh::EndpointId;
use tokio::sync::Notify;
use tokio_util::task::TaskTracker;

use super::member::Member;
use super::repair::Dialer;
use super::Topics;

/// The sender waits while a peer has more than this queued, for a while (`SLOW_AFTER`).
pub const SOFT_BYTES: usize = 1024 * 1024;
/// A peer whose queue stays above `SOFT_BYTES` this long is slow: the sender goes on without it.
const SLOW_AFTER: Duration = Duration::from_secs(1);
/// Past this, a peer's runs are not queued: it repairs them from the log.
const HARD_BYTES: usize = 16 * 1024 * 1024;
/// A peer that could not be reached is tried again when heard from after this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `wait_while` looks again without a wake-up.
const RECHECK: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Queue {
    runs: VecDeque<Bytes>,
    bytes: usize,
    over_since: Option<Instant>,
}

#[derive(Default)]
pub struct Peer {
    queue: Mutex<Queue>,
    wake: Notify,
}

impl Peer {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct Book {
    peers: HashMap<EndpointId, Arc<Peer>>,
    /// Heard of, with no writer yet.
    wanted: HashSet<EndpointId>,
    /// Could not be reached: not wanted again before then.
    retry_at: HashMap<EndpointId, Instant>,
}

/// One member's push queues, one per peer.
#[derive(Default)]
pub struct Pushes {
    book: Mutex<Book>,
    /// A member was heard of: the push task gives it a writer.
    wanted: Notify,
    /// A queue shrank or went away: a waiting sender looks again.
    drained: Notify,
}

impl Pushes {
    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `id` is a member (its heads or runs arrived, or gossip made it a neighbour).
    pub fn hear(&self, id: EndpointId) {
        let mut book = self.book();
        if book.peers.contains_key(&id) || book.wanted.contains(&id) {
            return;
        }
        if book.retry_at.get(&id).is_some_and(|at| Instant::now() < *at) {
            return;
        }
        book.retry_at.remove(&id);
        book.wanted.insert(id);
        drop(book);
        self.wanted.notify_one();
    }

    /// Queues `message` (a signed run) for every peer with room.
    pub fn send(&self, message: &Bytes) {
        let now = Instant::now();
        for peer in self.book().peers.values() {
            let mut q = peer.queue();
            if q.bytes + message.len() > HARD_BYTES {
                continue;
            }
            q.bytes += message.len();
            q.runs.push_back(message.clone());
            if q.bytes > SOFT_BYTES {
                q.over_since.get_or_insert(now);
            }
            drop(q);
            peer.wake.notify_one();
        }
    }

    /// Whether a peer that is not yet slow has more than `SOFT_BYTES` queued.
    pub fn congested(&self) -> bool {
        let now = Instant::now();
        self.book().peers.values().any(|p| p.queue().over_since.is_some_and(|since| now.duration_since(since) < SLOW_AFTER))
    }

    /// Resolves once `busy` is false. A queue that shrinks wakes it; it also looks again
    /// every `RECHECK`, since a peer becomes slow (and so stops counting) without a wake-up.
    pub async fn wait_while(&self, busy: impl Fn(&Self) -> bool) {
        while busy(self) {
            tokio::select! {
                _ = self.drained.notified() => {}
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    }

    /// Whether every queue is empty.
    pub fn idle(&self) -> bool {
        self.book().peers.values().all(|p| p.queue().runs.is_empty())
    }

    /// How many bytes wait in the queues, all peers together.
    pub fn queued_bytes(&self) -> usize {
        self.book().peers.values().map(|p| p.queue().bytes).sum()
    }

    pub fn peer_count(&self) -> usize {
        self.book().peers.len()
    }

    fn take_wanted(&self) -> Vec<(EndpointId, Arc<Peer>)> {
        let mut book = self.book();
        let ids: Vec<EndpointId> = book.wanted.drain().collect();
        ids.into_iter()
            .map(|id| {
                let peer = Arc::new(Peer::default());
                book.peers.insert(id, peer.clone());
                (id, peer)
            })
            .collect()
    }

    fn remove(&self, id: &EndpointId, unreachable: bool) {
        let mut book = self.book();
        book.peers.remove(id);
        if unreachable {
            book.retry_at.insert(*id, Instant::now() + RETRY_AFTER);
        }
        drop(book);
        self.drained.notify_waiters();
    }

    /// Lets go of every queue: the member stopped.
    pub fn clear(&self) {
        let mut book = self.book();
        book.peers.clear();
        book.wanted.clear();
    }
}

/// Gives every member heard of a writer, until the member stops.
pub async fn push_loop(member: Arc<Member>, dialer: Arc<Dialer>, tasks: TaskTracker) {
    loop {
        tokio::select! {
            _ = member.pushes.wanted.notified() => {}
            _ = member.stopped.cancelled() => return,
        }
        for (id, peer) in member.pushes.take_wanted() {
            let (member, dialer) = (member.clone(), dialer.clone());
            tokio::spawn(tasks.track_future(async move {
                let result = tokio::select! {
                    r = write_to(&member, &dialer, id, &peer) => r,
                    _ = member.stopped.cancelled() => Ok(()),
                };
                if let Err(e) = &result {
                    tracing::debug!("pushing to {} stopped: {e}", id.fmt_short());
                    dialer.forget(&id);
                }
                member.pushes.remove(&id, result.is_err());
            }));
        }
    }
}

/// Writes `peer`'s queue to it: the topic id, then runs with a 4-byte length each.
async fn write_to(member: &Member, dialer: &Dialer, id: EndpointId, peer: &Peer) -> Result<(), String> {
    let conn =
        tokio::time::timeout(CONNECT_TIMEOUT, dialer.connection(id)).await.map_err(|_| "connecting timed out".to_string())??;
    let mut send = conn.open_uni().await.map_err(|e| e.to_string())?;
    send.write_all(&member.topic).await.map_err(|e| e.to_string())?;
    loop {
        let runs: Vec<Bytes> = {
            let mut q = peer.queue();
            q.runs.drain(..).collect()
        };
        if runs.is_empty() {
            // A connection that dies while idle ends the writer too: the member is heard
            // again (its heads) and gets a new one, rather than a queue nobody writes.
            tokio::select! {
                _ = peer.wake.notified() => continue,
                reason = conn.closed() => return Err(format!("the connection closed: {reason}")),
            }
        }
        let bytes: usize = runs.iter().map(Bytes::len).sum();
        let mut chunks = Vec::with_capacity(runs.len() * 2);
        for run in runs {
            chunks.push(Bytes::copy_from_slice(&(run.len() as u32).to_be_bytes()));
            chunks.push(run);
        }
        send.write_all_chunks(&mut chunks).await.map_err(|e| e.to_string())?;
        {
            let mut q = peer.queue();
            q.bytes -= bytes;
            if q.bytes <= SOFT_BYTES {
                q.over_since = None;
            }
        }
        member.pushes.drained.notify_waiters();
    }
}

/// Reads the runs an author pushes on `recv` and hands them to its member of the topic.
pub async fn read_from(mut recv: RecvStream, from: EndpointId, topics: Weak<Topics>) {
    let mut topic = [0u8; 32];
    if recv.read_exact(&mut topic).await.is_err() {
        return;
    }
    let Some(member) = topics.upgrade().and_then(|t| t.member(&topic)) else { return };
    let mut len = [0u8; 4];
    loop {
        let read = tokio::select! {
            r = recv.read_exact(&mut len) => r.is_ok(),
            _ = member.stopped.cancelled() => return,
        };
        if !read {
            return;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_MESSAGE_BYTES {
            return member.pushed_malformed(from, n);
        }
        let mut run = vec![0u8; n];
        let read = tokio::select! {
            r = recv.read_exact(&mut run) => r.is_ok(),
            _ = member.stopped.cancelled() => return,
        };
        if !read {
            return;
        }
        member.take_pushed(Bytes::from(run), from);
    }
}
