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

#[cfg(test)]
mod tests {
    use super::*;

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
