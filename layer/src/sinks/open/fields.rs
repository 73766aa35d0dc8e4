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
//! The text is `name=value` pairs, each followed by [`SEPARATOR`] (a control character
//! that values never keep: it is written as a space). A `record` rewrites the entry:
//! the pairs it does not change, then the ones it sets.

use std::fmt::{self, Write as _};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::*};

use thread_local::ThreadLocal;
use tracing_core::field::{Field, Visit};

/// Entries per thread: as many as the core keeps live spans per thread in its table.
pub(crate) const ENTRIES: usize = 64;
/// Bytes of text per entry.
pub(crate) const ENTRY_BYTES: usize = 128;
const WORDS: usize = ENTRY_BYTES / 8;
/// Ends every `name=value` pair in an entry.
const SEPARATOR: u8 = 0x1f;
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

    /// Writes `id` and `text` (at most [`ENTRY_BYTES`]). Holds the lock.
    fn write(&self, id: u64, text: &[u8]) {
        let mut word = [0u8; 8];
        for (i, cell) in self.words.iter().enumerate() {
            let start = (i * 8).min(text.len());
            let end = (start + 8).min(text.len());
            word.fill(0);
            word[..end - start].copy_from_slice(&text[start..end]);
            cell.store(u64::from_le_bytes(word), Relaxed);
            if end == text.len() {
                break;
            }
        }
        self.len.store(text.len() as u32, Relaxed);
        self.id.store(id, Relaxed);
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
            let len = (self.len.load(Relaxed) as usize).min(ENTRY_BYTES);
            for (i, cell) in self.words.iter().enumerate() {
                into.bytes[i * 8..i * 8 + 8].copy_from_slice(&cell.load(Relaxed).to_le_bytes());
            }
            fence(Acquire);
            if self.seq.load(Relaxed) == seq {
                into.len = len;
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
            entry.write(id, fields.text());
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
                    merged.push_pair(name, format_args!("{value}"));
                }
            }
            for (name, value) in new.pairs() {
                merged.push_pair(name, format_args!("{value}"));
            }
            entry.write(id, merged.text());
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
                    entry.write(0, &[]);
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
                    let cut = buf.text().ends_with(CUT.as_bytes());
                    out.push(SpanFields { id, pairs, cut });
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
    /// The text was cut: the last value ends with `…`.
    pub(crate) cut: bool,
}

/// A span's fields as text, on the stack: `name=value` pairs, each ending with
/// [`SEPARATOR`]; cut at [`ENTRY_BYTES`] with `…`.
pub(crate) struct Buf {
    bytes: [u8; ENTRY_BYTES],
    len: usize,
    /// Cut: nothing more is appended.
    full: bool,
}

impl Default for Buf {
    fn default() -> Self {
        Buf {
            bytes: [0; ENTRY_BYTES],
            len: 0,
            full: false,
        }
    }
}

impl Buf {
    /// The fields of a new span.
    pub(crate) fn of(attrs: &tracing_core::span::Attributes<'_>) -> Buf {
        let mut buf = Buf::default();
        attrs.record(&mut Formatter(&mut buf));
        buf
    }

    fn text(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// The `(name, value)` pairs (a cut value ends with `…`; a pair cut inside its name
    /// is left out).
    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let text = std::str::from_utf8(self.text()).unwrap_or_default();
        text.split(SEPARATOR as char)
            .filter_map(|pair| pair.split_once('='))
    }

    /// Appends `name=value` and the separator, cutting the value to what fits.
    fn push_pair(&mut self, name: &str, value: fmt::Arguments<'_>) {
        if self.full {
            return;
        }
        self.push_str(name);
        self.push_str("=");
        let _ = self.write_fmt(value);
        if !self.full {
            self.push_byte(SEPARATOR);
        }
    }

    fn push_byte(&mut self, b: u8) {
        if self.full {
            return;
        }
        if self.len + 1 + CUT.len() > ENTRY_BYTES {
            self.cut();
            return;
        }
        self.bytes[self.len] = b;
        self.len += 1;
    }

    /// Appends `s` (its separators as spaces), or as much as fits, then `…`.
    fn push_str(&mut self, s: &str) {
        if self.full {
            return;
        }
        let room = ENTRY_BYTES - CUT.len() - self.len;
        let take = if s.len() <= room {
            s.len()
        } else {
            (0..=room)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0)
        };
        let dst = &mut self.bytes[self.len..self.len + take];
        dst.copy_from_slice(&s.as_bytes()[..take]);
        // `contains` on bytes is a `memchr`: the common case (no separator) is one pass.
        if dst.contains(&SEPARATOR) {
            for b in dst.iter_mut().filter(|b| **b == SEPARATOR) {
                *b = b' ';
            }
        }
        self.len += take;
        if take < s.len() {
            self.cut();
        }
    }

    /// Appends `name=value` for an integer, written without `core::fmt` (a field of a
    /// hot span is often a step counter: this is most of what formatting costs).
    fn push_integer(&mut self, name: &str, negative: bool, mut value: u64) {
        let mut digits = [0u8; 21];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        if negative {
            at -= 1;
            digits[at] = b'-';
        }
        self.push_str(name);
        self.push_str("=");
        // ASCII digits: always valid UTF-8.
        self.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
        self.push_byte(SEPARATOR);
    }

    fn cut(&mut self) {
        self.bytes[self.len..self.len + CUT.len()].copy_from_slice(CUT.as_bytes());
        self.len += CUT.len();
        self.full = true;
    }
}

impl fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push_str(s);
        Ok(())
    }
}

/// Formats each field into a [`Buf`]: typed values by `Display` (no `Debug` quoting,
/// no allocation), others by `Debug`.
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
        self.0.push_pair(field.name(), format_args!("{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_str(field, if value { "true" } else { "false" });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.0.full {
            return;
        }
        self.0.push_str(field.name());
        self.0.push_str("=");
        self.0.push_str(value);
        self.0.push_byte(SEPARATOR);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push_pair(field.name(), format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf(pairs: &[(&str, &str)]) -> Buf {
        let mut b = Buf::default();
        for (n, v) in pairs {
            b.push_pair(n, format_args!("{v}"));
        }
        b
    }

    #[test]
    fn a_long_value_is_cut_on_a_character_boundary_and_marked() {
        let long = "é".repeat(100);
        let b = buf(&[("a", "1"), ("text", &long), ("after", "x")]);
        let pairs: Vec<_> = b.pairs().collect();
        assert_eq!(pairs.len(), 2, "{pairs:?}");
        assert_eq!(pairs[0], ("a", "1"));
        assert!(pairs[1].1.ends_with(CUT));
        assert!(b.text().len() <= ENTRY_BYTES);
        assert!(std::str::from_utf8(b.text()).is_ok());
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
    fn separators_inside_values_become_spaces() {
        let b = buf(&[("a", "x\u{1f}y")]);
        assert_eq!(b.pairs().collect::<Vec<_>>(), [("a", "x y")]);
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
                    entry.write(1, texts[i % 2].text());
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
                    let text = read.text();
                    assert!(
                        text == texts[0].text() || text == texts[1].text(),
                        "torn read"
                    );
                }
            }
        }
        stop.store(true, Relaxed);
        writer.join().expect("writer");
    }
}
