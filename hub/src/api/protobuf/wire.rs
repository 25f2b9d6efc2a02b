//! Reading the protobuf wire format, through `prost`'s encoding helpers:
//! keys, varints and length-delimited slices, with byte offsets for errors.

use prost::encoding::{WireType, decode_key, decode_varint};

use super::error::ProtoError;

/// A cursor over one message's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    /// Offset of the end of `buf` in the whole request body.
    end: usize,
    /// The message being read, for errors.
    pub message: &'static str,
}

impl<'a> Reader<'a> {
    /// `buf` starts at byte `base` of the request body.
    pub fn new(buf: &'a [u8], base: usize, message: &'static str) -> Self {
        Reader {
            buf,
            end: base + buf.len(),
            message,
        }
    }

    /// Offset of the next unread byte in the request body.
    pub fn offset(&self) -> usize {
        self.end - self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn malformed(&self, at: usize, reason: impl Into<String>) -> ProtoError {
        ProtoError::Malformed {
            message: self.message,
            offset: at,
            reason: reason.into(),
        }
    }

    /// The next field's number and wire type.
    pub fn key(&mut self) -> Result<(u32, WireType), ProtoError> {
        let at = self.offset();
        decode_key(&mut self.buf).map_err(|e| self.malformed(at, format!("bad field key: {e}")))
    }

    pub fn varint(&mut self) -> Result<u64, ProtoError> {
        let at = self.offset();
        decode_varint(&mut self.buf).map_err(|e| self.malformed(at, format!("bad varint: {e}")))
    }

    /// A length-delimited value and the offset where it starts.
    pub fn bytes(&mut self) -> Result<(&'a [u8], usize), ProtoError> {
        let at = self.offset();
        let len = self.varint()?;
        let start = self.offset();
        if len > self.buf.len() as u64 {
            return Err(self.malformed(
                at,
                format!(
                    "a length of {len} bytes runs past the end of the message ({} bytes left): \
                     the body is truncated",
                    self.buf.len()
                ),
            ));
        }
        let (value, rest) = self.buf.split_at(len as usize);
        self.buf = rest;
        Ok((value, start))
    }

    /// Checks that a field has the wire type its schema type needs.
    pub fn expect(
        &self,
        field: u32,
        found: WireType,
        expected: WireType,
        at: usize,
    ) -> Result<(), ProtoError> {
        if found == expected {
            return Ok(());
        }
        Err(self.malformed(
            at,
            format!("field {field} has wire type {found:?}, expected {expected:?}"),
        ))
    }
}
