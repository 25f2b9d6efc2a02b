//! A request body that breaks off: [`Breaking`] gives the first bytes of its
//! data and then fails, as a connection dropping mid-upload does. The
//! registry tests send it as a `PATCH` body to check that an upload is
//! resumed from what the hub received.

use std::io::Read;

/// Gives `left` bytes of `data`, then fails (a connection dropping).
pub struct Breaking<'a> {
    pub data: &'a [u8],
    pub left: usize,
}

impl Read for Breaking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("connection dropped"));
        }
        let n = buf.len().min(self.left).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.left -= n;
        Ok(n)
    }
}
