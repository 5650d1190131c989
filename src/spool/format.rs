//! Spool record codec (pure): fixed-width segment and record headers, the envelope, the
//! payload checksum and the END marker.
//!
//! This module does no I/O and reads no clock: it turns values into bytes and bytes into
//! values. The byte layout is described in `ARCHITECTURE.md` ("The spool") and in the constants
//! below; every multi-byte integer is little-endian.
//!
//! TRUST: the bytes handed to the decoders come from spool files that mailroot wrote, but a
//! crash may have torn them and a disk may have flipped bits, so every decoder checks
//! lengths against the slice and checksums before believing anything. Nothing here panics
//! on bad input.
//!
//! STANDARDS: the envelope carries RFC 5321 paths, RFC 3461 DSN parameters (NOTIFY, ORCPT,
//! RET, ENVID) and RFC 6152/3030 BODY values as they were received.

use std::fmt;
use std::str::FromStr;

/// Bytes in a segment file header (the first record starts right after it).
pub const SEGMENT_HEADER_BYTES: usize = 64;
/// Magic at offset 0 of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"MRSEGMNT";
/// Segment format version written by this code.
pub const SEGMENT_VERSION: u16 = 1;
/// Segment flag: the segment holds exactly one (large, spilled) record.
pub const SEGMENT_FLAG_SPILL: u16 = 1;
/// Segment flag: the segment was written by compaction.
pub const SEGMENT_FLAG_COMPACTED: u16 = 2;

/// Bytes in the fixed-width record header (the status array follows it).
pub const RECORD_HEADER_BYTES: usize = 40;
/// Magic of a live record.
pub const RECORD_MAGIC_LIVE: [u8; 4] = *b"MRrc";
/// Magic of a record that must never be recovered (failed commit, or copied forward by
/// compaction). Written in place over [`RECORD_MAGIC_LIVE`]; the header checksum does not
/// cover the magic, so the lengths stay readable and the scanner can skip the record.
pub const RECORD_MAGIC_DEAD: [u8; 4] = *b"MRdd";
/// Record format version written by this code.
pub const RECORD_VERSION: u8 = 1;
/// Record kind: a message (envelope + content).
pub const RECORD_KIND_MESSAGE: u8 = 1;
/// Offset of the status array inside a record.
pub const RECORD_STATUS_OFFSET: usize = RECORD_HEADER_BYTES;
/// Bytes of the END marker that closes every record.
pub const END_MARKER_BYTES: usize = 8;
/// First four bytes of the END marker (the last four are the record's header checksum).
pub const END_MAGIC: [u8; 4] = *b"MRen";
/// Records start at offsets that are multiples of this (the magic can then be rewritten
/// with one aligned 4-byte store).
pub const RECORD_ALIGN_BYTES: usize = 8;
/// Upper bound on recipients in one record (sanity bound for the decoder).
pub const MAX_RECIPIENTS: u32 = 1 << 20;

/// A message's queue identifier: `(id block << 32) | ordinal`.
///
/// The id block is a segment number (segment numbers never repeat, even across restarts),
/// so ids never repeat either. The id is logical: the record may live in another segment
/// (a spill segment, or a compaction segment); the spool keeps an index from id to place.
/// Displayed as 16 upper-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub u64);

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

/// Text that is not a [`QueueId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a queue id is exactly 16 hexadecimal digits")]
pub struct ParseQueueIdError;

impl FromStr for QueueId {
    type Err = ParseQueueIdError;

    fn from_str(s: &str) -> Result<QueueId, ParseQueueIdError> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseQueueIdError);
        }
        u64::from_str_radix(s, 16).map(QueueId).map_err(|_| ParseQueueIdError)
    }
}

/// Per-recipient delivery state: one byte in the record's status array, rewritten in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RcptStatus {
    /// Not yet delivered (still owed).
    Pending = b'P',
    /// Delivered (crossed off).
    Delivered = b'D',
    /// Bounced: a DSN was generated (crossed off).
    Bounced = b'B',
    /// Expired in the queue; a DSN was generated (crossed off).
    Expired = b'X',
}

impl RcptStatus {
    /// The status a stored byte stands for: any byte that is not a status (rot, a page
    /// that never reached the disk) reads as [`RcptStatus::Pending`], because a second
    /// delivery is the safe side of a doubt and a lost recipient is not.
    #[must_use]
    pub fn read(b: u8) -> RcptStatus {
        RcptStatus::from_byte(b).unwrap_or(RcptStatus::Pending)
    }

    /// The status for an on-disk byte, or `None` when the byte is not a status.
    #[must_use]
    pub fn from_byte(b: u8) -> Option<RcptStatus> {
        match b {
            b'P' => Some(RcptStatus::Pending),
            b'D' => Some(RcptStatus::Delivered),
            b'B' => Some(RcptStatus::Bounced),
            b'X' => Some(RcptStatus::Expired),
            _ => None,
        }
    }

    /// The on-disk byte.
    #[must_use]
    pub fn as_byte(self) -> u8 {
        self as u8
    }

    /// True when the recipient is no longer owed anything.
    #[must_use]
    pub fn is_crossed_off(self) -> bool {
        self != RcptStatus::Pending
    }
}

/// One recipient of a queued message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EnvelopeRecipient {
    /// The forward path as received (without angle brackets).
    pub forward_path: String,
    /// RFC 3461 NOTIFY bit flags (`NOTIFY_*`); 0 = not given.
    pub notify: u8,
    /// RFC 3461 ORCPT as `"type;addr"` (xtext-decoded), if given.
    pub orcpt: Option<String>,
}

/// NOTIFY flag: NEVER.
pub const NOTIFY_NEVER: u8 = 1;
/// NOTIFY flag: SUCCESS.
pub const NOTIFY_SUCCESS: u8 = 2;
/// NOTIFY flag: FAILURE.
pub const NOTIFY_FAILURE: u8 = 4;
/// NOTIFY flag: DELAY.
pub const NOTIFY_DELAY: u8 = 8;

/// The envelope of a queued message.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Envelope {
    /// Reverse path without angle brackets; empty = null reverse path `<>`.
    pub reverse_path: String,
    /// Recipients in RCPT order; the status array has one byte per entry.
    pub recipients: Vec<EnvelopeRecipient>,
    /// BODY: 0 = 7BIT, 1 = 8BITMIME, 2 = BINARYMIME.
    pub body: u8,
    /// SMTPUTF8 was given on MAIL.
    pub smtputf8: bool,
    /// RET: 0 = not given, 1 = FULL, 2 = HDRS.
    pub ret: u8,
    /// ENVID (xtext-decoded), if given.
    pub envid: Option<String>,
    /// Client address as text (`"192.0.2.1:4567"`), or `"pickup"`.
    pub client_addr: String,
    /// HELO/EHLO argument.
    pub helo: String,
    /// Arrival time, milliseconds since the Unix epoch (passed in by the caller).
    pub arrival_unix_ms: u64,
    /// Name of the site (virtual server) that received the message.
    pub site: String,
}

/// Why bytes are not a valid spool structure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Fewer bytes than the structure needs (torn tail or end of written data).
    #[error("truncated")]
    Truncated,
    /// The magic is not one this code writes (unwritten space, or garbage).
    #[error("bad magic")]
    BadMagic,
    /// A version this code does not understand.
    #[error("unsupported version {0}")]
    Version(u16),
    /// The header checksum does not match (torn or flipped header).
    #[error("header checksum mismatch")]
    HeaderChecksum,
    /// The envelope+message checksum does not match (torn or flipped payload).
    #[error("payload checksum mismatch")]
    PayloadChecksum,
    /// The END marker is missing or does not belong to this record.
    #[error("missing END marker")]
    MissingEnd,
    /// A length field is out of bounds.
    #[error("length out of bounds")]
    Length,
    /// The envelope bytes do not decode (or its recipient count disagrees with the header).
    #[error("bad envelope")]
    Envelope,
}

/// The fixed-width segment header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// `SEGMENT_FLAG_*` bits.
    pub flags: u16,
    /// Worker that created the segment (informational).
    pub worker: u32,
    /// Segment number (also in the file name).
    pub number: u64,
    /// Creation time, ms since the Unix epoch.
    pub created_unix_ms: u64,
    /// File length reserved at creation.
    pub capacity_bytes: u64,
}

impl SegmentHeader {
    /// Encode as exactly [`SEGMENT_HEADER_BYTES`] bytes.
    #[must_use]
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_BYTES] {
        let mut b = [0u8; SEGMENT_HEADER_BYTES];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
        b[10..12].copy_from_slice(&self.flags.to_le_bytes());
        b[12..16].copy_from_slice(&self.worker.to_le_bytes());
        b[16..24].copy_from_slice(&self.number.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_unix_ms.to_le_bytes());
        b[32..40].copy_from_slice(&self.capacity_bytes.to_le_bytes());
        let crc = crc32fast::hash(&b[0..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode and verify a segment header.
    pub fn decode(b: &[u8]) -> Result<SegmentHeader, FormatError> {
        let b = b.get(..SEGMENT_HEADER_BYTES).ok_or(FormatError::Truncated)?;
        if b[0..8] != SEGMENT_MAGIC {
            return Err(FormatError::BadMagic);
        }
        if crc32fast::hash(&b[0..60]) != le32(b, 60) {
            return Err(FormatError::HeaderChecksum);
        }
        let version = le16(b, 8);
        if version != SEGMENT_VERSION {
            return Err(FormatError::Version(version));
        }
        Ok(SegmentHeader {
            flags: le16(b, 10),
            worker: le32(b, 12),
            number: le64(b, 16),
            created_unix_ms: le64(b, 24),
            capacity_bytes: le64(b, 32),
        })
    }
}

/// The fixed-width record header (without the status array).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The message's queue id.
    pub id: QueueId,
    /// Number of recipients (= bytes in the status array).
    pub rcpt_count: u32,
    /// Bytes of encoded envelope.
    pub envelope_len: u32,
    /// Bytes of message content.
    pub message_len: u64,
    /// CRC-32 (IEEE) of envelope bytes followed by message bytes.
    pub payload_crc: u32,
}

/// Where the parts of a record lie, relative to the record start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLayout {
    /// Offset of the envelope.
    pub envelope_offset: u64,
    /// Offset of the message content.
    pub message_offset: u64,
    /// Offset of the END marker.
    pub end_offset: u64,
    /// Total record length including padding to [`RECORD_ALIGN_BYTES`].
    pub total_len: u64,
}

/// Round `n` up to a multiple of [`RECORD_ALIGN_BYTES`].
#[must_use]
pub fn align_up(n: u64) -> u64 {
    let a = RECORD_ALIGN_BYTES as u64;
    n.div_ceil(a) * a
}

impl RecordHeader {
    /// Offsets of the record's parts.
    #[must_use]
    pub fn layout(&self) -> RecordLayout {
        let envelope_offset = align_up(RECORD_HEADER_BYTES as u64 + u64::from(self.rcpt_count));
        let message_offset = envelope_offset + u64::from(self.envelope_len);
        let end_offset = message_offset + self.message_len;
        RecordLayout {
            envelope_offset,
            message_offset,
            end_offset,
            total_len: align_up(end_offset + END_MARKER_BYTES as u64),
        }
    }

    /// Encode the fixed header (live magic); returns the bytes and the header checksum.
    #[must_use]
    pub fn encode(&self) -> ([u8; RECORD_HEADER_BYTES], u32) {
        let mut b = [0u8; RECORD_HEADER_BYTES];
        b[0..4].copy_from_slice(&RECORD_MAGIC_LIVE);
        b[4] = RECORD_VERSION;
        b[5] = RECORD_KIND_MESSAGE;
        b[8..16].copy_from_slice(&self.id.0.to_le_bytes());
        b[16..20].copy_from_slice(&self.rcpt_count.to_le_bytes());
        b[20..24].copy_from_slice(&self.envelope_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.message_len.to_le_bytes());
        b[32..36].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32fast::hash(&b[4..36]);
        b[36..40].copy_from_slice(&crc.to_le_bytes());
        (b, crc)
    }

    /// Decode the fixed header; returns it, whether it is live (vs dead) and its checksum.
    pub fn decode(b: &[u8]) -> Result<(RecordHeader, bool, u32), FormatError> {
        let b = b.get(..RECORD_HEADER_BYTES).ok_or(FormatError::Truncated)?;
        let live = match [b[0], b[1], b[2], b[3]] {
            RECORD_MAGIC_LIVE => true,
            RECORD_MAGIC_DEAD => false,
            _ => return Err(FormatError::BadMagic),
        };
        let crc = le32(b, 36);
        if crc32fast::hash(&b[4..36]) != crc {
            return Err(FormatError::HeaderChecksum);
        }
        if b[4] != RECORD_VERSION || b[5] != RECORD_KIND_MESSAGE {
            return Err(FormatError::Version(u16::from(b[4])));
        }
        let h = RecordHeader {
            id: QueueId(le64(b, 8)),
            rcpt_count: le32(b, 16),
            envelope_len: le32(b, 20),
            message_len: le64(b, 24),
            payload_crc: le32(b, 32),
        };
        if h.rcpt_count > MAX_RECIPIENTS || h.message_len > u64::MAX / 4 {
            return Err(FormatError::Length);
        }
        Ok((h, live, crc))
    }
}

/// Encode the END marker for a record whose header checksum is `header_crc`.
#[must_use]
pub fn end_marker(header_crc: u32) -> [u8; END_MARKER_BYTES] {
    let mut b = [0u8; END_MARKER_BYTES];
    b[0..4].copy_from_slice(&END_MAGIC);
    b[4..8].copy_from_slice(&header_crc.to_le_bytes());
    b
}

/// Bytes the record prefix (header, status array, padding) takes for `rcpt_count`.
#[must_use]
pub fn prefix_len(rcpt_count: u32) -> usize {
    // Fits: rcpt_count is bounded by MAX_RECIPIENTS when it comes from disk, and by memory
    // (a Vec of recipients) when it comes from an Envelope.
    usize::try_from(align_up(RECORD_HEADER_BYTES as u64 + u64::from(rcpt_count)))
        .unwrap_or(usize::MAX)
}

/// A verified record inside a segment's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordView {
    /// The decoded fixed header.
    pub header: RecordHeader,
    /// Offsets of the parts, relative to the record start.
    pub layout: RecordLayout,
    /// True for a live record; false for a dead one (only header and length were checked).
    pub live: bool,
}

/// Parse and fully verify the record starting at `buf[0]`.
///
/// For a live record: header checksum, status bytes, payload checksum and END marker are
/// checked. A dead record only needs a valid header (its length is trusted to skip it).
pub fn parse_record(buf: &[u8]) -> Result<RecordView, FormatError> {
    let (header, live, header_crc) = RecordHeader::decode(buf)?;
    let layout = header.layout();
    let total = usize::try_from(layout.total_len).map_err(|_| FormatError::Length)?;
    if total > buf.len() {
        return Err(FormatError::Truncated);
    }
    if !live {
        return Ok(RecordView { header, layout, live });
    }
    // The status bytes are not checked: they are outside every checksum by design, and
    // one that is none of `PDBX` reads as Pending (`RcptStatus::read`): the recipient is
    // delivered again rather than the whole message lost.
    // Casts below are in bounds: every offset is <= total, which fits in usize.
    let env = layout.envelope_offset as usize;
    let end = layout.end_offset as usize;
    if crc32fast::hash(&buf[env..end]) != header.payload_crc {
        return Err(FormatError::PayloadChecksum);
    }
    if buf[end..end + END_MARKER_BYTES] != end_marker(header_crc) {
        return Err(FormatError::MissingEnd);
    }
    Ok(RecordView { header, layout, live })
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Strings longer than u32::MAX cannot come from SMTP lines; saturate defensively.
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// Append the binary encoding of `env` to `out`.
///
/// Layout: `arrival_unix_ms u64, body u8, smtputf8 u8, ret u8, reverse_path str,
/// envid opt, client_addr str, helo str, site str, rcpt_count u32,
/// { notify u8, forward_path str, orcpt opt } * rcpt_count`, where `str` is a u32 length then
/// UTF-8 bytes and `opt` is a 0/1 byte then a `str` when 1.
pub fn encode_envelope(env: &Envelope, out: &mut Vec<u8>) {
    out.extend_from_slice(&env.arrival_unix_ms.to_le_bytes());
    out.push(env.body);
    out.push(u8::from(env.smtputf8));
    out.push(env.ret);
    put_str(out, &env.reverse_path);
    put_opt(out, env.envid.as_deref());
    put_str(out, &env.client_addr);
    put_str(out, &env.helo);
    put_str(out, &env.site);
    let n = u32::try_from(env.recipients.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_le_bytes());
    for r in &env.recipients {
        out.push(r.notify);
        put_str(out, &r.forward_path);
        put_opt(out, r.orcpt.as_deref());
    }
}

/// A cursor over envelope bytes.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        if n > self.b.len() {
            return Err(FormatError::Envelope);
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(le32(self.take(4)?, 0))
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(le64(self.take(8)?, 0))
    }
    fn str(&mut self) -> Result<String, FormatError> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| FormatError::Envelope)
    }
    fn opt(&mut self) -> Result<Option<String>, FormatError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            _ => Err(FormatError::Envelope),
        }
    }
}

/// Decode an envelope written by [`encode_envelope`]; every byte must be used.
pub fn decode_envelope(b: &[u8]) -> Result<Envelope, FormatError> {
    let mut r = Reader { b };
    let arrival_unix_ms = r.u64()?;
    let body = r.u8()?;
    let smtputf8 = match r.u8()? {
        0 => false,
        1 => true,
        _ => return Err(FormatError::Envelope),
    };
    let ret = r.u8()?;
    let reverse_path = r.str()?;
    let envid = r.opt()?;
    let client_addr = r.str()?;
    let helo = r.str()?;
    let site = r.str()?;
    let n = r.u32()?;
    if n > MAX_RECIPIENTS {
        return Err(FormatError::Envelope);
    }
    let mut recipients = Vec::with_capacity((n as usize).min(r.b.len()));
    for _ in 0..n {
        let notify = r.u8()?;
        let forward_path = r.str()?;
        let orcpt = r.opt()?;
        recipients.push(EnvelopeRecipient { forward_path, notify, orcpt });
    }
    if !r.b.is_empty() {
        return Err(FormatError::Envelope);
    }
    Ok(Envelope {
        reverse_path,
        recipients,
        body,
        smtputf8,
        ret,
        envid,
        client_addr,
        helo,
        arrival_unix_ms,
        site,
    })
}

/// Encode a whole record (header, all-pending status, envelope, message, END) into `out`.
/// Used by tests and by compaction-free tools; the writer builds records incrementally.
pub fn encode_record(id: QueueId, env: &Envelope, message: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    let rcpt_count = u32::try_from(env.recipients.len()).unwrap_or(u32::MAX);
    out.resize(start + prefix_len(rcpt_count), 0);
    out[start + RECORD_STATUS_OFFSET..start + RECORD_STATUS_OFFSET + rcpt_count as usize]
        .fill(RcptStatus::Pending.as_byte());
    let env_start = out.len();
    encode_envelope(env, out);
    let envelope_len = u32::try_from(out.len() - env_start).unwrap_or(u32::MAX);
    out.extend_from_slice(message);
    let payload_crc = crc32fast::hash(&out[env_start..]);
    let h = RecordHeader {
        id,
        rcpt_count,
        envelope_len,
        message_len: message.len() as u64,
        payload_crc,
    };
    let (hb, hcrc) = h.encode();
    out[start..start + RECORD_HEADER_BYTES].copy_from_slice(&hb);
    out.extend_from_slice(&end_marker(hcrc));
    let total = align_up((out.len() - start) as u64) as usize;
    out.resize(start + total, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_env(n: usize) -> Envelope {
        Envelope {
            reverse_path: "a@example.org".into(),
            recipients: (0..n)
                .map(|i| EnvelopeRecipient {
                    forward_path: format!("r{i}@example.com"),
                    notify: NOTIFY_FAILURE,
                    orcpt: (i % 2 == 0).then(|| "rfc822;x@y".to_string()),
                })
                .collect(),
            body: 1,
            smtputf8: false,
            ret: 2,
            envid: Some("ENV1".into()),
            client_addr: "127.0.0.1:1234".into(),
            helo: "client.example".into(),
            arrival_unix_ms: 1_700_000_000_000,
            site: "default".into(),
        }
    }

    #[test]
    fn queue_id_display_parse_table() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0000000100000001", Some(0x1_0000_0001)),
            ("FFFFFFFFFFFFFFFF", Some(u64::MAX)),
            ("00000000000000ab", Some(0xab)),
            ("", None),
            ("123", None),
            ("00000001000000011", None),
            ("000000010000000G", None),
            ("+000000100000001", None),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<QueueId>().ok().map(|q| q.0), *want, "{text:?}");
        }
        assert_eq!(QueueId(0xab).to_string(), "00000000000000AB");
    }

    #[test]
    fn status_bytes_table() {
        let cases = [
            (b'P', Some(RcptStatus::Pending)),
            (b'D', Some(RcptStatus::Delivered)),
            (b'B', Some(RcptStatus::Bounced)),
            (b'X', Some(RcptStatus::Expired)),
            (0, None),
            (b'p', None),
        ];
        for (b, want) in cases {
            assert_eq!(RcptStatus::from_byte(b), want);
            if let Some(s) = want {
                assert_eq!(s.as_byte(), b);
            }
        }
    }

    #[test]
    fn segment_header_round_trip_and_flip() {
        let h = SegmentHeader {
            flags: SEGMENT_FLAG_SPILL,
            worker: 3,
            number: 77,
            created_unix_ms: 5,
            capacity_bytes: 1 << 20,
        };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        for i in 0..b.len() {
            let mut c = b;
            c[i] ^= 0x10;
            assert!(SegmentHeader::decode(&c).is_err(), "flip at {i}");
        }
        assert_eq!(SegmentHeader::decode(&b[..10]), Err(FormatError::Truncated));
    }

    #[test]
    fn unknown_status_bytes_read_as_pending() {
        for b in 0..=255u8 {
            let want = RcptStatus::from_byte(b).unwrap_or(RcptStatus::Pending);
            assert_eq!(RcptStatus::read(b), want, "{b:#04x}");
        }
        assert_eq!(RcptStatus::read(0), RcptStatus::Pending);
        assert_eq!(RcptStatus::read(b'D'), RcptStatus::Delivered);
    }

    #[test]
    fn record_every_bit_flip_detected() {
        let mut buf = Vec::new();
        encode_record(QueueId(9), &sample_env(3), b"Subject: x\r\n\r\nhello\r\n", &mut buf);
        assert!(parse_record(&buf).is_ok());
        let status = RECORD_STATUS_OFFSET..RECORD_STATUS_OFFSET + 3;
        let view = parse_record(&buf).unwrap();
        let end = (view.layout.end_offset as usize) + END_MARKER_BYTES;
        for byte in 0..end {
            for bit in 0..8 {
                let mut c = buf.clone();
                c[byte] ^= 1 << bit;
                let r = parse_record(&c);
                let is_status = status.contains(&byte);
                let is_pad = (RECORD_STATUS_OFFSET + 3..48).contains(&byte);
                if is_pad {
                    continue; // padding is not significant
                }
                if is_status {
                    // By design outside the checksum: any value parses (an unknown one
                    // reads as pending, `RcptStatus::read`).
                    assert!(r.is_ok(), "status byte {byte} bit {bit}");
                    continue;
                }
                if byte < 4 && c[0..4] == RECORD_MAGIC_DEAD {
                    continue;
                }
                assert!(r.is_err() || !r.unwrap().live, "flip byte {byte} bit {bit} undetected");
            }
        }
    }

    #[test]
    fn truncation_detected_at_every_length() {
        let mut buf = Vec::new();
        encode_record(QueueId(1), &sample_env(2), &[b'x'; 300], &mut buf);
        let total = buf.len();
        let view = parse_record(&buf).unwrap();
        assert_eq!(view.layout.total_len as usize, total);
        // Bytes after the END marker are alignment padding.
        for cut in 0..view.layout.end_offset as usize + END_MARKER_BYTES {
            let mut c = buf[..cut].to_vec();
            c.resize(total + 64, 0); // the rest of a preallocated segment reads as zeros
            assert!(parse_record(&c).is_err(), "cut at {cut} resurrected");
        }
    }

    fn arb_string() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[a-zA-Z0-9@.é<>]{0,40}").unwrap()
    }

    prop_compose! {
        fn arb_env()(reverse_path in arb_string(),
                     rcpts in proptest::collection::vec(
                         (arb_string(), any::<u8>(), proptest::option::of(arb_string())), 0..8),
                     body in 0u8..3, smtputf8 in any::<bool>(), ret in 0u8..3,
                     envid in proptest::option::of(arb_string()),
                     client_addr in arb_string(), helo in arb_string(),
                     arrival_unix_ms in any::<u64>(), site in arb_string()) -> Envelope {
            Envelope {
                reverse_path,
                recipients: rcpts.into_iter()
                    .map(|(forward_path, notify, orcpt)| EnvelopeRecipient { forward_path, notify, orcpt })
                    .collect(),
                body, smtputf8, ret, envid, client_addr, helo, arrival_unix_ms, site,
            }
        }
    }

    proptest! {
        #[test]
        fn envelope_round_trip(env in arb_env()) {
            let mut b = Vec::new();
            encode_envelope(&env, &mut b);
            prop_assert_eq!(decode_envelope(&b), Ok(env));
        }

        #[test]
        fn record_round_trip(env in arb_env(), id in any::<u64>(),
                             msg in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let mut b = vec![];
            encode_record(QueueId(id), &env, &msg, &mut b);
            let v = parse_record(&b).unwrap();
            prop_assert!(v.live);
            prop_assert_eq!(v.header.id, QueueId(id));
            prop_assert_eq!(v.layout.total_len as usize, b.len());
            prop_assert_eq!(b.len() % RECORD_ALIGN_BYTES, 0);
            let env_bytes = &b[v.layout.envelope_offset as usize..v.layout.message_offset as usize];
            prop_assert_eq!(decode_envelope(env_bytes), Ok(env));
            prop_assert_eq!(&b[v.layout.message_offset as usize..v.layout.end_offset as usize], &msg[..]);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_record(&b);
            let _ = decode_envelope(&b);
            let _ = SegmentHeader::decode(&b);
        }
    }
}
