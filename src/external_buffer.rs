//! Bytes handed to JS as a Buffer. A batch of small messages goes without a copy: an
//! external Buffer over the `Bytes`' own memory, freed when V8 collects the Buffer. A
//! batch of 64 KiB or more (a message that large travels alone) is copied once into a
//! Buffer that Node allocates, as every batch is where a runtime forbids external buffers
//! (Electron's sandbox).
//!
//! Why large ones are copied: V8 collects external Buffers late. A consumer taking 64 KiB
//! messages slowly left up to 64 MB of them (V8's external-memory trigger) waiting for a
//! collection, on top of what was buffered; the receiver grew by 48-87 MiB. Copied into
//! Node's memory they were collected at once (growth about 20 MiB), and 64 KiB messages
//! went no slower: the copy costs about what the external Buffer's finalizer did. Batches
//! of small messages stay external: copying them cost 5-10 % more CPU per message.
//!
//! External memory is reported to V8 (`napi_adjust_external_memory`) while the Buffer lives:
//! without it a fast stream of large messages left well over 100 MB of collected-looking
//! Buffers waiting for a garbage collection that the small JS heap did not ask for.

use std::ffi::c_void;
use std::ptr;

use alkdev_iroh_core::batch::LARGE_MESSAGE_BYTES;
use bytes::Bytes;
use napi::bindgen_prelude::{ToNapiValue, TypeName, ValueType};
use napi::sys;

/// A `Bytes` that becomes a Node `Buffer`: over the same memory, or a copy when large.
#[derive(Debug)]
pub struct ExternalBuffer(pub Bytes);

impl TypeName for ExternalBuffer {
    fn type_name() -> &'static str {
        "Buffer"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

unsafe extern "C" fn drop_bytes(env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the box made in `to_napi_value`, handed to this finalizer once.
    let bytes = unsafe { Box::from_raw(hint.cast::<Bytes>()) };
    let mut total = 0;
    unsafe { sys::napi_adjust_external_memory(env, -(bytes.len() as i64), &mut total) };
}

impl ToNapiValue for ExternalBuffer {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut out = ptr::null_mut();
        let bytes = val.0;
        let len = bytes.len();
        let status = if len == 0 {
            // V8 lets buffers share a data pointer only if it is null.
            unsafe { sys::napi_create_buffer(env, 0, ptr::null_mut(), &mut out) }
        } else if len >= LARGE_MESSAGE_BYTES {
            unsafe { sys::napi_create_buffer_copy(env, len, bytes.as_ptr().cast(), ptr::null_mut(), &mut out) }
        } else {
            // V8 never writes through this pointer on our behalf; JS may, into a Buffer that
            // is now its own (nothing else reads these bytes any more).
            let data = bytes.as_ptr().cast_mut().cast::<c_void>();
            let hint = Box::into_raw(Box::new(bytes));
            let status = unsafe { sys::napi_create_external_buffer(env, len, data, Some(drop_bytes), hint.cast(), &mut out) };
            if status == sys::Status::napi_no_external_buffers_allowed {
                // SAFETY: not handed to V8, so still ours.
                let bytes = unsafe { Box::from_raw(hint) };
                unsafe { sys::napi_create_buffer_copy(env, len, bytes.as_ptr().cast(), ptr::null_mut(), &mut out) }
            } else {
                if status == sys::Status::napi_ok {
                    let mut total = 0;
                    unsafe { sys::napi_adjust_external_memory(env, len as i64, &mut total) };
                }
                status
            }
        };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::from_reason(format!("could not create a Buffer (napi status {status})")));
        }
        Ok(out)
    }
}
