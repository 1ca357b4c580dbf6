//! JS helpers for secret keys and node ids (the logic lives in `identity`).

use napi_derive::napi;

use crate::error::CodedError;
use alkdev_iroh_core::identity;

/// A new random secret key, as 64 lowercase hex characters.
#[napi(catch_unwind)]
pub fn generate_secret_key() -> String {
    identity::secret_key_to_string(&identity::generate_secret_key())
}

/// The node id (public key, hex) that belongs to a secret key.
#[napi(catch_unwind)]
pub fn node_id_from_secret_key(secret_key: String) -> Result<String, CodedError> {
    Ok(identity::parse_secret_key(&secret_key)?.public().to_string())
}

/// Checks a node id and returns its canonical (lowercase hex) form.
#[napi(catch_unwind)]
pub fn parse_node_id(node_id: String) -> Result<String, CodedError> {
    Ok(identity::parse_node_id(&node_id)?.to_string())
}
