//! Where websocket frames begin and end in a relayed byte stream (RFC 6455 §5.2).
//!
//! The relay copies bytes, not messages, so it never re-frames what either side sends. To close
//! a session cleanly at shutdown it must still know where one frame ends, so that the close
//! frame it writes is not spliced into the middle of another. [`FrameCursor`] follows the frame
//! headers as bytes pass, without buffering payloads.

/// The position in a stream of websocket frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FrameCursor {
    state: State,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// Collecting a frame header: the bytes seen so far, and how many it has in all (2 until
    /// the second byte says more).
    Header {
        seen: [u8; 14],
        have: usize,
        needed: usize,
    },
    /// Inside a payload with this many bytes left.
    Payload(u64),
}

impl Default for FrameCursor {
    fn default() -> Self {
        FrameCursor {
            state: State::Header {
                seen: [0; 14],
                have: 0,
                needed: 2,
            },
        }
    }
}

impl FrameCursor {
    /// Whether the bytes so far end exactly at a frame boundary.
    pub(crate) fn at_boundary(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. })
    }

    /// Follows `bytes`; returns how many of them complete the frame in progress, i.e. the
    /// offset of the first boundary within `bytes` (`Some(0)` when already at one), or `None`
    /// when the frame goes on past them.
    pub(crate) fn advance_to_boundary(&mut self, bytes: &[u8]) -> Option<usize> {
        if self.at_boundary() {
            return Some(0);
        }
        let mut at = 0;
        while at < bytes.len() {
            at += self.step(&bytes[at..]);
            if self.at_boundary() {
                return Some(at);
            }
        }
        None
    }

    /// Follows all of `bytes`.
    pub(crate) fn advance(&mut self, bytes: &[u8]) {
        let mut at = 0;
        while at < bytes.len() {
            at += self.step(&bytes[at..]);
        }
    }

    /// Consumes bytes of at most one header or one payload; returns how many.
    fn step(&mut self, bytes: &[u8]) -> usize {
        match &mut self.state {
            State::Payload(remaining) => {
                let taken = (*remaining).min(bytes.len() as u64);
                *remaining -= taken;
                if *remaining == 0 {
                    *self = FrameCursor::default();
                }
                // `taken` is at most `bytes.len()`, so it fits.
                usize::try_from(taken).unwrap_or(bytes.len())
            }
            State::Header { seen, have, needed } => {
                let taken = (*needed - *have).min(bytes.len());
                seen[*have..*have + taken].copy_from_slice(&bytes[..taken]);
                *have += taken;
                if *have == 2 {
                    *needed = header_len(seen[1]);
                }
                if *have == *needed {
                    let payload = payload_len(&seen[..*needed]);
                    self.state = if payload == 0 {
                        FrameCursor::default().state
                    } else {
                        State::Payload(payload)
                    };
                }
                taken
            }
        }
    }
}

/// The whole header length given its second byte: 2, plus 2 or 8 extended length bytes, plus 4
/// for a mask.
fn header_len(second: u8) -> usize {
    let extended = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&header[2..10]);
            u64::from_be_bytes(bytes)
        }
        short => u64::from(short),
    }
}

/// A close frame with status 1001 ("going away"): unmasked from the server side (towards the
/// client), masked with `mask` from the client side (towards the rack), as RFC 6455 §5.3 wants.
pub(crate) fn going_away(mask: Option<[u8; 4]>) -> Vec<u8> {
    const CODE: [u8; 2] = 1001u16.to_be_bytes();
    match mask {
        None => vec![0x88, 0x02, CODE[0], CODE[1]],
        Some(key) => vec![
            0x88,
            0x82,
            key[0],
            key[1],
            key[2],
            key[3],
            CODE[0] ^ key[0],
            CODE[1] ^ key[1],
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload_len: usize, masked: bool) -> Vec<u8> {
        let mut out = vec![0x82];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload_len {
            0..=125 => out.push(mask_bit | payload_len as u8),
            126..=65535 => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(payload_len as u16).to_be_bytes());
            }
            _ => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(payload_len as u64).to_be_bytes());
            }
        }
        if masked {
            out.extend_from_slice(&[1, 2, 3, 4]);
        }
        out.extend(std::iter::repeat_n(7u8, payload_len));
        out
    }

    #[test]
    fn boundaries_are_found_whatever_the_chunking() {
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for (len, masked) in [
            (0, false),
            (5, true),
            (125, false),
            (126, true),
            (70_000, false),
        ] {
            stream.extend(frame(len, masked));
            ends.push(stream.len());
        }
        for chunk in [1, 2, 3, 7, 64, 4096, stream.len()] {
            let mut cursor = FrameCursor::default();
            let mut found = Vec::new();
            for (index, piece) in stream.chunks(chunk).enumerate() {
                let mut offset = 0;
                while offset < piece.len() {
                    let mut probe = cursor.clone();
                    match probe.advance_to_boundary(&piece[offset..]) {
                        Some(0) => {
                            // At a boundary: step over at least one byte of the next frame.
                            cursor.advance(&piece[offset..offset + 1]);
                            offset += 1;
                        }
                        Some(n) => {
                            cursor = probe;
                            offset += n;
                            found.push(index * chunk + offset);
                        }
                        None => {
                            cursor = probe;
                            offset = piece.len();
                        }
                    }
                }
            }
            assert!(cursor.at_boundary(), "chunk {chunk}");
            // The empty first frame ends at 2, and every frame end is found.
            assert_eq!(found, ends, "chunk {chunk}");
        }
    }

    #[test]
    fn close_frames_parse_as_one_frame() {
        for mask in [None, Some([9, 8, 7, 6])] {
            let close = going_away(mask);
            let mut cursor = FrameCursor::default();
            cursor.advance(&close[..1]);
            assert!(!cursor.at_boundary());
            assert_eq!(
                cursor.advance_to_boundary(&close[1..]),
                Some(close.len() - 1)
            );
        }
        let masked = going_away(Some([9, 8, 7, 6]));
        assert_eq!([masked[6] ^ 9, masked[7] ^ 8], 1001u16.to_be_bytes());
    }
}
