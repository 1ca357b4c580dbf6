//! The tokio runtime every native future runs on.
//!
//! One worker thread unless `TOKIO_WORKER_THREADS` says otherwise. Everything this addon
//! receives ends on the one JS thread anyway, and a second worker mostly adds thread
//! hops: handing a packet from the connection driver to a stream reader on another
//! thread costs a wake-up (tens of microseconds on a busy machine) per round trip.
//! Measured on 2 cores: round trip p50 about 340 -> 300 us, throughput the same or
//! better (bench/, `TOKIO_WORKER_THREADS=2` to compare).

#[napi_derive::module_init]
fn init() {
    crate::logging::install_quiet();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("alkdev-iroh");
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    match builder.build() {
        Ok(rt) => {
            crate::allocator::start_returning_memory(&rt);
            napi::bindgen_prelude::create_custom_tokio_runtime(rt)
        }
        // napi-rs then builds its default runtime on first use.
        Err(e) => eprintln!("@alkdev/iroh: cannot build the tokio runtime ({e}); using the default"),
    }
}
