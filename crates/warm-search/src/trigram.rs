//! Trigrams and posting lists.
//!
//! A trigram is three consecutive bytes, ASCII letters folded to lower case, packed in the low
//! 24 bits of a `u32`. Folding lets one index serve case-sensitive and case-insensitive
//! queries alike: a case-sensitive query only gets a few more candidates to verify.
//!
//! A posting list holds the ids of the files containing a trigram, ascending, stored as
//! varint-encoded gaps: most gaps fit in one byte, so a posting costs about a byte instead of
//! four.

/// A trigram of already folded bytes.
pub fn pack(a: u8, b: u8, c: u8) -> u32 {
    (u32::from(a) << 16) | (u32::from(b) << 8) | u32::from(c)
}

/// Collects the distinct trigrams of a file fed in chunks of any size.
pub struct Extractor {
    /// A bitset of 2^24 bits: clear between files.
    seen: Vec<u64>,
    found: Vec<u32>,
    /// The last two (folded) bytes of the previous chunk, and how many of them there are.
    carry: [u8; 2],
    carried: usize,
}

impl Default for Extractor {
    fn default() -> Extractor {
        Extractor {
            seen: vec![0; SEEN_WORDS],
            found: Vec::new(),
            carry: [0; 2],
            carried: 0,
        }
    }
}

impl Extractor {
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut window = [0u8; 2];
        let mut have = self.carried;
        window[..have].copy_from_slice(&self.carry[..have]);
        let (mut a, mut b) = (window[0], window[1]);
        for &byte in chunk {
            let c = byte.to_ascii_lowercase();
            if have < 2 {
                if have == 0 {
                    a = c;
                } else {
                    b = c;
                }
                have += 1;
                continue;
            }
            let trigram = pack(a, b, c);
            let (word, bit) = ((trigram >> 6) as usize, 1u64 << (trigram & 63));
            if self.seen[word] & bit == 0 {
                self.seen[word] |= bit;
                self.found.push(trigram);
            }
            (a, b) = (b, c);
        }
        self.carry = [a, b];
        self.carried = have;
    }

    /// The distinct trigrams of everything fed since the last call; ready for the next file.
    pub fn finish(&mut self) -> Vec<u32> {
        for &trigram in &self.found {
            self.seen[(trigram >> 6) as usize] = 0;
        }
        self.carried = 0;
        std::mem::take(&mut self.found)
    }
}

/// Words of the bitset of [`Extractor`].
pub const SEEN_WORDS: usize = (1 << 24) / 64;

/// The trigrams of a folded literal (empty when it is shorter than three bytes).
pub fn of_literal(folded: &[u8]) -> Vec<u32> {
    let mut trigrams: Vec<u32> = folded.windows(3).map(|w| pack(w[0], w[1], w[2])).collect();
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams
}

/// An ascending list of file ids, delta- and varint-encoded.
#[derive(Debug, Default, Clone)]
pub struct Postings {
    bytes: Vec<u8>,
    last: u32,
    len: u32,
}

impl Postings {
    /// Appends `id`, which must be greater than every id already in the list.
    pub fn push(&mut self, id: u32) {
        let mut gap = if self.len == 0 { id } else { id - self.last };
        loop {
            let byte = (gap & 0x7f) as u8;
            gap >>= 7;
            if gap == 0 {
                self.bytes.push(byte);
                break;
            }
            self.bytes.push(byte | 0x80);
        }
        self.last = id;
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held (for the index's memory report).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
    }

    pub fn shrink(&mut self) {
        self.bytes.shrink_to_fit();
    }

    /// The ids, ascending.
    pub fn decode(&self) -> Vec<u32> {
        let mut ids = Vec::with_capacity(self.len as usize);
        self.as_ref().decode_into(&mut ids);
        ids
    }

    pub fn as_ref(&self) -> PostingsRef<'_> {
        PostingsRef {
            bytes: &self.bytes,
            len: self.len,
        }
    }
}

/// An encoded posting list held elsewhere: in a [`Postings`], or in the stored index's
/// mapped file.
#[derive(Debug, Clone, Copy)]
pub struct PostingsRef<'a> {
    pub bytes: &'a [u8],
    /// How many ids it holds.
    pub len: u32,
}

impl PostingsRef<'_> {
    /// Appends the ids to `out`. Bytes that are no posting list (a stored file corrupted in
    /// a way its checksum missed) give wrong ids, never a panic.
    pub fn decode_into(&self, out: &mut Vec<u32>) {
        out.reserve(self.len as usize);
        let (mut current, mut gap, mut shift, mut first) = (0u32, 0u32, 0u32, true);
        for &byte in self.bytes {
            gap |= u32::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                current = if first {
                    gap
                } else {
                    current.wrapping_add(gap)
                };
                first = false;
                out.push(current);
                gap = 0;
                shift = 0;
            } else {
                shift = shift.saturating_add(7);
            }
        }
    }
}

/// Ids in both ascending lists.
pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len().min(b.len())));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Ids in either ascending list.
pub fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x == y => {
                i += 1;
                j += 1;
                x
            }
            (Some(&x), Some(&y)) if x < y => {
                i += 1;
                x
            }
            (Some(_), Some(&y)) | (None, Some(&y)) => {
                j += 1;
                y
            }
            (Some(&x), None) => {
                i += 1;
                x
            }
            (None, None) => break,
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_trigrams_are_folded_and_deduplicated_across_chunks() {
        let mut extractor = Extractor::default();
        for chunk in [&b"Ab"[..], b"cAB", b"", b"C", b"abc"] {
            extractor.feed(chunk);
        }
        let mut out = extractor.finish();
        out.sort_unstable();
        let mut expected = vec![
            pack(b'a', b'b', b'c'),
            pack(b'b', b'c', b'a'),
            pack(b'c', b'a', b'b'),
        ];
        expected.sort_unstable();
        assert_eq!(out, expected);
        assert!(
            extractor.seen.iter().all(|w| *w == 0),
            "the bitset is left clear"
        );
        extractor.feed(b"xy");
        assert!(extractor.finish().is_empty(), "no trigram spans two files");
    }

    #[test]
    fn postings_round_trip() {
        let ids = [0u32, 1, 2, 130, 131, 70_000, 70_001, 4_000_000_000];
        let mut postings = Postings::default();
        for id in ids {
            postings.push(id);
        }
        assert_eq!(postings.decode(), ids);
        assert_eq!(postings.len(), ids.len());
    }

    #[test]
    fn set_operations_on_sorted_ids() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[3, 4, 5]), [3, 5]);
        assert_eq!(union(&[1, 3, 5], &[2, 3, 6]), [1, 2, 3, 5, 6]);
        assert_eq!(union(&[], &[2]), [2]);
    }
}
