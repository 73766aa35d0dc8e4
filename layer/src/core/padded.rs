//! Per-thread values padded to their own cache lines.
//!
//! `thread_local::ThreadLocal` stores each thread's value next to the others'. Two
//! threads writing their own values on one shared 64-byte line (a lock word, a `RefCell`
//! borrow flag) would bounce the line between cores on every span: padding to 128 bytes
//! (two lines, for the adjacent-line prefetcher) keeps each thread's writes its own.

/// `T`, aligned and padded to 128 bytes.
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> std::ops::Deref for CachePadded<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}
