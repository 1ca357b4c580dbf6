//! The pure core of `@alkdev/iroh`: everything that needs neither napi nor a live
//! connection, so that unit tests and the fuzz targets reach it without Node: the wire
//! framing (`codec`), batches for JS and the send outbox (`batch`), node ids, tickets and
//! keys (`identity`), network paths (`paths`), why a relay cannot be used (`relay_fault`), relay TLS material (`certificates`, a
//! default feature), the error codes (`error`), and the event pump's rules: its close
//! codes (`close`), its flow control (`flow`) and the per-frame stamps of its hand-overs
//! (`trace`, for the benchmark's round-trip breakdown). The napi binding at the repository
//! root builds on it.

pub mod batch;
#[cfg(feature = "certificates")]
pub mod certificates;
pub mod close;
pub mod codec;
pub mod error;
pub mod flow;
pub mod identity;
pub mod paths;
pub mod relay_fault;
pub mod topic;
pub mod trace;
