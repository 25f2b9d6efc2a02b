//! Why a protobuf request body could not be decoded.

use super::{MAX_DEPTH, MEDIA_TYPE};

/// A protobuf body Bramble cannot turn into JSON. Each says what was wrong,
/// where (message, field number, byte offset) and what to send instead.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The body does not start with the `k8s\0` magic.
    #[error(
        "the request body is not a Kubernetes protobuf envelope: with Content-Type {MEDIA_TYPE} \
         it must start with the 4 bytes \"k8s\\0\" and a runtime.Unknown message; send JSON with \
         Content-Type: application/json instead"
    )]
    NotEnvelope,
    /// Truncated input, a bad varint or length, invalid UTF-8, a wrong wire type.
    #[error("malformed protobuf in {message} at byte {offset} of the request body: {reason}")]
    Malformed {
        message: &'static str,
        offset: usize,
        reason: String,
    },
    /// A field number the schema table does not have.
    #[error(
        "protobuf field {field} of {message} is not supported by Bramble; send JSON \
         (kubectl apply -f) instead"
    )]
    UnsupportedField { message: &'static str, field: u32 },
    /// The envelope names a type the schema table has no message for.
    #[error(
        "a protobuf body of {api_version} {kind} is not supported by Bramble; send JSON \
         (kubectl apply -f) instead"
    )]
    UnsupportedKind { api_version: String, kind: String },
    /// `runtime.Unknown.contentEncoding` is set (e.g. gzip).
    #[error(
        "the runtime.Unknown envelope has contentEncoding {0:?}: Bramble decodes only \
         unencoded protobuf; send JSON instead"
    )]
    ContentEncoding(String),
    /// `runtime.Unknown.contentType` names something other than protobuf.
    #[error(
        "the runtime.Unknown envelope has contentType {0:?}: Bramble expects {MEDIA_TYPE} (or \
         none) inside a protobuf body; send JSON instead"
    )]
    ContentType(String),
    /// Messages nested deeper than [`MAX_DEPTH`].
    #[error("protobuf messages nest deeper than {MAX_DEPTH} levels (in {message})")]
    TooDeep { message: &'static str },
}
