//! How the layer says something (a bad `seed` field, a missing GPU) as a tracing event
//! that the other layers see, from inside its own callbacks.
//!
//! Two things stand in the way of a plain `tracing::warn!` there:
//!
//! 1. **Re-entrancy.** The event comes back into this layer's `on_event` while the
//!    callback holds the thread's state (`core::spans::Owned`). So hooks only queue
//!    what they want to say ([`Later`]); the core emits it once the state is released.
//! 2. **The dispatcher.** `tracing`'s macros find their subscriber with
//!    `dispatcher::get_default`, and tracing-core answers "none" to a call made while the
//!    thread is already inside the dispatcher — which is where `on_new_span` runs as soon
//!    as any scoped dispatcher (`with_default`, `set_default`) exists in the process. The
//!    warning would vanish. So the layer keeps the dispatch it was registered with
//!    (`Layer::on_register_dispatch`, as a weak reference: the dispatch owns the layer)
//!    and hands the event to it directly.
//!
//! Each kind of message has its own static callsite, a [`Notice`], declared with
//! [`notice!`](crate::core::say::notice) where it is used, so that filters can tell them
//! apart by level and target.

use std::sync::OnceLock;

use tracing_core::callsite::DefaultCallsite;
use tracing_core::dispatcher::{Dispatch, WeakDispatch};
use tracing_core::field::Value;
use tracing_core::{Event, Metadata};

/// A static callsite for one kind of message: its level and target, and a `message`
/// field.
pub(crate) struct Notice {
    pub(crate) callsite: &'static DefaultCallsite,
    pub(crate) meta: &'static Metadata<'static>,
}

/// Declares a [`Notice`]: `notice!(NAME, Level::WARN, "target");`.
macro_rules! notice {
    ($name:ident, $level:expr, $target:expr) => {
        pub(crate) static $name: $crate::core::say::Notice = {
            static CALLSITE: tracing_core::callsite::DefaultCallsite =
                tracing_core::callsite::DefaultCallsite::new(&META);
            static META: tracing_core::Metadata<'static> = tracing_core::Metadata::new(
                concat!("event ", file!(), ":", line!()),
                $target,
                $level,
                Some(file!()),
                Some(line!()),
                Some(module_path!()),
                tracing_core::field::FieldSet::new(
                    &["message"],
                    tracing_core::identify_callsite!(&CALLSITE),
                ),
                tracing_core::metadata::Kind::EVENT,
            );
            $crate::core::say::Notice {
                callsite: &CALLSITE,
                meta: &META,
            }
        };
    };
}
pub(crate) use notice;

notice!(WARNING, tracing_core::Level::WARN, "spanlab");

impl Notice {
    /// Registers the callsite with tracing (once; the first registration is a global
    /// lock, so it is done when the layer is built, never inside a callback).
    pub(crate) fn register(&'static self) {
        let _ = self.callsite.interest();
    }

    /// Emits `message` through `dispatch`, if it is interested.
    fn emit(&'static self, dispatch: &Dispatch, message: &str) {
        if !dispatch.enabled(self.meta) {
            return;
        }
        let fields = self.meta.fields();
        let Some(field) = fields.field("message") else {
            return;
        };
        let message = format_args!("{message}");
        let values: [(&_, Option<&dyn Value>); 1] = [(&field, Some(&message))];
        let values = fields.value_set(&values);
        dispatch.event(&Event::new(self.meta, &values));
    }
}

/// The dispatch the layer was registered with, kept weakly.
#[derive(Default)]
pub(crate) struct Speaker {
    dispatch: OnceLock<WeakDispatch>,
}

impl Speaker {
    /// Remembers `dispatch` (the first one: a layer belongs to one subscriber).
    pub(crate) fn register(&self, dispatch: &Dispatch) {
        let _ = self.dispatch.set(dispatch.downgrade());
    }

    fn say(&self, notice: &'static Notice, message: &str) {
        match self.dispatch.get().and_then(WeakDispatch::upgrade) {
            Some(dispatch) => notice.emit(&dispatch, message),
            // Never registered (a layer driven by hand): the thread's default.
            None => tracing_core::dispatcher::get_default(|d| notice.emit(d, message)),
        }
    }
}

/// What hooks want to say, emitted once the thread's state is released. Nearly always
/// empty: then [`Later::emit`] is one inline test.
#[derive(Default)]
#[must_use]
pub(crate) struct Later(Vec<(&'static Notice, String)>);

impl Later {
    pub(crate) fn push(&mut self, notice: &'static Notice, message: String) {
        self.0.push((notice, message));
    }

    /// Emits what was queued, through `speaker`.
    #[inline]
    pub(crate) fn emit(self, speaker: &Speaker) {
        if !self.0.is_empty() {
            self.emit_slow(speaker);
        }
    }

    #[cold]
    #[inline(never)]
    fn emit_slow(self, speaker: &Speaker) {
        for (notice, message) in self.0 {
            speaker.say(notice, &message);
        }
    }
}
