//! The ids of a request that has no span, current on the thread while its future is polled.
//!
//! A request span costs a registry slot, a dispatcher lookup per enter and exit and its
//! fields recorded, on every request. When it is not sampled and no log output records INFO
//! spans (production logs at WARN or ERROR), nothing would ever read it but the ids a log line
//! written inside it takes from it. Such a request makes no span: its ids are set here for each
//! poll of its future, and the JSON formatter reads them when a line's spans hold none
//! ([`request_spans_logged`] says which kind of request to make).

use std::sync::atomic::{AtomicBool, Ordering};
use tracing_subscriber::filter::LevelFilter;

/// Longest request id kept (the API middleware replaces longer ones before they get here).
const MAX_REQUEST_ID: usize = 128;

/// A request's ids, held in its future; a log line written while it is [`RequestIds::scope`]d
/// carries them.
#[derive(Clone, Debug)]
pub struct RequestIds {
    request_id: [u8; MAX_REQUEST_ID],
    request_id_len: u8,
    trace_id: Option<[u8; 16]>,
}

scoped_tls::scoped_thread_local!(static CURRENT: RequestIds);

impl RequestIds {
    /// `request_id` is cut to 128 bytes at a character boundary; `trace_id` is the trace the
    /// request belongs to (none while tracing is off, as for a span).
    pub fn new(request_id: &str, trace_id: Option<[u8; 16]>) -> Self {
        let len = (0..=request_id.len().min(MAX_REQUEST_ID)).rev().find(|&i| request_id.is_char_boundary(i));
        let len = len.unwrap_or(0);
        let mut buffer = [0; MAX_REQUEST_ID];
        buffer[..len].copy_from_slice(&request_id.as_bytes()[..len]);
        Self { request_id: buffer, request_id_len: len as u8, trace_id }
    }

    pub fn request_id(&self) -> &str {
        // Cut at a boundary in `new`, so always valid.
        std::str::from_utf8(&self.request_id[..usize::from(self.request_id_len)]).unwrap_or_default()
    }

    pub fn trace_id(&self) -> Option<[u8; 16]> {
        self.trace_id
    }

    /// Runs `f` with these ids current on this thread (nested scopes restore the outer one).
    pub fn scope<R>(&self, f: impl FnOnce() -> R) -> R {
        CURRENT.set(self, f)
    }

    /// Calls `f` with the ids of the request this thread is polling, if it has no span.
    pub fn with_current<R>(f: impl FnOnce(&RequestIds) -> R) -> Option<R> {
        CURRENT.is_set().then(|| CURRENT.with(f))
    }
}

/// False once the installed subscriber's log level is below INFO (WARN, ERROR, OFF): no output
/// then records a request span. True until a subscriber is installed, so tests and tools that
/// set their own keep their spans.
static REQUEST_SPANS_LOGGED: AtomicBool = AtomicBool::new(true);

/// Whether a request span would be recorded by a log output (its level lets INFO spans through).
pub fn request_spans_logged() -> bool {
    REQUEST_SPANS_LOGGED.load(Ordering::Relaxed)
}

/// Called with the installed level filter's hint, at start and on every level change.
pub(super) fn set_log_level(hint: Option<LevelFilter>) {
    // No hint means anything may be enabled: keep the spans.
    let logged = hint.is_none_or(|hint| hint >= LevelFilter::INFO);
    REQUEST_SPANS_LOGGED.store(logged, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_current_only_inside_their_scope_and_nested_scopes_restore_the_outer() {
        assert!(RequestIds::with_current(|_| ()).is_none());
        let outer = RequestIds::new("outer", Some([7; 16]));
        let inner = RequestIds::new("inner", None);
        outer.scope(|| {
            assert_eq!(RequestIds::with_current(|ids| ids.request_id().to_owned()).as_deref(), Some("outer"));
            inner.scope(|| {
                assert_eq!(
                    RequestIds::with_current(|ids| (ids.request_id().to_owned(), ids.trace_id())).unwrap(),
                    ("inner".to_owned(), None)
                );
            });
            assert_eq!(RequestIds::with_current(RequestIds::trace_id).flatten(), Some([7; 16]));
        });
        assert!(RequestIds::with_current(|_| ()).is_none());
    }

    #[test]
    fn long_ids_are_cut_at_a_character_boundary() {
        let long = "é".repeat(100);
        let ids = RequestIds::new(&long, None);
        assert_eq!(ids.request_id(), "é".repeat(64));
    }

    #[test]
    fn spans_are_logged_from_info_up_and_when_the_filter_gives_no_hint() {
        for (hint, logged) in [
            (Some(LevelFilter::ERROR), false),
            (Some(LevelFilter::WARN), false),
            (Some(LevelFilter::OFF), false),
            (Some(LevelFilter::INFO), true),
            (Some(LevelFilter::TRACE), true),
            (None, true),
        ] {
            set_log_level(hint);
            assert_eq!(request_spans_logged(), logged, "{hint:?}");
        }
    }
}
