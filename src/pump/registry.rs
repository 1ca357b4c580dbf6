//! Pumps by number, for `broadcastFrames`: unwrapping a thousand pump objects from a JS
//! array on every broadcast cost more than queueing the broadcast itself. A number is
//! taken when a pump is created and given back when JS drops it, so a number JS holds
//! always names the pump it was given for.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::shared::PumpShared;

/// Numbered weak references; a number given back is reused.
struct Slots<T> {
    slots: Vec<Weak<T>>,
    free: Vec<u32>,
}

impl<T> Slots<T> {
    const fn new() -> Self {
        Self { slots: Vec::new(), free: Vec::new() }
    }

    fn insert(&mut self, value: &Arc<T>) -> u32 {
        let weak = Arc::downgrade(value);
        match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = weak;
                id
            }
            None => {
                self.slots.push(weak);
                (self.slots.len() - 1) as u32
            }
        }
    }

    fn remove(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            *slot = Weak::new();
            self.free.push(id);
        }
    }

    fn get(&self, id: u32) -> Option<Arc<T>> {
        self.slots.get(id as usize).and_then(Weak::upgrade)
    }
}

static PUMPS: Mutex<Slots<PumpShared>> = Mutex::new(Slots::new());

fn pumps() -> MutexGuard<'static, Slots<PumpShared>> {
    // Nothing here is left half-changed by a panic elsewhere: carry on past poisoning.
    PUMPS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Gives `shared` a number.
pub fn register(shared: &Arc<PumpShared>) -> u32 {
    pumps().insert(shared)
}

/// Gives the number back: its pump is gone from JS.
pub fn unregister(id: u32) {
    pumps().remove(id);
}

/// Calls `each` with the pump of every number in `ids`, in order, or None for a number
/// that names no live pump.
pub fn each_pump<T>(ids: &[u32], mut each: impl FnMut(Option<Arc<PumpShared>>) -> T) -> Vec<T> {
    let reg = pumps();
    ids.iter().map(|&id| each(reg.get(id))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_name_their_value_until_given_back_then_are_reused() {
        let mut slots = Slots::new();
        let (a, b) = (Arc::new("a"), Arc::new("b"));
        let (ia, ib) = (slots.insert(&a), slots.insert(&b));
        assert_ne!(ia, ib);
        assert_eq!(slots.get(ia).as_deref(), Some(&"a"));
        slots.remove(ia);
        assert_eq!(slots.get(ia), None);
        let c = Arc::new("c");
        assert_eq!(slots.insert(&c), ia);
        assert_eq!(slots.get(ia).as_deref(), Some(&"c"));
        assert_eq!(slots.get(ib).as_deref(), Some(&"b"));
        // A value dropped while numbered, and a number never given, name nothing.
        drop(b);
        assert_eq!(slots.get(ib), None);
        assert_eq!(slots.get(99), None);
        slots.remove(99);
        assert_eq!(slots.free, Vec::<u32>::new());
    }
}
