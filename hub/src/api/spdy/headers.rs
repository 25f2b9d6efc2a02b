//! SPDY/3 header blocks (§2.6.10): a count, then length-prefixed lowercase
//! names and values (several values joined by NUL), all 32-bit big-endian,
//! compressed with zlib primed with [`super::dictionary::DICTIONARY`]. Each
//! direction of a connection is *one* zlib stream, each block ending at a
//! sync flush, so the codec keeps its state for the connection's life and
//! must see every block in order.
//!
//! A block inflating beyond [`MAX_HEADER_BYTES`] is refused (a few bytes of
//! zlib could otherwise ask for megabytes).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::DICTIONARY;

/// The largest header block accepted, inflated.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Why a header block cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("SPDY header block: zlib: {0}")]
    Zlib(String),
    #[error("SPDY header block: more than {MAX_HEADER_BYTES} bytes inflated")]
    TooLarge,
    #[error("SPDY header block: truncated")]
    Truncated,
    #[error("SPDY header block: a name or value that is not UTF-8")]
    NotUtf8,
}

/// Header names and values, names lowercase, in order.
pub type HeaderList = Vec<(String, String)>;

/// One connection's header compression, both directions.
pub struct HeaderCodec {
    inflate: Decompress,
    deflate: Compress,
    deflate_primed: bool,
}

impl Default for HeaderCodec {
    fn default() -> Self {
        HeaderCodec {
            inflate: Decompress::new(true),
            deflate: Compress::new(Compression::default(), true),
            deflate_primed: false,
        }
    }
}

impl std::fmt::Debug for HeaderCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCodec").finish_non_exhaustive()
    }
}

fn zlib(e: impl std::fmt::Display) -> HeaderError {
    HeaderError::Zlib(e.to_string())
}

impl HeaderCodec {
    /// Inflates and parses the next block the peer sent.
    pub fn decode(&mut self, block: &[u8]) -> Result<HeaderList, HeaderError> {
        let mut out = Vec::with_capacity(256);
        let mut input = block;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BYTES {
                    return Err(HeaderError::TooLarge);
                }
                out.reserve((out.len()).min(MAX_HEADER_BYTES - out.len()).max(256));
            }
            let before = self.inflate.total_in();
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.inflate.total_in() - before) as usize;
            input = &input[used..];
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) if input.is_empty() && out.len() < out.capacity() => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate.set_dictionary(DICTIONARY).map_err(zlib)?;
                }
                Err(e) => return Err(zlib(e)),
            }
        }
        if out.len() > MAX_HEADER_BYTES {
            return Err(HeaderError::TooLarge);
        }
        parse(&out)
    }

    /// Serializes and deflates `headers` as the next block to send.
    pub fn encode(&mut self, headers: &[(&str, &str)]) -> Result<Vec<u8>, HeaderError> {
        if !self.deflate_primed {
            self.deflate.set_dictionary(DICTIONARY).map_err(zlib)?;
            self.deflate_primed = true;
        }
        let mut raw = Vec::new();
        raw.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            for s in [name.to_ascii_lowercase().as_str(), value] {
                raw.extend_from_slice(&(s.len() as u32).to_be_bytes());
                raw.extend_from_slice(s.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut input = raw.as_slice();
        loop {
            out.reserve(256);
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(zlib)?;
            input = &input[(self.deflate.total_in() - before) as usize..];
            // Done once everything went in and the flush fit.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// Parses an inflated block.
fn parse(b: &[u8]) -> Result<HeaderList, HeaderError> {
    let mut pos = 0usize;
    let word = |pos: &mut usize| -> Result<usize, HeaderError> {
        let w = b.get(*pos..*pos + 4).ok_or(HeaderError::Truncated)?;
        *pos += 4;
        Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as usize)
    };
    let count = word(&mut pos)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let mut field = || -> Result<String, HeaderError> {
            let len = word(&mut pos)?;
            let s = b.get(pos..pos + len).ok_or(HeaderError::Truncated)?;
            pos += len;
            String::from_utf8(s.to_vec()).map_err(|_| HeaderError::NotUtf8)
        };
        let name = field()?.to_ascii_lowercase();
        let value = field()?;
        out.push((name, value));
    }
    Ok(out)
}

/// The first value of `name` in `headers`.
pub fn get<'a>(headers: &'a HeaderList, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_through_one_zlib_stream_per_direction() {
        let (mut a, mut b) = (HeaderCodec::default(), HeaderCodec::default());
        for i in 0..5 {
            let id = i.to_string();
            let sent = [("streamType", "data"), ("port", "8080"), ("requestID", &id)];
            let block = a.encode(&sent).unwrap();
            let got = b.decode(&block).unwrap();
            assert_eq!(get(&got, "streamtype"), Some("data"));
            assert_eq!(get(&got, "requestid"), Some(id.as_str()));
            assert_eq!(got.len(), 3);
        }
        // An empty block (a SYN_REPLY's) too.
        let block = a.encode(&[]).unwrap();
        assert!(b.decode(&block).unwrap().is_empty());
    }

    #[test]
    fn the_first_block_names_the_spdy_dictionary() {
        let block = HeaderCodec::default().encode(&[("a", "b")]).unwrap();
        // zlib header with FDICT set, then the dictionary's Adler-32.
        assert_eq!(block[1] & 0x20, 0x20);
        assert_eq!(&block[2..6], &0xe3c6_a7c2u32.to_be_bytes());
    }

    #[test]
    fn bombs_and_garbage_are_refused() {
        let mut a = HeaderCodec::default();
        let big = "x".repeat(MAX_HEADER_BYTES + 1);
        let block = a.encode(&[("big", &big)]).unwrap();
        assert!(block.len() < 1024);
        assert_eq!(
            HeaderCodec::default().decode(&block),
            Err(HeaderError::TooLarge)
        );
        assert!(matches!(
            HeaderCodec::default().decode(b"not zlib at all"),
            Err(HeaderError::Zlib(_))
        ));
        assert_eq!(
            parse(&[0, 0, 0, 1, 0, 0, 0, 9]),
            Err(HeaderError::Truncated)
        );
    }
}
