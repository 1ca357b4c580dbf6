//! How the core's `IrohError` reaches JavaScript: as a napi error whose `code` is the
//! error code (the codes themselves are listed in `alkdev-iroh-core`'s `error.rs`).

use napi_derive::napi;

pub use alkdev_iroh_core::error::{ErrorCode, IrohError, IrohResult};

/// The error of synchronous `#[napi]` functions: thrown as a JS error whose `code` is the
/// error code. (Spelled `Result<T, CodedError>` at use sites: napi recognises `Result` by
/// name.) A type of the binding's own, so that `?` and `.into()` convert core errors here.
#[derive(Debug)]
pub struct CodedError(pub IrohError);

impl From<IrohError> for CodedError {
    fn from(e: IrohError) -> Self {
        Self(e)
    }
}

/// A failed napi call (for example a JS argument of the wrong type) inside an exported
/// function: coded by its status.
impl From<napi::Error> for CodedError {
    fn from(e: napi::Error) -> Self {
        Self(IrohError::new(code_of_status(e.status), e.reason.clone()))
    }
}

/// What napi-generated code throws for a `Result<T, CodedError>`.
impl From<CodedError> for napi::JsError<ErrorCode> {
    fn from(e: CodedError) -> Self {
        napi::JsError::from(js_error(e.0))
    }
}

/// The napi error of `e`, with its code as the status napi puts into `err.code`.
pub fn js_error(e: IrohError) -> napi::Error<ErrorCode> {
    napi::Error::new(e.code, e.message)
}

/// The napi statuses of an argument JS passed wrongly: the one list, which JS reads through
/// [`argument_error_statuses`] for the errors napi's generated argument conversion throws
/// before any of this crate's code runs.
const ARGUMENT_STATUSES: [napi::Status; 8] = [
    napi::Status::InvalidArg,
    napi::Status::ObjectExpected,
    napi::Status::StringExpected,
    napi::Status::NumberExpected,
    napi::Status::BooleanExpected,
    napi::Status::ArrayExpected,
    napi::Status::FunctionExpected,
    napi::Status::BigintExpected,
];

/// The error code of a napi status.
pub fn code_of_status(status: napi::Status) -> ErrorCode {
    if ARGUMENT_STATUSES.contains(&status) {
        ErrorCode::InvalidArgument
    } else {
        ErrorCode::Internal
    }
}

/// The `code`s napi gives errors of an argument JS passed wrongly (`InvalidArg`, ...): JS
/// maps them to `ERR_IROH_INVALID_ARGUMENT` as [`code_of_status`] does here.
#[napi(catch_unwind)]
pub fn argument_error_statuses() -> Vec<String> {
    ARGUMENT_STATUSES.iter().map(|status| status.as_ref().to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A panic in an exported function without `catch_unwind` aborts the whole Node process
    /// (Rust cannot unwind into C). With it, napi turns the panic into a thrown error.
    #[test]
    fn every_exported_function_contains_panics() {
        // Every module, submodules too, so that a new one cannot be missed.
        let mut sources = Vec::new();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
                let path = entry.expect("src/ entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("source is readable");
                    sources.push((path.display().to_string(), text));
                }
            }
        }
        let mut exported = 0;
        for (file, text) in &sources {
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            for (i, line) in lines.iter().enumerate() {
                if !(line.starts_with("#[napi]") || line.starts_with("#[napi(")) || line.starts_with("#[napi(object") {
                    continue;
                }
                let item = lines[i + 1..].iter().find(|l| !l.starts_with("#[") && !l.starts_with("///"));
                if item.is_some_and(|l| l.contains("fn ")) {
                    exported += 1;
                    assert!(line.contains("catch_unwind"), "{file}:{}: {line} lacks catch_unwind", i + 1);
                }
            }
        }
        assert!(exported > 40, "found only {exported} exported functions: is the scan still right?");
    }

    #[test]
    fn napi_argument_statuses_map_to_invalid_argument() {
        assert_eq!(code_of_status(napi::Status::StringExpected), ErrorCode::InvalidArgument);
        assert_eq!(code_of_status(napi::Status::GenericFailure), ErrorCode::Internal);
    }
}
