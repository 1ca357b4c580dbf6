//! `@alkdev/iroh`: iroh's peer-to-peer QUIC for Node.js. The napi binding: one module per
//! concept. The napi-free core (framing, batches, identities, paths, error codes) is the
//! `alkdev-iroh-core` crate in `crates/core`, unit-tested on its own.

pub mod allocator;
pub mod connection;
pub mod connection_state;
pub mod endpoint;
pub mod error;
pub mod external_buffer;
pub mod js_callback;
pub mod keys;
pub mod logging;
pub mod mailbox;
pub mod pending;
pub mod pump;
pub mod relay_check;
pub mod relay_server;
pub mod release;
pub mod runtime;
pub mod stream;
pub mod topic;
