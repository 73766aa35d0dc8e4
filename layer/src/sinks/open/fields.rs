//! The fields of open spans, kept where a snapshot thread can read them: a fixed,
//! preallocated table per thread, written without allocating or locking.
//!
//! A span's fields are formatted once, when it is created (and again when
//! `Span::record` changes them), into [`ENTRY_BYTES`] bytes inline — longer text is cut
//! on a character boundary and ends with `…`. Each thread has [`ENTRIES`] entries; a
//! span created while all are taken is not recorded, and counted
//! ([`FieldTables::not_recorded`]). An entry is freed when its span closes, on whichever
//! thread that happens.
//!
//! # Concurrency
//!
//! Each entry is a sequence lock over atomics. A writer takes it by a compare-and-swap
//! of `seq` from even to odd (never waiting: if it is taken, the write is given up and
//! counted), stores `id`, `len` and the text's words, and releases it with `seq + 2`.
//! A reader reads `seq`, the rest, then `seq` again, and keeps the entry only if `seq`
//! was even and unchanged: it never sees a torn text, and every read is of an atomic,
//! so there is no data race whatever the writer does. Only the thread that owns a
//! table takes a free entry (`id == 0`) in it; other threads only update or free
//! entries whose `id` is their span's. A span's entry can therefore be written by two
//! threads at once only when both record or close that span at the same moment.
//!
//! # Encoding
//!
//! The text is a run of pairs, each its name's length (one byte), the name, its value's
//! length (one byte) and the value: no byte of a value needs escaping, so formatting
//! is copying. Integers and booleans are written without `core::fmt`; floats and
//! `Debug` values through it. The high bit of `len` says that something was cut. A
//! `record` rewrites the entry: the pairs it does not change, then the ones it sets.

use std::fmt::{self, Write as _};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::*};

use thread_local::ThreadLocal;
use tracing_core::field::{Field, Visit};

/// Entries per thread: as many as the core keeps live spans per thread in its table.
pub(crate) const ENTRIES: usize = 64;
/// Bytes of text per entry.
pub(crate) const ENTRY_BYTES: usize = 128;
const WORDS: usize = ENTRY_BYTES / 8;
/// [`Entry::len`]: the text was cut.
const CUT_FLAG: u32 = 1 << 31;
/// Marks a cut value.
const CUT: &str = "…";

/// One span's fields: a sequence lock over its id and text.
#[derive(Default)]
struct Entry {
    /// Even: stable; odd: a writer holds the entry.
    seq: AtomicU32,
    len: AtomicU32,
    /// The span's id; 0: free.
    id: AtomicU64,
    words: [AtomicU64; WORDS],
}

impl Entry {
    /// Takes the entry for writing, without waiting: the `seq` to release it with.
    fn lock(&self) -> Option<u32> {
        let seq = self.seq.load(Relaxed);
        if seq % 2 == 1 {
            return None;
        }
        self.seq
            .compare_exchange(seq, seq.wrapping_add(1), Acquire, Relaxed)
            .ok()?;
        // The stores below must not be seen before the odd `seq`.
        fence(Release);
        Some(seq)
    }

    fn unlock(&self, seq: u32) {
        self.seq.store(seq.wrapping_add(2), Release);
    }

    /// Writes `id` and the text of `buf`. Holds the lock.
    #[inline]
    fn write(&self, id: u64, buf: &Buf) {
        for (cell, word) in self
            .words
            .iter()
            .zip(buf.bytes.chunks_exact(8))
            .take(buf.len.div_ceil(8))
        {
            let word: [u8; 8] = word.try_into().unwrap_or_default();
            cell.store(u64::from_le_bytes(word), Relaxed);
        }
        self.len
            .store(buf.len as u32 | (buf.cut as u32 * CUT_FLAG), Relaxed);
        self.id.store(id, Relaxed);
    }

    /// Frees the entry: only its id changes (a reader drops a free entry by its id, and
    /// the next write sets the length and the words the text uses). Holds the lock.
    fn free(&self) {
        self.id.store(0, Relaxed);
    }

    /// Reads the entry, consistently: `(id, text)`, or `None` if it is free or was
    /// being written (tried a few times).
    fn read(&self, into: &mut Buf) -> Option<u64> {
        for _ in 0..4 {
            let seq = self.seq.load(Acquire);
            if seq % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let id = self.id.load(Relaxed);
            let len = self.len.load(Relaxed);
            for (i, cell) in self.words.iter().enumerate() {
                into.bytes[i * 8..i * 8 + 8].copy_from_slice(&cell.load(Relaxed).to_le_bytes());
            }
            fence(Acquire);
            if self.seq.load(Relaxed) == seq {
                into.len = ((len & !CUT_FLAG) as usize).min(ENTRY_BYTES);
                into.cut = len & CUT_FLAG != 0;
                return (id != 0).then_some(id);
            }
        }
        None
    }
}

/// One thread's entries.
struct Table {
    entries: Box<[Entry]>,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            entries: (0..ENTRIES).map(|_| Entry::default()).collect(),
        }
    }
}

impl Table {
    fn find(&self, id: u64) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id.load(Relaxed) == id)
    }
}

/// Every thread's table, and what could not be recorded.
#[derive(Default)]
pub(crate) struct FieldTables {
    tables: ThreadLocal<Table>,
    not_recorded: AtomicU64,
    lost_updates: AtomicU64,
}

impl FieldTables {
    /// Records the fields of span `id`, created on this thread; `false` if this
    /// thread's table is full (counted).
    pub(crate) fn insert(&self, id: u64, fields: &Buf) -> bool {
        let table = self.tables.get_or_default();
        for entry in table.entries.iter() {
            if entry.id.load(Relaxed) != 0 {
                continue;
            }
            let Some(seq) = entry.lock() else { continue };
            entry.write(id, fields);
            entry.unlock(seq);
            return true;
        }
        self.not_recorded.fetch_add(1, Relaxed);
        false
    }

    /// The entry of span `id`: this thread's table first, where it nearly always is.
    fn find(&self, id: u64) -> Option<&Entry> {
        if let Some(entry) = self.tables.get().and_then(|t| t.find(id)) {
            return Some(entry);
        }
        self.tables.iter().find_map(|t| t.find(id))
    }

    /// Applies `values` (a `record`) to span `id`'s fields, if they are recorded.
    pub(crate) fn update(&self, id: u64, values: &tracing_core::span::Record<'_>) {
        let Some(entry) = self.find(id) else { return };
        let mut new = Buf::default();
        values.record(&mut Formatter(&mut new));
        let mut old = Buf::default();
        if entry.read(&mut old) != Some(id) {
            return;
        }
        let Some(seq) = entry.lock() else {
            self.lost_updates.fetch_add(1, Relaxed);
            return;
        };
        if entry.id.load(Relaxed) == id {
            let mut merged = Buf::default();
            for (name, value) in old.pairs() {
                if !new.pairs().any(|(n, _)| n == name) {
                    merged.push_str_pair(name, value);
                }
            }
            for (name, value) in new.pairs() {
                merged.push_str_pair(name, value);
            }
            // What the old text had lost stays lost.
            merged.cut |= old.cut || new.cut;
            entry.write(id, &merged);
        }
        entry.unlock(seq);
    }

    /// Frees span `id`'s entry (its span closed, on any thread).
    pub(crate) fn remove(&self, id: u64) {
        let Some(entry) = self.find(id) else { return };
        // Nobody else writes a closing span's entry but a `record` racing with it
        // through a handle just dropped: wait that out, briefly.
        for _ in 0..64 {
            if let Some(seq) = entry.lock() {
                if entry.id.load(Relaxed) == id {
                    entry.free();
                }
                entry.unlock(seq);
                return;
            }
            std::hint::spin_loop();
        }
        // Still held: free it anyway (a reader may then see a mixed entry, and drops it
        // when its span is not open).
        let _ = entry.id.compare_exchange(id, 0, Relaxed, Relaxed);
        self.lost_updates.fetch_add(1, Relaxed);
    }

    /// Every recorded span's fields now.
    pub(crate) fn snapshot(&self) -> Vec<SpanFields> {
        let mut out = Vec::new();
        let mut buf = Buf::default();
        for table in self.tables.iter() {
            for entry in table.entries.iter() {
                if let Some(id) = entry.read(&mut buf) {
                    let pairs = buf
                        .pairs()
                        .map(|(n, v)| (n.to_owned(), v.to_owned()))
                        .collect();
                    out.push(SpanFields {
                        id,
                        pairs,
                        cut: buf.cut,
                    });
                }
            }
        }
        out
    }

    /// Spans whose fields were not recorded: their thread's table was full.
    pub(crate) fn not_recorded(&self) -> u64 {
        self.not_recorded.load(Relaxed)
    }

    /// Field updates (`record`) and frees given up because another thread was writing
    /// the same entry.
    pub(crate) fn lost_updates(&self) -> u64 {
        self.lost_updates.load(Relaxed)
    }
}

/// One span's fields, read back.
pub(crate) struct SpanFields {
    pub(crate) id: u64,
    /// `(name, value)`, in the order written.
    pub(crate) pairs: Vec<(String, String)>,
    /// Something was cut: the last value (which then ends with `…`), or pairs that no
    /// longer fitted.
    pub(crate) cut: bool,
}

/// A span's fields as text, on the stack (see the module docs' encoding); at most
/// [`ENTRY_BYTES`], cut with `…`.
pub(crate) struct Buf {
    bytes: [u8; ENTRY_BYTES],
    len: usize,
    /// Something was cut: nothing more is appended.
    cut: bool,
    /// Where the length of the value being written is.
    value_at: usize,
}

impl Default for Buf {
    fn default() -> Self {
        Buf {
            bytes: [0; ENTRY_BYTES],
            len: 0,
            cut: false,
            value_at: 0,
        }
    }
}

impl Buf {
    /// Appends the fields of a new span, in place (a `Buf` is not moved on the hot
    /// path: it is most of a cache line pair).
    pub(crate) fn record(&mut self, attrs: &tracing_core::span::Attributes<'_>) {
        attrs.record(&mut Formatter(self));
    }

    /// Room left for text, keeping room for [`CUT`].
    fn room(&self) -> usize {
        ENTRY_BYTES - CUT.len() - self.len
    }

    /// The `(name, value)` pairs, in the order written (a cut value ends with `…`).
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let text = &self.bytes[..self.len];
        let mut at = 0;
        std::iter::from_fn(move || {
            let mut field = || {
                let len = *text.get(at)? as usize;
                let bytes = text.get(at + 1..at + 1 + len)?;
                at += 1 + len;
                std::str::from_utf8(bytes).ok()
            };
            Some((field()?, field()?))
        })
    }

    /// Starts a pair: its name, and an empty value. `false` (and cut) if it does not
    /// fit.
    fn begin_pair(&mut self, name: &str) -> bool {
        if self.cut {
            return false;
        }
        if name.len() > u8::MAX as usize || 2 + name.len() > self.room() {
            self.cut = true;
            return false;
        }
        self.bytes[self.len] = name.len() as u8;
        self.bytes[self.len + 1..self.len + 1 + name.len()].copy_from_slice(name.as_bytes());
        self.len += 1 + name.len();
        self.value_at = self.len;
        self.bytes[self.len] = 0;
        self.len += 1;
        true
    }

    /// Appends `s` to the value begun last, or as much of it as fits (cut on a
    /// character boundary), then `…`.
    fn push_value(&mut self, s: &str) {
        self.push_value_bytes(s.as_bytes(), |i| s.is_char_boundary(i));
    }

    /// [`Buf::push_value`] of UTF-8 `bytes`, whose character boundaries `boundary` tells.
    fn push_value_bytes(&mut self, bytes: &[u8], boundary: impl Fn(usize) -> bool) {
        if self.cut {
            return;
        }
        let room = self.room();
        let take = if bytes.len() <= room {
            bytes.len()
        } else {
            (0..=room).rev().find(|&i| boundary(i)).unwrap_or(0)
        };
        self.bytes[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
        if take < bytes.len() {
            self.bytes[self.len..self.len + CUT.len()].copy_from_slice(CUT.as_bytes());
            self.len += CUT.len();
            self.cut = true;
        }
        // A value is shorter than ENTRY_BYTES: its length fits the byte.
        self.bytes[self.value_at] = (self.len - self.value_at - 1) as u8;
    }

    fn push_str_pair(&mut self, name: &str, value: &str) {
        if let Some(at) = self.try_whole_pair(name.as_bytes(), value.len()) {
            self.bytes[at..at + value.len()].copy_from_slice(value.as_bytes());
            return;
        }
        if self.begin_pair(name) {
            self.push_value(value);
        }
    }

    /// Writes the head of a pair whose value is `value_len` bytes and fits whole (the
    /// common case: one bounds check instead of [`Buf::begin_pair`]'s and
    /// [`Buf::push_value`]'s): the name and both lengths, and reserves the value's
    /// bytes. The index where the value goes, or `None` (nothing written) if the pair
    /// does not fit whole and must take the cutting path.
    fn try_whole_pair(&mut self, name: &[u8], value_len: usize) -> Option<usize> {
        // `room` is under `ENTRY_BYTES`, so both lengths fit their byte when this holds.
        if self.cut || 2 + name.len() + value_len > self.room() {
            return None;
        }
        let at = self.len;
        self.bytes[at] = name.len() as u8;
        self.bytes[at + 1..at + 1 + name.len()].copy_from_slice(name);
        self.value_at = at + 1 + name.len();
        self.bytes[self.value_at] = value_len as u8;
        self.len = self.value_at + 1 + value_len;
        Some(self.value_at + 1)
    }

    /// A pair for an integer, written without `core::fmt` (a field of a hot span is
    /// often a step counter: formatting it is most of what recording costs).
    fn push_integer(&mut self, name: &str, negative: bool, value: u64) {
        let len = value.checked_ilog10().unwrap_or(0) as usize + 1 + negative as usize;
        // Written straight into place when the pair fits whole.
        if let Some(at) = self.try_whole_pair(name.as_bytes(), len) {
            write_integer(&mut self.bytes[at..at + len], negative, value);
            return;
        }
        let mut digits = [0u8; 21];
        write_integer(&mut digits[..len], negative, value);
        if self.begin_pair(name) {
            // ASCII: every byte is a character.
            self.push_value_bytes(&digits[..len], |_| true);
        }
    }

    /// A pair whose value `core::fmt` writes.
    fn push_fmt_pair(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if self.begin_pair(name) {
            let _ = self.write_fmt(value);
        }
    }
}

/// `"00"` to `"99"`: an integer is written two digits per division.
const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Writes `value` (with a `-` if `negative`) as `Display` does into `out`, which is
/// exactly as long as that text: digits from the last, two at a time.
#[inline]
fn write_integer(out: &mut [u8], negative: bool, mut value: u64) {
    let (sign, digits) = out.split_at_mut(negative as usize);
    if let Some(minus) = sign.first_mut() {
        *minus = b'-';
    }
    let mut end = digits.len();
    while value >= 100 && end >= 2 {
        let pair = (value % 100) as usize * 2;
        value /= 100;
        end -= 2;
        digits[end..end + 2].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    }
    if value >= 10 && end >= 2 {
        let pair = value as usize * 2;
        digits[end - 2..end].copy_from_slice(&DIGIT_PAIRS[pair..pair + 2]);
    } else if let Some(last) = end.checked_sub(1).and_then(|i| digits.get_mut(i)) {
        *last = b'0' + value as u8;
    }
}

/// Writes into the value begun last.
impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_value(s);
        Ok(())
    }
}

/// Formats each field into a [`Buf`].
struct Formatter<'a>(&'a mut Buf);

impl Visit for Formatter<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0
            .push_integer(field.name(), value < 0, value.unsigned_abs());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push_integer(field.name(), false, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.push_fmt_pair(field.name(), format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_str(field, if value { "true" } else { "false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push_str_pair(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .push_fmt_pair(field.name(), format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(pairs: &[(&str, &str)]) -> Buf {
        let mut b = Buf::default();
        for (n, v) in pairs {
            b.push_str_pair(n, v);
        }
        b
    }

    fn text(b: &Buf) -> &[u8] {
        &b.bytes[..b.len]
    }

    #[test]
    fn a_long_value_is_cut_on_a_character_boundary_and_marked() {
        let long = "é".repeat(100);
        let b = buf(&[("a", "1"), ("text", &long), ("after", "x")]);
        let pairs: Vec<_> = b.pairs().collect();
        assert_eq!(pairs.len(), 2, "{pairs:?}");
        assert_eq!(pairs[0], ("a", "1"));
        assert!(pairs[1].1.ends_with(CUT) && b.cut);
        assert!(b.len <= ENTRY_BYTES);
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        let mut b = Buf::default();
        for (i, v) in [0, 7, -1, i64::MIN, i64::MAX].into_iter().enumerate() {
            b.push_integer(&i.to_string(), v < 0, v.unsigned_abs());
        }
        b.push_integer("max", false, u64::MAX);
        let values: Vec<_> = b.pairs().map(|(_, v)| v.to_owned()).collect();
        let expected: Vec<String> = [0, 7, -1, i64::MIN, i64::MAX]
            .iter()
            .map(ToString::to_string)
            .chain([u64::MAX.to_string()])
            .collect();
        assert_eq!(values, expected);
    }

    #[test]
    fn integers_of_every_length_are_written_as_display_writes_them() {
        let mut values = vec![u64::MAX];
        for exp in 0..20 {
            let p = 10u64.pow(exp);
            values.extend([p - 1, p, p + 1, p.saturating_mul(5).saturating_add(3)]);
        }
        for v in values {
            for negative in [false, true] {
                let mut b = Buf::default();
                b.push_integer("n", negative, v);
                let expected = if negative {
                    format!("-{v}")
                } else {
                    v.to_string()
                };
                let pairs: Vec<_> = b.pairs().collect();
                assert_eq!(pairs, [("n", expected.as_str())], "{v}");
            }
        }
    }

    /// The pair as the general path writes it: name, then the value, cut if need be.
    fn by_pieces(b: &mut Buf, name: &str, value: &str) {
        if b.begin_pair(name) {
            b.push_value(value);
        }
    }

    #[test]
    fn a_pair_written_whole_is_what_the_general_path_writes_at_every_fill() {
        for fill in 0..ENTRY_BYTES {
            let filler = "x".repeat(fill);
            for (name, value) in [("n", "1234567"), ("name", "é-value"), ("", "")] {
                let (mut whole, mut pieces) = (buf(&[("f", &filler)]), buf(&[("f", &filler)]));
                whole.push_str_pair(name, value);
                by_pieces(&mut pieces, name, value);
                assert_eq!(text(&whole), text(&pieces), "fill {fill}, {name}");
                assert_eq!(whole.cut, pieces.cut, "fill {fill}, {name}");
            }
            let (mut whole, mut pieces) = (buf(&[("f", &filler)]), buf(&[("f", &filler)]));
            whole.push_integer("step", true, 1234567);
            by_pieces(&mut pieces, "step", "-1234567");
            assert_eq!(text(&whole), text(&pieces), "fill {fill}, integer");
            assert_eq!(whole.cut, pieces.cut, "fill {fill}, integer");
        }
    }

    #[test]
    fn a_freed_entry_taken_again_reads_only_its_new_text() {
        let tables = FieldTables::default();
        tables.insert(1, &buf(&[("long", &"a".repeat(90))]));
        tables.remove(1);
        assert!(tables.insert(2, &buf(&[("s", "b")])));
        let snap = tables.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!((snap[0].id, snap[0].cut), (2, false));
        assert_eq!(snap[0].pairs, [("s".to_string(), "b".to_string())]);
    }

    #[test]
    fn any_byte_may_be_in_a_value_and_debug_values_are_formatted() {
        let mut b = buf(&[("a", "x=\u{1f}y"), ("", "")]);
        b.push_fmt_pair("f", format_args!("{}", 0.5));
        b.push_fmt_pair("d", format_args!("{:?}", "q"));
        let pairs: Vec<_> = b.pairs().collect();
        assert_eq!(
            pairs,
            [("a", "x=\u{1f}y"), ("", ""), ("f", "0.5"), ("d", "\"q\"")]
        );
        assert!(!b.cut);
    }

    #[test]
    fn entries_read_back_what_was_written_and_free_on_remove() {
        let tables = FieldTables::default();
        assert!(tables.insert(7, &buf(&[("epoch", "3")])));
        let snap = tables.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].id, 7);
        assert_eq!(snap[0].pairs, [("epoch".to_string(), "3".to_string())]);
        tables.remove(7);
        assert!(tables.snapshot().is_empty());
    }

    #[test]
    fn a_full_table_counts_what_it_could_not_record() {
        let tables = FieldTables::default();
        for id in 1..=ENTRIES as u64 + 3 {
            tables.insert(id, &buf(&[("i", "1")]));
        }
        assert_eq!(tables.not_recorded(), 3);
        assert_eq!(tables.snapshot().len(), ENTRIES);
        tables.remove(1);
        assert!(tables.insert(100, &buf(&[("i", "2")])));
        assert_eq!(tables.not_recorded(), 3);
    }

    #[test]
    fn a_reader_skips_an_entry_being_written() {
        let tables = FieldTables::default();
        tables.insert(1, &buf(&[("v", "a")]));
        let entry = tables.find(1).expect("inserted");
        let seq = entry.lock().expect("free");
        assert!(tables.snapshot().is_empty(), "odd sequence: skipped");
        assert!(entry.lock().is_none(), "one writer at a time");
        entry.unlock(seq);
        assert_eq!(tables.snapshot().len(), 1);
    }

    #[test]
    fn a_reader_never_sees_a_torn_entry() {
        let tables = std::sync::Arc::new(FieldTables::default());
        let texts = [
            buf(&[("v", &"a".repeat(100))]),
            buf(&[("v", &"b".repeat(100))]),
        ];
        tables.insert(1, &texts[0]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (tables, stop) = (tables.clone(), stop.clone());
            let texts = [
                buf(&[("v", &"a".repeat(100))]),
                buf(&[("v", &"b".repeat(100))]),
            ];
            std::thread::spawn(move || {
                let entry = tables.find(1).expect("inserted");
                let mut i = 0;
                while !stop.load(Relaxed) {
                    let seq = entry.lock().expect("only writer");
                    entry.write(1, &texts[i % 2]);
                    entry.unlock(seq);
                    i += 1;
                }
            })
        };
        let entry = tables.find(1).expect("inserted");
        let mut read = Buf::default();
        let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
        while std::time::Instant::now() < until {
            for _ in 0..1000 {
                if entry.read(&mut read).is_some() {
                    let t = text(&read);
                    assert!(t == text(&texts[0]) || t == text(&texts[1]), "torn read");
                }
            }
        }
        stop.store(true, Relaxed);
        writer.join().expect("writer");
    }
}
