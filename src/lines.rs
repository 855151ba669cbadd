//! The pump's line framer: bytes come in by reads of any size, and go out in
//! writes that end at a line boundary, so that a reopen (which happens only
//! between two writes) never splits a line between the old and the new file.
//!
//! A line longer than the buffer cannot be held whole: once the buffer is
//! full it goes out as it is, in pieces. That bound is the guarantee's limit.

/// Reads land on a page boundary. The kernel copies a pipe's pages to the
/// read's destination; when that destination sits 1 to 31 bytes past the
/// source modulo 4096, `rep movsb` takes a slow path on AMD Zen (2 to 4 times
/// the time, measured with bench/pump.sh). A page-aligned destination, like
/// cat's, avoids it: the held tail is moved to end just before the boundary.
const PAGE: usize = 4096;

/// Pump buffer: the most one read takes from a pipe, and the longest line
/// that is guaranteed never to be split by a reopen.
pub const BUFFER_SIZE: usize = 128 * 1024;

pub struct LineBuffer {
    /// `capacity` bytes of room, plus two pages for the alignment.
    buf: Box<[u8]>,
    capacity: usize,
    /// The first page boundary in `buf`.
    base: usize,
    /// The bytes held are `buf[start..start + len]`.
    start: usize,
    len: usize,
}

impl LineBuffer {
    pub fn new(capacity: usize) -> LineBuffer {
        let buf = vec![0; capacity + 2 * PAGE].into_boxed_slice();
        // The heap block of a Box never moves, so the boundary stays put.
        let base = (PAGE - buf.as_ptr() as usize % PAGE) % PAGE;
        LineBuffer { buf, capacity, base, start: base, len: 0 }
    }

    /// Where the next read goes: the first page boundary after the held
    /// bytes, which are moved (if need be) to end right there.
    pub fn spare(&mut self) -> &mut [u8] {
        let at = self.base + self.len.next_multiple_of(PAGE);
        let start = at - self.len;
        if start != self.start {
            self.buf.copy_within(self.start..self.start + self.len, start);
            self.start = start;
        }
        let room = self.capacity - self.len;
        &mut self.buf[at..at + room]
    }

    /// Accounts for `n` bytes just read into [`spare`](Self::spare), and
    /// returns how many bytes at the front are ready to be written: every
    /// complete line, or the whole buffer when it is full without a newline.
    pub fn filled(&mut self, n: usize) -> usize {
        let old = self.len;
        self.len += n;
        // Only the new bytes can hold a newline: the held tail has none.
        let new = &self.buf[self.start + old..self.start + self.len];
        match new.iter().rposition(|&b| b == b'\n') {
            Some(i) => old + i + 1,
            None if self.len == self.capacity => self.len,
            None => 0,
        }
    }

    /// The first `k` bytes, as returned by [`filled`](Self::filled).
    pub fn front(&self, k: usize) -> &[u8] {
        &self.buf[self.start..self.start + k]
    }

    /// Drops the first `k` bytes (written), keeping the incomplete tail where
    /// it is: [`spare`](Self::spare) moves it before the next read.
    pub fn consume(&mut self, k: usize) {
        self.start += k;
        self.len -= k;
    }

    /// Everything held: an incomplete last line.
    pub fn held(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::{LineBuffer, PAGE};
    use proptest::prelude::*;

    /// Feeds `input` in reads of the given sizes; returns the writes.
    fn frame(input: &[u8], reads: &[usize], capacity: usize) -> Vec<Vec<u8>> {
        let mut lb = LineBuffer::new(capacity);
        let (mut writes, mut pos, mut r) = (Vec::new(), 0, 0);
        while pos < input.len() {
            let want = reads[r % reads.len()].max(1);
            r += 1;
            let spare = lb.spare();
            let n = want.min(spare.len()).min(input.len() - pos);
            spare[..n].copy_from_slice(&input[pos..pos + n]);
            pos += n;
            let k = lb.filled(n);
            if k > 0 {
                writes.push(lb.front(k).to_vec());
                lb.consume(k);
            }
        }
        if lb.held() > 0 {
            let k = lb.held();
            writes.push(lb.front(k).to_vec()); // the final flush at EOF
        }
        writes
    }

    #[test]
    fn reads_land_on_a_page_boundary() {
        let mut lb = LineBuffer::new(128 * 1024);
        for chunk in [&b"abc\nde"[..], b"f\ng", b"", b"hij"] {
            let held = lb.held();
            let spare = lb.spare();
            assert_eq!(spare.as_ptr() as usize % PAGE, 0);
            assert_eq!(spare.len(), 128 * 1024 - held);
            spare[..chunk.len()].copy_from_slice(chunk);
            let k = lb.filled(chunk.len());
            lb.consume(k);
        }
        assert_eq!(lb.front(lb.held()), b"ghij");
    }

    proptest! {
        #[test]
        fn any_chunking_gives_back_the_input_split_only_at_line_ends(
            input in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>(), Just(b'a')], 0..4000),
            reads in proptest::collection::vec(1usize..700, 1..20),
            capacity in 1usize..300,
        ) {
            let writes = frame(&input, &reads, capacity);
            prop_assert_eq!(writes.concat(), input.clone());
            // All but the last (the flush at EOF) end a line,
            let body = &writes[..writes.len().saturating_sub(1)];
            for w in body {
                // A write ends a line, unless it is a full buffer of a line too long to hold.
                // unless a line too long to hold filled the buffer.
                prop_assert!(w.ends_with(b"\n") || (w.len() == capacity && !w.contains(&b'\n')),
                    "write of {} bytes ends mid-line", w.len());
            }
        }

        #[test]
        fn a_line_shorter_than_the_buffer_is_never_split(
            lines in proptest::collection::vec("[a-z]{0,60}", 1..100),
            reads in proptest::collection::vec(1usize..200, 1..10),
        ) {
            let input: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
            let writes = frame(&input, &reads, 64);
            for w in &writes {
                prop_assert!(w.ends_with(b"\n"));
            }
        }
    }
}
