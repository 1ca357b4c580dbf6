//! Letting go of native handles when something closes, not when V8 collects its wrapper.
//! Every iroh handle (endpoint, connection, stream) keeps the endpoint's UDP socket open, so
//! the wrappers hold them in slots that `close()` empties, and each owner keeps weak
//! references to what it handed out so that it can empty those slots too. No napi here.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// A handle that `close()` takes away; `None` once released. Async, because a stream
/// operation holds it across its await.
pub type Slot<T> = tokio::sync::Mutex<Option<T>>;

/// The smallest size at which a registry drops its dead references.
const PRUNE_FROM: usize = 16;

/// Weak references to things to release together, e.g. an endpoint's connections.
pub struct Registry<T> {
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    /// `None` once drained: whatever comes later is released by its creator at once.
    items: Option<Vec<Weak<T>>>,
    /// Dead references are pruned when the list reaches this size, which then doubles
    /// from what is alive, so that adding stays amortised O(1) however many come and go.
    prune_at: usize,
}

impl<T> Default for Registry<T> {
    fn default() -> Self {
        Self { inner: Mutex::new(Inner { items: Some(Vec::new()), prune_at: PRUNE_FROM }) }
    }
}

impl<T> Registry<T> {
    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // Nothing here can be left half-updated by a panic: a poisoned lock is still good.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `item`; `false` once the registry was drained, so that the caller releases it.
    pub fn add(&self, item: &Arc<T>) -> bool {
        let mut inner = self.lock();
        let prune_at = inner.prune_at;
        let Some(items) = inner.items.as_mut() else { return false };
        if items.len() >= prune_at {
            items.retain(|w| w.strong_count() > 0);
            inner.prune_at = (items_len(&inner.items) * 2).max(PRUNE_FROM);
        }
        if let Some(items) = inner.items.as_mut() {
            items.push(Arc::downgrade(item));
        }
        true
    }

    /// Empties the registry for good and returns what is still alive.
    pub fn drain(&self) -> Vec<Arc<T>> {
        self.lock().items.take().unwrap_or_default().iter().filter_map(Weak::upgrade).collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        items_len(&self.lock().items)
    }
}

fn items_len<T>(items: &Option<Vec<Weak<T>>>) -> usize {
    items.as_ref().map_or(0, Vec::len)
}

/// Empties every slot, waiting for operations that hold one to finish (they end promptly
/// once the connection is closed).
pub async fn empty_all<T>(slots: Vec<Arc<Slot<T>>>) {
    for slot in slots {
        slot.lock().await.take();
    }
}

/// Waits until each UDP address can be bound again, at most `bound`; false if one cannot.
///
/// iroh's `Endpoint::close` returns before every task of its own has dropped its handle on
/// the socket: a cancelled background task (a net report, say) lets go when it is next
/// polled, measured here at 0.2 to 10 ms later, once in a few hundred closes. Binding the
/// address is the portable way to see that the port is really free. iroh's sockets set no
/// SO_REUSEADDR, so a bind fails while one of them lives; IPv6 ones are v6-only, as here.
pub async fn until_ports_free(addrs: &[std::net::SocketAddr], bound: std::time::Duration) -> bool {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if addrs.iter().all(|addr| can_bind(*addr)) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

fn can_bind(addr: std::net::SocketAddr) -> bool {
    use socket2::{Domain, Protocol, Socket, Type};
    let Ok(socket) = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP)) else {
        return true; // Nothing to learn: we cannot make a socket at all.
    };
    if addr.is_ipv6() && socket.set_only_v6(true).is_err() {
        return true;
    }
    socket.bind(&addr.into()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_counts_as_free_only_once_its_last_socket_is_gone() {
        let held = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = held.local_addr().unwrap();
        assert!(!until_ports_free(&[addr], std::time::Duration::from_millis(20)).await);
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            drop(held);
            dropped_tx.send(()).unwrap();
        });
        assert!(until_ports_free(&[addr], std::time::Duration::from_secs(5)).await);
        // It saw the port free, so the socket had been dropped by then.
        assert!(dropped_rx.await.is_ok());
    }

    #[test]
    fn drained_registry_refuses_and_returns_the_living() {
        let registry = Registry::default();
        let kept = Arc::new(1);
        assert!(registry.add(&kept));
        assert!(registry.add(&Arc::new(2)));
        let alive = registry.drain();
        assert_eq!(alive.len(), 1);
        assert_eq!(*alive[0], 1);
        assert!(!registry.add(&kept));
        assert!(registry.drain().is_empty());
    }

    #[test]
    fn dead_references_do_not_pile_up() {
        let registry = Registry::default();
        let kept: Vec<_> = (0..10).map(Arc::new).collect();
        for k in &kept {
            registry.add(k);
        }
        for i in 0..100_000 {
            registry.add(&Arc::new(i));
        }
        assert!(registry.len() < 64, "{} references kept", registry.len());
        assert_eq!(registry.drain().len(), 10);
    }

    #[tokio::test]
    async fn empty_all_takes_every_handle() {
        let slots: Vec<Arc<Slot<u32>>> = (0..3).map(|i| Arc::new(Slot::new(Some(i)))).collect();
        empty_all(slots.clone()).await;
        for slot in slots {
            assert!(slot.lock().await.is_none());
        }
    }
}
