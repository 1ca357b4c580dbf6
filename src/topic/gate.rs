//! Who may open a topic connection (gossip or repair) with this endpoint: checked in
//! iroh's handshake hook, so a stranger is refused before it can send a byte. One gossip
//! serves every topic of the endpoint, so the gate admits a node that any joined topic
//! allows; a topic still drops events whose author it does not allow itself.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use alkdev_iroh_core::topic::envelope::TopicId;
use iroh::endpoint::{AfterHandshakeOutcome, Connection, EndpointHooks, VarInt};
use iroh::EndpointId;

use super::{GOSSIP_ALPN, REPAIR_ALPN};

/// The close code a refused topic peer sees (the hub's "not allowed", 4100).
const REFUSED: u32 = 4100;

#[derive(Debug, Default)]
pub struct Gate {
    /// Per joined topic, the node ids it allows (`None`: anyone).
    allow: RwLock<HashMap<TopicId, Option<HashSet<EndpointId>>>>,
}

impl Gate {
    pub fn set(&self, topic: TopicId, allow: Option<HashSet<EndpointId>>) {
        self.allow.write().unwrap_or_else(|e| e.into_inner()).insert(topic, allow);
    }

    pub fn remove(&self, topic: &TopicId) {
        self.allow.write().unwrap_or_else(|e| e.into_inner()).remove(topic);
    }

    /// With no topic joined, the topic ALPNs are not accepted at all: nothing to check.
    pub fn admits(&self, id: &EndpointId) -> bool {
        let allow = self.allow.read().unwrap_or_else(|e| e.into_inner());
        allow.is_empty() || allow.values().any(|a| a.as_ref().is_none_or(|set| set.contains(id)))
    }
}

/// The hook installed on every endpoint; it only looks at topic ALPNs.
#[derive(Debug)]
pub struct GateHook(pub Arc<Gate>);

impl EndpointHooks for GateHook {
    async fn after_handshake<'a>(&'a self, conn: &'a Connection) -> AfterHandshakeOutcome {
        let alpn = conn.alpn();
        if (alpn == GOSSIP_ALPN || alpn == REPAIR_ALPN) && !self.0.admits(&conn.remote_id()) {
            return AfterHandshakeOutcome::Reject {
                error_code: VarInt::from_u32(REFUSED),
                reason: b"not a member of any topic here".to_vec(),
            };
        }
        AfterHandshakeOutcome::Accept
    }
}
