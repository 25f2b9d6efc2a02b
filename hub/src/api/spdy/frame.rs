//! SPDY/3.1 frames (draft-mbelshe-httpbis-spdy-00 §2.2–2.6) on a byte
//! stream: [`Decoder`] cuts what arrives into [`Frame`]s, [`Frame::encode`]
//! writes one. Header blocks stay compressed here ([`super::headers`] keeps
//! the connection's zlib state). Pure: no I/O.
//!
//! A control frame is `1 | version(15) | type(16)`, `flags(8) | length(24)`,
//! then its fields; a data frame is `0 | stream id(31)`, `flags(8) |
//! length(24)`, then the bytes. Frames longer than [`MAX_FRAME_BYTES`] are
//! refused (a client has no reason to send them: kubectl writes at most
//! 32 KiB at a time), so a hostile one cannot make the hub buffer 16 MiB.
//! Control frames of unknown types are skipped, as the draft asks.

/// SPDY version 3 (SPDY/3.1 differs only in flow control).
pub const VERSION: u16 = 3;

/// The longest frame payload accepted.
pub const MAX_FRAME_BYTES: usize = 256 * 1024;

/// `FLAG_FIN`: the sender's last frame on the stream.
pub const FLAG_FIN: u8 = 0x01;

/// The `GOAWAY` status of a peer that broke the protocol (§2.6.6).
pub const GOAWAY_PROTOCOL_ERROR: u32 = 1;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// One frame. `headers` are compressed header blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        fin: bool,
        headers: Vec<u8>,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Vec<u8>,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Vec<u8>,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Vec<u8>,
    },
    /// SETTINGS, WINDOW_UPDATE or an unknown control frame: nothing to do.
    Ignored,
}

/// Why the byte stream is not SPDY/3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("SPDY version {0} (only version 3 is spoken)")]
    Version(u16),
    #[error("a SPDY frame of {0} bytes (at most {MAX_FRAME_BYTES})")]
    TooLong(usize),
    #[error("a SPDY {kind} frame of {len} bytes is too short")]
    TooShort { kind: &'static str, len: usize },
}

/// Cuts a byte stream into frames.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn short(kind: &'static str, len: usize, need: usize) -> Result<(), FrameError> {
    if len < need {
        return Err(FrameError::TooShort { kind, len });
    }
    Ok(())
}

impl Decoder {
    /// Adds bytes that arrived.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, `None` until more bytes come.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = (u32_at(&self.buf, 4) & 0x00ff_ffff) as usize;
        if len > MAX_FRAME_BYTES {
            return Err(FrameError::TooLong(len));
        }
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let frame: Vec<u8> = self.buf.drain(..8 + len).collect();
        let flags = frame[4];
        let fin = flags & FLAG_FIN != 0;
        let p = &frame[8..];
        let first = u32_at(&frame, 0);
        if first & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: first & 0x7fff_ffff,
                fin,
                data: p.to_vec(),
            }));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let id = |at: usize| u32_at(p, at) & 0x7fff_ffff;
        Ok(Some(match (first & 0xffff) as u16 {
            SYN_STREAM => {
                // stream id, associated id, priority and slot, then headers.
                short("SYN_STREAM", len, 10)?;
                Frame::SynStream {
                    stream_id: id(0),
                    fin,
                    headers: p[10..].to_vec(),
                }
            }
            SYN_REPLY => {
                short("SYN_REPLY", len, 4)?;
                Frame::SynReply {
                    stream_id: id(0),
                    fin,
                    headers: p[4..].to_vec(),
                }
            }
            RST_STREAM => {
                short("RST_STREAM", len, 8)?;
                Frame::RstStream {
                    stream_id: id(0),
                    status: u32_at(p, 4),
                }
            }
            PING => {
                short("PING", len, 4)?;
                Frame::Ping { id: u32_at(p, 0) }
            }
            GOAWAY => {
                short("GOAWAY", len, 8)?;
                Frame::GoAway {
                    last_good_stream_id: id(0),
                    status: u32_at(p, 4),
                }
            }
            HEADERS => {
                short("HEADERS", len, 4)?;
                Frame::Headers {
                    stream_id: id(0),
                    fin,
                    headers: p[4..].to_vec(),
                }
            }
            SETTINGS | WINDOW_UPDATE => Frame::Ignored,
            _ => Frame::Ignored,
        }))
    }
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(0x8000u16 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(u32::from(flags) << 24 | payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

fn fin_flag(fin: bool) -> u8 {
    if fin { FLAG_FIN } else { 0 }
}

impl Frame {
    /// The frame's bytes. Payloads must fit 24 bits (callers send at most
    /// [`MAX_FRAME_BYTES`]).
    pub fn encode(&self) -> Vec<u8> {
        let ids = |a: u32, b: u32| [a.to_be_bytes(), b.to_be_bytes()].concat();
        match self {
            Frame::SynStream {
                stream_id,
                fin,
                headers,
            } => {
                // Associated stream 0, priority 0, slot 0.
                let mut p = ids(*stream_id, 0);
                p.extend_from_slice(&[0, 0]);
                p.extend_from_slice(headers);
                control(SYN_STREAM, fin_flag(*fin), &p)
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => control(
                SYN_REPLY,
                fin_flag(*fin),
                &[&stream_id.to_be_bytes()[..], headers].concat(),
            ),
            Frame::RstStream { stream_id, status } => {
                control(RST_STREAM, 0, &ids(*stream_id, *status))
            }
            Frame::Ping { id } => control(PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => control(GOAWAY, 0, &ids(*last_good_stream_id, *status)),
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => control(
                HEADERS,
                fin_flag(*fin),
                &[&stream_id.to_be_bytes()[..], headers].concat(),
            ),
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                let mut out = Vec::with_capacity(8 + data.len());
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(
                    &(u32::from(fin_flag(*fin)) << 24 | data.len() as u32).to_be_bytes(),
                );
                out.extend_from_slice(data);
                out
            }
            Frame::Ignored => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_even_when_split_anywhere() {
        let frames = [
            Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: vec![1, 2, 3],
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: vec![],
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: b"hello".to_vec(),
            },
            Frame::RstStream {
                stream_id: 3,
                status: 5,
            },
            Frame::Ping { id: 7 },
            Frame::GoAway {
                last_good_stream_id: 5,
                status: 0,
            },
            Frame::Headers {
                stream_id: 5,
                fin: true,
                headers: vec![9],
            },
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        for step in [1, 3, 7, bytes.len()] {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for piece in bytes.chunks(step) {
                d.push(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "step {step}");
        }
    }

    #[test]
    fn a_go_client_syn_stream_decodes() {
        // What spdystream writes for stream 1 (priority 0): the header block
        // bytes are opaque here.
        let mut b = vec![0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0c];
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb]);
        let mut d = Decoder::default();
        d.push(&b);
        assert_eq!(
            d.next_frame().unwrap(),
            Some(Frame::SynStream {
                stream_id: 1,
                fin: false,
                headers: vec![0xaa, 0xbb]
            })
        );
    }

    #[test]
    fn settings_and_unknown_frames_are_skipped_and_bad_ones_refused() {
        let mut d = Decoder::default();
        d.push(&control(SETTINGS, 0, &[0, 0, 0, 0]));
        d.push(&control(0x55, 0, &[]));
        assert_eq!(d.next_frame().unwrap(), Some(Frame::Ignored));
        assert_eq!(d.next_frame().unwrap(), Some(Frame::Ignored));
        assert_eq!(d.next_frame().unwrap(), None);

        let mut d = Decoder::default();
        d.push(&[0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0]);
        assert_eq!(d.next_frame(), Err(FrameError::Version(2)));

        let mut d = Decoder::default();
        d.push(&[0x00, 0x00, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff]);
        assert_eq!(d.next_frame(), Err(FrameError::TooLong(0xff_ffff)));

        let mut d = Decoder::default();
        d.push(&control(RST_STREAM, 0, &[0, 0, 0, 1]));
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::TooShort {
                kind: "RST_STREAM",
                ..
            })
        ));
    }
}
