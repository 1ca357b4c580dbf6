//! Gives memory that Rust code freed back to the system.
//!
//! glibc's malloc keeps freed memory in its per-thread arenas and returns only what sits
//! at the top of each heap. A hub that refused 1,000 strangers stayed ~40 MiB above its
//! baseline long after iroh had dropped their per-peer state (iroh keeps it for 60 s);
//! `malloc_trim(0)` hands those free pages back. It costs a walk over the free lists,
//! so it runs at most every few seconds, on the runtime's worker. Other platforms'
//! allocators (musl, macOS, Windows) return memory on their own.

use std::time::Duration;

/// How often free memory is handed back.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Starts the periodic trim on `runtime`; a no-op where it is not needed.
pub fn start_returning_memory(runtime: &tokio::runtime::Runtime) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    runtime.spawn(async {
        let mut every = tokio::time::interval(TRIM_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            // SAFETY: malloc_trim only releases free memory; it is thread-safe in glibc.
            unsafe { libc::malloc_trim(0) };
        }
    });
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (runtime, Duration::ZERO);
}
