//! The byte pipeline in front of the tar parser:
//!
//! ```text
//! raw blob reader -> Tap (counts, notices a blob digest mismatch)
//!   -> [auto-detect by magic] -> gzip (flate2, multi-member) | zstd (ruzstd, multi-frame) | none
//!   -> DiffReader (sha256 of the uncompressed tar = diff_id; size limit) -> tar
//! ```
//!
//! Errors raised deep in the pipeline reach the caller wrapped by the
//! decompressor and the tar parser, so the readers that must be recognised
//! afterwards (blob mismatch, size limit) also record what happened in a
//! shared [`StreamState`].

use std::cell::RefCell;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::rc::Rc;

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

use crate::blobs::Mismatch;
use crate::digest::{Digest, HashingWriter};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar stream.
    None,
    /// gzip (one or more members).
    Gzip,
    /// zstd (one or more frames; skippable frames are skipped).
    Zstd,
    /// Decide from the first bytes: gzip `1f 8b`, zstd `28 b5 2f fd` (or a
    /// skippable frame), anything else is read as plain tar.
    Auto,
}

impl Compression {
    /// The compression an OCI or Docker layer media type implies; `None` for a
    /// media type that is not a known layer type (the caller decides whether to
    /// fall back to [`Compression::Auto`]).
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        Some(match media_type {
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Compression::Gzip,
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    /// Detects the compression from the first bytes of a blob.
    pub fn detect(prefix: &[u8]) -> Compression {
        match prefix {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            // Skippable zstd frames: magic 0x184D2A50..=0x184D2A5F, little-endian.
            [b0, 0x2a, 0x4d, 0x18, ..] if b0 & 0xf0 == 0x50 => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "uncompressed tar",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::Auto => "auto-detected",
        })
    }
}

/// What the readers observed, shared with the code that maps errors.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    /// Bytes read from the raw (compressed) reader.
    pub compressed_bytes: u64,
    /// The raw reader reported that the blob does not hash to its digest.
    pub blob_mismatch: Option<Digest>,
    /// The uncompressed stream went past the configured limit.
    pub too_large: bool,
}

pub(crate) type Shared = Rc<RefCell<StreamState>>;

/// Counts raw bytes and notices a [`crate::blobs::VerifyingReader`] mismatch.
struct Tap<R> {
    inner: R,
    state: Shared,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.state.borrow_mut().compressed_bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                if let Some(m) = e.get_ref().and_then(|i| i.downcast_ref::<Mismatch>()) {
                    self.state.borrow_mut().blob_mismatch = Some(m.0.clone());
                }
                Err(e)
            }
        }
    }
}

/// Hashes the uncompressed stream (the diff_id) and enforces the size limit.
pub(crate) struct DiffReader<R> {
    inner: R,
    hasher: HashingWriter<io::Sink>,
    limit: Option<u64>,
    state: Shared,
}

impl<R: Read> DiffReader<R> {
    /// Digest and length of everything read so far.
    pub(crate) fn finish(self) -> (Digest, u64) {
        self.hasher.finish()
    }
}

impl<R: Read> Read for DiffReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        io::Write::write_all(&mut self.hasher, &buf[..n])?;
        if let Some(limit) = self.limit
            && self.hasher.len() > limit
        {
            self.state.borrow_mut().too_large = true;
            return Err(io::Error::other(format!(
                "uncompressed layer exceeds the limit of {limit} bytes"
            )));
        }
        Ok(n)
    }
}

/// Reads every zstd frame of a stream, skipping skippable frames and checking
/// each frame's content checksum when it has one. (`ruzstd`'s
/// `StreamingDecoder` reads a single frame only.)
struct ZstdFrames<R> {
    src: R,
    dec: FrameDecoder,
    in_frame: bool,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(src: R) -> Self {
        ZstdFrames {
            src,
            dec: FrameDecoder::new(),
            in_frame: false,
        }
    }

    fn finish_frame(&mut self) -> io::Result<()> {
        self.in_frame = false;
        if let (Some(want), Some(got)) = (
            self.dec.get_checksum_from_data(),
            self.dec.get_calculated_checksum(),
        ) && want != got
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("zstd frame checksum mismatch (frame says {want:#x}, content {got:#x})"),
            ));
        }
        Ok(())
    }

    /// Starts the next frame; `false` at the clean end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.src.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.dec.reset(&mut self.src) {
                Ok(()) => {
                    self.in_frame = true;
                    return Ok(true);
                }
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped =
                        io::copy(&mut (&mut self.src).take(length.into()), &mut io::sink())?;
                    if skipped != u64::from(length) {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "zstd stream ends inside a skippable frame",
                        ));
                    }
                }
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
        }
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame && !self.next_frame()? {
                return Ok(0);
            }
            while self.dec.can_collect() == 0 && !self.dec.is_finished() {
                self.dec
                    .decode_blocks(&mut self.src, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
            let n = self.dec.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            if self.dec.is_finished() && self.dec.can_collect() == 0 {
                self.finish_frame()?;
            }
        }
    }
}

/// Buffer size for reads from the raw blob and of the uncompressed stream.
const BUF: usize = 128 * 1024;

/// The uncompressed tar stream of a layer blob: a buffered reader over a
/// [`DiffReader`]. Read it to its end, then call [`Uncompressed::finish`].
pub(crate) type Uncompressed<'a> = BufReader<DiffReader<Box<dyn Read + 'a>>>;

/// Builds the pipeline; returns the reader and the compression actually used.
pub(crate) fn open<'a, R: Read + 'a>(
    raw: R,
    compression: Compression,
    limit: Option<u64>,
    state: Shared,
) -> io::Result<(Uncompressed<'a>, Compression)> {
    let mut tap = Tap {
        inner: raw,
        state: state.clone(),
    };
    let (raw, resolved): (Box<dyn Read + 'a>, Compression) = match compression {
        Compression::Auto => {
            let mut prefix = Vec::with_capacity(4);
            (&mut tap).take(4).read_to_end(&mut prefix)?;
            let c = Compression::detect(&prefix);
            (Box::new(io::Cursor::new(prefix).chain(tap)), c)
        }
        c => (Box::new(tap), c),
    };
    let decoded: Box<dyn Read + 'a> = match resolved {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            BUF, raw,
        ))),
        Compression::Zstd => Box::new(ZstdFrames::new(BufReader::with_capacity(BUF, raw))),
        Compression::None | Compression::Auto => raw,
    };
    let diff = DiffReader {
        inner: decoded,
        hasher: HashingWriter::new(io::sink()),
        limit,
        state,
    };
    Ok((BufReader::with_capacity(BUF, diff), resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(data: &[u8], c: Compression) -> io::Result<(Vec<u8>, Compression, Digest)> {
        let state = Shared::default();
        let (mut r, resolved) = open(data, c, None, state)?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        let (d, _) = r.into_inner().finish();
        Ok((out, resolved, d))
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    fn zstd(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    #[test]
    fn detects_and_decodes_every_kind() {
        let data = b"hello layer ".repeat(1000);
        for (blob, want) in [
            (gzip(&data), Compression::Gzip),
            (zstd(&data), Compression::Zstd),
            (data.clone(), Compression::None),
        ] {
            let (out, resolved, d) = read_all(&blob, Compression::Auto).unwrap();
            assert_eq!(resolved, want);
            assert_eq!(out, data);
            assert_eq!(d, Digest::of(&data));
            let (out, _, _) = read_all(&blob, want).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn reads_concatenated_frames_and_members() {
        let (a, b) = (b"first part ".repeat(50), b"second part".repeat(70));
        let whole = [a.clone(), b.clone()].concat();
        let gz = [gzip(&a), gzip(&b)].concat();
        assert_eq!(read_all(&gz, Compression::Auto).unwrap().0, whole);
        // zstd: frame, skippable frame, frame.
        let mut zs = zstd(&a);
        zs.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9]);
        zs.extend(zstd(&b));
        assert_eq!(read_all(&zs, Compression::Auto).unwrap().0, whole);
    }

    #[test]
    fn truncated_or_corrupt_streams_fail() {
        let data = b"0123456789abcdef".repeat(4096);
        let gz = gzip(&data);
        assert!(read_all(&gz[..gz.len() / 2], Compression::Gzip).is_err());
        let zs = zstd(&data);
        assert!(read_all(&zs[..zs.len() / 2], Compression::Zstd).is_err());
        assert!(read_all(b"not gzip", Compression::Gzip).is_err());
        assert!(read_all(b"not zstd", Compression::Zstd).is_err());
    }

    #[test]
    fn limit_is_enforced_and_recorded() {
        let state = Shared::default();
        let data = vec![7u8; 10_000];
        let (mut r, _) = open(&data[..], Compression::None, Some(4096), state.clone()).unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err());
        assert!(state.borrow().too_large);
    }

    #[test]
    fn media_types() {
        assert_eq!(
            Compression::from_media_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Compression::from_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            Some(Compression::Gzip)
        );
        assert_eq!(Compression::from_media_type("text/plain"), None);
    }
}
