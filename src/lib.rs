//! `@alkdev/iroh`: iroh's peer-to-peer QUIC for Node.js. One module per concept; the
//! napi-free core (codec, identity, errors) is unit-tested on its own.

pub mod allocator;
pub mod batch;
pub mod certificates;
pub mod codec;
pub mod connection;
pub mod endpoint;
pub mod error;
pub mod event_target;
pub mod external_buffer;
pub mod identity;
pub mod keys;
pub mod logging;
pub mod paths;
pub mod pending;
pub mod relay_server;
pub mod release;
pub mod runtime;
pub mod stream;
