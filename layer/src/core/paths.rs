//! Span paths ("epoch > forward") interned into small integer ids.
//!
//! A path is the list of span names from a root span down to a span. Statistics are
//! kept per path, so two spans named `forward` under `epoch` share one entry wherever
//! they were created, and the same name under another parent is another path.
//!
//! The hot path never builds or hashes a string: each thread keeps a small
//! direct-mapped [`PathCache`] from `(parent path, callsite)` — two integers — to the
//! path id. Only a miss reads the shared table (under its lock) to find or create the
//! id by name. After warm-up, interning is one indexed compare in the thread's own
//! memory.

use std::collections::HashMap;
use std::sync::RwLock;

use super::sync::RwUnpoisoned;
use tracing_core::Metadata;

/// Index of a path in the [`PathTable`], assigned in order of first appearance.
pub(crate) type PathId = u32;

/// Paths deeper than this fold into their ancestor at this depth, so that unbounded
/// recursion of an instrumented function cannot create unbounded paths.
pub(crate) const MAX_DEPTH: u16 = 64;

/// One interned path: its last name and its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PathEntry {
    pub(crate) parent: Option<PathId>,
    pub(crate) name: &'static str,
    /// 1 for a root span.
    pub(crate) depth: u16,
}

#[derive(Default)]
struct Shared {
    entries: Vec<PathEntry>,
    by_name: HashMap<(Option<PathId>, &'static str), PathId>,
}

/// All paths seen so far.
#[derive(Default)]
pub(crate) struct PathTable {
    shared: RwLock<Shared>,
}

/// Slots in a thread's [`PathCache`]; a power of two.
const CACHE_SLOTS: usize = 256;

/// One thread's direct-mapped cache `(parent path, callsite) -> (path, features)`. A
/// collision only costs a visit to the shared table.
pub(crate) struct PathCache {
    /// `(parent or u32::MAX, callsite address, path, feature bits)`; callsite 0 marks an
    /// empty slot.
    slots: Box<[(u32, usize, PathId, u8); CACHE_SLOTS]>,
}

impl Default for PathCache {
    fn default() -> Self {
        PathCache {
            slots: Box::new([(0, 0, 0, 0); CACHE_SLOTS]),
        }
    }
}

impl PathCache {
    /// The cached `(path, feature bits)` of `parent > meta`, if this thread has it.
    #[inline(always)]
    pub(crate) fn get(
        &self,
        parent: Option<PathId>,
        meta: &'static Metadata<'static>,
    ) -> Option<(PathId, u8)> {
        let (parent_key, callsite, index) = Self::key(parent, meta);
        let slot = &self.slots[index];
        (slot.0 == parent_key && slot.1 == callsite).then_some((slot.2, slot.3))
    }

    /// `(parent key, callsite address, cache index)`.
    #[inline(always)]
    fn key(parent: Option<PathId>, meta: &'static Metadata<'static>) -> (u32, usize, usize) {
        let parent_key = parent.unwrap_or(u32::MAX);
        let callsite = meta as *const Metadata<'static> as usize;
        // Metadata are statics at least 8-byte aligned: drop the low bits, mix the parent.
        let index =
            ((callsite >> 3) ^ (parent_key as usize).wrapping_mul(0x9E37_79B9)) & (CACHE_SLOTS - 1);
        (parent_key, callsite, index)
    }
}

impl PathTable {
    /// The id of the path `parent > meta.name()`, created on first use, and the
    /// callsite's feature bits: `classify(metadata, depth)`, called once per callsite and
    /// parent on this thread (so per-span features cost a cached byte).
    #[inline]
    pub(crate) fn intern(
        &self,
        cache: &mut PathCache,
        parent: Option<PathId>,
        meta: &'static Metadata<'static>,
        classify: impl FnOnce(&'static Metadata<'static>, u16) -> u8,
    ) -> (PathId, u8) {
        let (parent_key, callsite, index) = PathCache::key(parent, meta);
        let slot = &mut cache.slots[index];
        if slot.0 == parent_key && slot.1 == callsite {
            return (slot.2, slot.3);
        }
        let id = self.intern_slow(parent, meta.name());
        let depth = self.shared.read_unpoisoned().entries[id as usize].depth;
        let features = classify(meta, depth);
        *slot = (parent_key, callsite, id, features);
        (id, features)
    }

    #[cold]
    fn intern_slow(&self, parent: Option<PathId>, name: &'static str) -> PathId {
        if let Some(&id) = self.shared.read_unpoisoned().by_name.get(&(parent, name)) {
            return id;
        }
        let mut shared = self.shared.write_unpoisoned();
        let depth = parent.map_or(0, |p| shared.entries[p as usize].depth) + 1;
        if depth > MAX_DEPTH {
            return parent.expect("depth > 1 implies a parent");
        }
        if let Some(&id) = shared.by_name.get(&(parent, name)) {
            return id;
        }
        let id = shared.entries.len() as PathId;
        shared.entries.push(PathEntry {
            parent,
            name,
            depth,
        });
        shared.by_name.insert((parent, name), id);
        id
    }

    /// A copy of every entry, indexed by id.
    pub(crate) fn entries(&self) -> Vec<PathEntry> {
        self.shared.read_unpoisoned().entries.clone()
    }

    /// The id of the path given by its names from the root, if it exists.
    pub(crate) fn find(&self, names: &[&str]) -> Option<PathId> {
        let shared = self.shared.read_unpoisoned();
        let mut parent = None;
        for name in names {
            parent = Some(*shared.by_name.get(&(parent, *name))?);
        }
        parent
    }
}

/// The names of path `id` from the root, given all entries.
pub(crate) fn names(entries: &[PathEntry], id: PathId) -> Vec<&'static str> {
    let mut names = Vec::with_capacity(entries[id as usize].depth as usize);
    let mut cur = Some(id);
    while let Some(i) = cur {
        names.push(entries[i as usize].name);
        cur = entries[i as usize].parent;
    }
    names.reverse();
    names
}

/// Ids in tree order: each path followed by its children, siblings by first appearance.
pub(crate) fn tree_order(entries: &[PathEntry]) -> Vec<PathId> {
    let mut children: Vec<Vec<PathId>> = vec![Vec::new(); entries.len()];
    let mut roots = Vec::new();
    for (id, e) in entries.iter().enumerate() {
        match e.parent {
            Some(p) => children[p as usize].push(id as PathId),
            None => roots.push(id as PathId),
        }
    }
    let mut order = Vec::with_capacity(entries.len());
    let mut stack: Vec<PathId> = roots.into_iter().rev().collect();
    while let Some(id) = stack.pop() {
        order.push(id);
        stack.extend(children[id as usize].iter().rev());
    }
    order
}

/// Parses `"epoch > forward"` into its names.
pub(crate) fn parse(path: &str) -> Vec<&str> {
    path.split('>').map(str::trim).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta_of(span: &tracing::Span) -> &'static Metadata<'static> {
        span.metadata().expect("span is enabled")
    }

    #[test]
    fn same_names_share_a_path_and_tree_order_is_depth_first() {
        let table = PathTable::default();
        let c = &mut PathCache::default();
        let (ids, entries) =
            tracing::subscriber::with_default(tracing_subscriber::registry(), || {
                let epoch = table
                    .intern(c, None, meta_of(&tracing::info_span!("epoch")), |_, _| 0)
                    .0;
                let fwd_a = table
                    .intern(
                        c,
                        Some(epoch),
                        meta_of(&tracing::info_span!("forward")),
                        |_, _| 0,
                    )
                    .0;
                let eval = table
                    .intern(c, None, meta_of(&tracing::info_span!("eval")), |_, _| 0)
                    .0;
                // Another callsite with the same name under the same parent: same path.
                let fwd_b = table
                    .intern(
                        c,
                        Some(epoch),
                        meta_of(&tracing::info_span!("forward")),
                        |_, _| 0,
                    )
                    .0;
                let fwd_eval = table
                    .intern(
                        c,
                        Some(eval),
                        meta_of(&tracing::info_span!("forward")),
                        |_, _| 0,
                    )
                    .0;
                // Cached answers agree with the table.
                assert_eq!(
                    table
                        .intern(
                            c,
                            Some(epoch),
                            meta_of(&tracing::info_span!("forward")),
                            |_, _| 0
                        )
                        .0,
                    fwd_a
                );
                ((epoch, fwd_a, eval, fwd_b, fwd_eval), table.entries())
            });
        let (epoch, fwd_a, eval, fwd_b, fwd_eval) = ids;
        assert_eq!(fwd_a, fwd_b);
        assert_ne!(fwd_a, fwd_eval);
        assert_eq!(names(&entries, fwd_eval), ["eval", "forward"]);
        assert_eq!(tree_order(&entries), [epoch, fwd_a, eval, fwd_eval]);
        assert_eq!(table.find(&parse("epoch > forward")), Some(fwd_a));
        assert_eq!(table.find(&parse("forward")), None);
    }

    #[test]
    fn recursion_folds_at_max_depth() {
        let table = PathTable::default();
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            let span = tracing::info_span!("recurse");
            let meta = meta_of(&span);
            let (mut parent, c) = (None, &mut PathCache::default());
            for _ in 0..200 {
                parent = Some(table.intern(c, parent, meta, |_, _| 0).0);
            }
            assert_eq!(table.entries().len(), MAX_DEPTH as usize);
        });
    }
}
