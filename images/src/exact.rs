//! A reader of a file's exact length as measured before: at most that many
//! bytes (the reader is `take`n), and an `UnexpectedEof` error if the file
//! ends earlier (it shrank while it was read). Archives (a layer, a build
//! context) record a size in each header before the body; a body of
//! another length would corrupt them.

use std::io::{self, Read};

/// Reads exactly `len` bytes of `inner`; an earlier end is an error.
pub struct Exact<R> {
    inner: io::Take<R>,
    left: u64,
}

impl<R: Read> Exact<R> {
    pub fn new(inner: R, len: u64) -> Exact<R> {
        Exact {
            inner: inner.take(len),
            left: len,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file got shorter while it was read",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_length_and_no_more_and_fails_short() {
        let mut out = Vec::new();
        Exact::new(&b"abcdef"[..], 4).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
        let e = Exact::new(&b"ab"[..], 4)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
