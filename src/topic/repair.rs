//! Repair: a member that lacks a range of an author's events asks for it over a direct
//! iroh connection (ALPN `REPAIR_ALPN`): first its own log (runs it kept while JS was too
//! far behind to take them), then the neighbour that showed the range exists, then the
//! author, then other neighbours. Every member answers from its retention log. A range that
//! the author answers without (or, with the author out of reach, two members for 30 s) is
//! gone: JS hears `gap`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use alkdev_iroh_core::topic::envelope::{RepairRequest, StreamKey, REPAIR_REQUEST_LEN};
use alkdev_iroh_core::topic::MAX_MESSAGE_BYTES;
use bytes::Bytes;
use iroh::endpoint::Connection;
use iroh::EndpointId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::member::{Member, REPAIR_GRACE};
use super::{Topics, REPAIR_ALPN};

/// How long one peer may take to answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// One answer carries at most this much; the asker asks again for the rest.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// How often the repair task looks for missing ranges.
const TICK: Duration = Duration::from_millis(100);
/// Repairs in progress per member, at most.
const MAX_REPAIRS: usize = 4;
/// A range the author cannot be asked for, and two members lack, is skipped after this long.
const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// Other neighbours asked after the hinted one and the author.
const EXTRA_PEERS: usize = 2;

/// Repair connections, one per peer, shared by the endpoint's topics.
pub struct Dialer {
    pub ep: iroh::Endpoint,
    conns: Mutex<HashMap<EndpointId, Connection>>,
}

impl Dialer {
    pub fn new(ep: iroh::Endpoint) -> Self {
        Dialer { ep, conns: Mutex::new(HashMap::new()) }
    }

    pub fn forget_all(&self) {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub(super) async fn connection(&self, peer: EndpointId) -> Result<Connection, String> {
        let cached = self.conns.lock().unwrap_or_else(|e| e.into_inner()).get(&peer).cloned();
        if let Some(conn) = cached.filter(|c| c.close_reason().is_none()) {
            return Ok(conn);
        }
        let conn = self.ep.connect(peer, REPAIR_ALPN).await.map_err(|e| e.to_string())?;
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).insert(peer, conn.clone());
        Ok(conn)
    }

    /// The runs `peer` has of `request`, as gossiped.
    async fn fetch(&self, peer: EndpointId, request: &RepairRequest) -> Result<Vec<Bytes>, String> {
        let conn = self.connection(peer).await?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
        send.write_all(&request.encode()).await.map_err(|e| e.to_string())?;
        send.finish().map_err(|e| e.to_string())?;
        let answer = recv.read_to_end(MAX_ANSWER_BYTES + MAX_MESSAGE_BYTES).await.map_err(|e| e.to_string())?;
        split_answer(Bytes::from(answer))
    }

    pub(super) fn forget(&self, peer: &EndpointId) {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).remove(peer);
    }
}

/// An answer is runs back to back, each with a 4-byte length.
fn split_answer(answer: Bytes) -> Result<Vec<Bytes>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < answer.len() {
        let Some(header) = answer.get(at..at + 4) else { return Err("an answer cut inside a length".into()) };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len > MAX_MESSAGE_BYTES || at + 4 + len > answer.len() {
            return Err("an answer with a run longer than a gossip message".into());
        }
        out.push(answer.slice(at + 4..at + 4 + len));
        at += 4 + len;
    }
    Ok(out)
}

/// Answers the repair requests a peer sends on `conn` (it passed the handshake gate), and
/// reads the runs it pushes (`push.rs`).
pub async fn serve(conn: Connection, topics: Weak<Topics>, closed: CancellationToken, tasks: TaskTracker) {
    let from = conn.remote_id();
    loop {
        let (mut send, mut recv) = tokio::select! {
            s = conn.accept_bi() => match s { Ok(s) => s, Err(_) => return },
            u = conn.accept_uni() => match u {
                Ok(recv) => {
                    tokio::spawn(tasks.track_future(super::push::read_from(recv, from, topics.clone())));
                    continue;
                }
                Err(_) => return,
            },
            _ = closed.cancelled() => return,
        };
        let topics = topics.clone();
        tokio::spawn(tasks.track_future(async move {
            let mut request = [0u8; REPAIR_REQUEST_LEN];
            if tokio::time::timeout(REQUEST_TIMEOUT, recv.read_exact(&mut request)).await.map_or(true, |r| r.is_err()) {
                return;
            }
            let request = RepairRequest::decode(&request);
            let runs = topics
                .upgrade()
                .and_then(|t| t.member(&request.topic))
                .map(|m| {
                    let now = m.now_ms();
                    let mut st = m.state();
                    st.log.evict(now);
                    st.log.range(&request.key, request.from, request.to)
                })
                .unwrap_or_default();
            let mut answer = Vec::new();
            for run in runs {
                if answer.len() + run.len() > MAX_ANSWER_BYTES && !answer.is_empty() {
                    break;
                }
                answer.extend_from_slice(&(run.len() as u32).to_be_bytes());
                answer.extend_from_slice(&run);
            }
            if send.write_all(&answer).await.is_ok() {
                let _ = send.finish();
                // Wait until the peer has it (or gives up) before the stream is dropped.
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, send.stopped()).await;
            }
        }));
    }
}

/// Looks for missing ranges and repairs them, a few at a time, until the member stops.
pub async fn repair_loop(member: Arc<Member>, dialer: Arc<Dialer>, tasks: TaskTracker) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = member.stopped.cancelled() => return,
        }
        if !member.has_room() {
            continue;
        }
        let due: Vec<(StreamKey, Option<EndpointId>)> = {
            let mut st = member.state();
            let busy = st.streams.values().filter(|t| t.repairing).count();
            let now = Instant::now();
            let mut due = Vec::new();
            for (key, tracked) in st.streams.iter_mut() {
                if due.len() + busy >= MAX_REPAIRS {
                    break;
                }
                let ripe = tracked.missing_since.is_some_and(|since| now.duration_since(since) >= REPAIR_GRACE);
                if !tracked.repairing && ripe && (tracked.probe || tracked.stream.missing().is_some()) {
                    tracked.repairing = true;
                    due.push((*key, tracked.hint));
                }
            }
            due
        };
        for (key, hint) in due {
            let (member, dialer) = (member.clone(), dialer.clone());
            tokio::spawn(tasks.track_future(async move {
                tokio::select! {
                    _ = repair(&member, &dialer, key, hint) => {}
                    _ = member.stopped.cancelled() => {}
                }
                let mut st = member.state();
                if let Some(tracked) = st.streams.get_mut(&key) {
                    tracked.repairing = false;
                    tracked.missing_since = (tracked.probe || tracked.stream.missing().is_some()).then(Instant::now);
                }
            }));
        }
    }
}

/// Where `key` stands: the next sequence number, the missing range (or what a probe asks
/// for), and whether it is a probe.
fn wanted(member: &Member, key: &StreamKey) -> Option<(u64, u64, bool)> {
    let mut st = member.state();
    let tracked = st.streams.get_mut(key)?;
    if let Some((from, to)) = tracked.stream.missing() {
        tracked.probe = false;
        return Some((from, to, false));
    }
    if std::mem::take(&mut tracked.probe) {
        return Some((tracked.stream.next(), u64::MAX, true));
    }
    None
}

fn next_of(member: &Member, key: &StreamKey) -> u64 {
    member.state().streams.get(key).map_or(u64::MAX, |t| t.stream.next())
}

async fn repair(member: &Member, dialer: &Dialer, key: StreamKey, hint: Option<EndpointId>) {
    let Some((from, to, probe)) = wanted(member, &key) else { return };
    let own = member.state().log.range(&key, from, to);
    for run in own {
        member.take_message(run, None, true);
    }
    if next_of(member, &key) > from {
        return;
    }
    let Ok(author) = EndpointId::from_bytes(&key.author) else { return };
    let mut peers: Vec<EndpointId> = hint.into_iter().chain(std::iter::once(author)).collect();
    let neighbors: Vec<EndpointId> = member.state().neighbors.iter().copied().collect();
    let extra: Vec<EndpointId> = neighbors.into_iter().filter(|n| !peers.contains(n)).take(EXTRA_PEERS).collect();
    peers.extend(extra);
    peers.dedup();
    peers.retain(|p| *p != member.me);
    let request = RepairRequest { topic: member.topic, key, from, to };
    let (mut answered, mut author_answered) = (0, false);
    for peer in peers {
        match tokio::time::timeout(REQUEST_TIMEOUT, dialer.fetch(peer, &request)).await {
            Ok(Ok(runs)) => {
                answered += 1;
                author_answered |= peer == author;
                for run in runs {
                    member.take_message(run, Some(peer), true);
                }
                if next_of(member, &key) > from {
                    return;
                }
            }
            Ok(Err(e)) => {
                tracing::debug!("repair request to {} failed: {e}", peer.fmt_short());
                dialer.forget(&peer);
            }
            Err(_) => dialer.forget(&peer),
        }
    }
    if probe {
        return;
    }
    // Only the author's word is final: other members have only what reached them, and
    // may get the rest yet. With the author out of reach, two members without the range
    // decide once that has held for `GIVE_UP_AFTER`.
    if !author_answered {
        let mut st = member.state();
        let Some(tracked) = st.streams.get_mut(&key) else { return };
        if answered < 2 {
            tracked.gone_since = None;
            return;
        }
        if tracked.gone_since.get_or_insert_with(Instant::now).elapsed() < GIVE_UP_AFTER {
            return;
        }
    }
    // Nobody has `from` any more: skip to what someone still has, or to the known end.
    let gone_to = member.state().streams.get(&key).and_then(|t| t.stream.missing()).filter(|(f, _)| *f == from).map(|(_, to)| to);
    if let Some(to) = gone_to {
        member.skip(key, from, to);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_split_into_runs_and_refuse_bad_lengths() {
        let mut answer = Vec::new();
        for run in [&b"abc"[..], b"de"] {
            answer.extend_from_slice(&(run.len() as u32).to_be_bytes());
            answer.extend_from_slice(run);
        }
        assert_eq!(split_answer(Bytes::from(answer.clone())).unwrap(), [Bytes::from_static(b"abc"), Bytes::from_static(b"de")]);
        answer.truncate(answer.len() - 1);
        assert!(split_answer(Bytes::from(answer)).is_err());
        assert!(split_answer(Bytes::from_static(&[0, 0])).is_err());
    }
}
