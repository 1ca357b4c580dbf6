//! What the pump tells JS: one message type, a union napi writes into `binding.d.ts`
//! (`kind` tells the members apart), and the close codes JS reads from Rust.

use alkdev_iroh_core::batch::BatchPayload;
use alkdev_iroh_core::close::CloseCode;
use napi_derive::napi;

use crate::external_buffer::ExternalBuffer;

/// A message from the pump to JS.
#[napi(discriminant = "kind", discriminant_case = "lowercase", object_from_js = false)]
pub enum PumpMessage {
    /// A batch of events as one JSON array text.
    Json { json: String },
    /// A batch of frames, one string each (for a custom `parse`).
    Frames { frames: Vec<String> },
    /// The send buffer drained, as JS asked.
    Drain,
    /// The pump stopped: the connection closed.
    Closed { closed: PumpClosed },
    /// A batch of binary frames as on the wire, length headers included: a Buffer over the
    /// received bytes, not a copy.
    Binary {
        #[napi(ts_type = "Buffer")]
        data: ExternalBuffer,
    },
}

impl From<BatchPayload> for PumpMessage {
    fn from(payload: BatchPayload) -> Self {
        match payload {
            BatchPayload::Json(json) => PumpMessage::Json { json },
            BatchPayload::Raw(frames) => PumpMessage::Frames { frames },
            BatchPayload::Binary(data) => PumpMessage::Binary { data: ExternalBuffer(data) },
        }
    }
}

#[napi(object, object_from_js = false)]
#[derive(Clone)]
pub struct PumpClosed {
    pub code: f64,
    pub reason: String,
    #[napi(ts_type = "'local' | 'remote' | 'timeout' | 'reset' | 'transport'")]
    pub kind: String,
    /// Set when the close was caused by an error (a protocol violation, a failed write).
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// The application close codes the pump uses on the wire (`alkdev-iroh-core`'s `close`).
#[napi(object, object_from_js = false)]
pub struct PumpCloseCodes {
    /// `close()` without a code.
    #[napi(js_name = "NORMAL")]
    pub normal: u32,
    /// A frame longer than `maxFrameBytes`.
    #[napi(js_name = "FRAME_TOO_LARGE")]
    pub frame_too_large: u32,
    /// A frame that is not an event, or that a custom `parse` rejected.
    #[napi(js_name = "MALFORMED_FRAME")]
    pub malformed_frame: u32,
    /// A stream that ended, or stalled for `frameTimeoutMs`, inside a frame.
    #[napi(js_name = "TRUNCATED_FRAME")]
    pub truncated_frame: u32,
    /// The stream failed: reset by the peer, or the peer stopped reading it.
    #[napi(js_name = "STREAM_ERROR")]
    pub stream_error: u32,
}

/// The pump's close codes, for JS: `binding.PumpCloseCode.FRAME_TOO_LARGE` is 4001.
#[napi]
#[allow(non_upper_case_globals)]
pub const PumpCloseCode: PumpCloseCodes = PumpCloseCodes {
    normal: CloseCode::Normal.code(),
    frame_too_large: CloseCode::FrameTooLarge.code(),
    malformed_frame: CloseCode::MalformedFrame.code(),
    truncated_frame: CloseCode::TruncatedFrame.code(),
    stream_error: CloseCode::StreamError.code(),
};
