//! JSON lines with the request id and trace id at the top level of every line written inside
//! a request, and configured fields redacted.

use super::REDACTED;
use super::request_scope::RequestIds;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;
use tracing::dispatcher::WeakDispatch;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Dispatch, Event, Id, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The correlation ids a span carries (fields `request_id` and `trace_id`), kept in one buffer:
/// a request span has both, and one allocation per request costs less than two.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    text: String,
    request_id: Option<(usize, usize)>,
    trace_id: Option<(usize, usize)>,
}

impl Ids {
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.and_then(|(start, end)| self.text.get(start..end))
    }

    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.and_then(|(start, end)| self.text.get(start..end))
    }

    /// Sets an id. A value recorded again is appended; the old text stays behind, unused (a
    /// span records its ids once or twice).
    fn set(&mut self, field: &str, value: &str) {
        let slot = match field {
            "request_id" => &mut self.request_id,
            "trace_id" => &mut self.trace_id,
            _ => return,
        };
        if self.text.capacity() == 0 {
            // A generated request id (36) and a trace id (32).
            self.text.reserve(72);
        }
        let start = self.text.len();
        self.text.push_str(value);
        *slot = Some((start, self.text.len()));
    }

    /// Takes the ids of a request that has no span.
    fn fill_from_request(&mut self, request: &RequestIds) {
        self.set("request_id", request.request_id());
        if let (None, Some(trace_id)) = (self.trace_id, request.trace_id()) {
            let mut hex = [0; 32];
            for (i, byte) in trace_id.iter().enumerate() {
                hex[2 * i] = HEX[usize::from(byte >> 4)];
                hex[2 * i + 1] = HEX[usize::from(byte & 0xf)];
            }
            self.set("trace_id", std::str::from_utf8(&hex).unwrap_or_default());
        }
    }

    /// Takes each id this one lacks from `outer` (the ids of an enclosing span).
    fn fill_from(&mut self, outer: &Ids) {
        if let (None, Some(id)) = (self.request_id, outer.request_id()) {
            self.set("request_id", id);
        }
        if let (None, Some(id)) = (self.trace_id, outer.trace_id()) {
            self.set("trace_id", id);
        }
    }
}

impl Visit for Ids {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !matches!(field.name(), "request_id" | "trace_id") {
            return;
        }
        // Ids given with `%` (unquoted) or `?` (quoted: the quotes are dropped); the request
        // middleware gives both as text, through `record_str`.
        let text = format!("{value:?}");
        let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(&text);
        self.set(field.name(), text);
    }
}

/// Keeps each span's [`Ids`] in its extensions, for the formatter.
#[derive(Debug)]
pub struct IdsLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for IdsLayer {
    /// Request spans are INFO. Without a hint from every layer the process's maximum level is
    /// TRACE, and every `debug!` on the request path is looked at by every layer.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::INFO)
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let fields = attrs.metadata().fields();
        if fields.field("request_id").is_none() && fields.field("trace_id").is_none() {
            return;
        }
        let mut ids = Ids::default();
        attrs.record(&mut ids);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(ids);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut extensions = span.extensions_mut();
            if let Some(ids) = extensions.get_mut::<Ids>() {
                values.record(ids);
            }
        }
    }
}

/// One JSON object per line: timestamp, level, target, message, the event's fields, the
/// innermost span's name, and the request and trace ids of the enclosing request.
pub(super) struct JsonLines {
    pub redact: Arc<[String]>,
    /// The subscriber this formatter writes for, set once it is built: the ids are read from
    /// its registry.
    pub owner: Arc<OnceLock<WeakDispatch>>,
}

struct Fields<'a> {
    map: Map<String, Value>,
    redact: &'a [String],
}

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        let value =
            if self.redact.iter().any(|r| r.eq_ignore_ascii_case(name)) { Value::from(REDACTED) } else { value };
        self.map.insert(name.to_owned(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields { map: Map::new(), redact: &self.redact };
        fields.map.insert("timestamp".into(), chrono_now().into());
        fields.map.insert("level".into(), meta.level().as_str().into());
        fields.map.insert("target".into(), meta.target().into());
        event.record(&mut fields);
        let mut map = fields.map;
        let owner = self.owner.get().and_then(WeakDispatch::upgrade);
        let (innermost, ids) = owner.as_ref().map(|owner| enclosing(owner, event)).unwrap_or_default();
        if let Some(name) = innermost {
            map.insert("span".into(), name.into());
        }
        if let Some(id) = ids.request_id() {
            map.insert("request_id".into(), id.into());
        }
        if let Some(id) = ids.trace_id() {
            map.insert("trace_id".into(), id.into());
        }
        let line = serde_json::to_string(&map).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

/// The innermost span around `event` and the ids of the request it belongs to, from the
/// registry's whole span stack. Not `FmtContext::event_scope`: that lists only the spans this
/// layer's level lets through, and at WARN (production) the INFO request span is not one of
/// them, so a warning inside a request would lose its ids exactly where they are needed. (Nor
/// the current dispatcher: while an event is dispatched, it is the no-op one.)
fn enclosing(dispatch: &Dispatch, event: &Event<'_>) -> (Option<&'static str>, Ids) {
    let mut ids = Ids::default();
    let Some(registry) = dispatch.downcast_ref::<Registry>() else { return (None, ids) };
    let current = || registry.current_span().id().cloned();
    let span = event.parent().cloned().or_else(current).and_then(|id| registry.span(&id));
    let innermost = span.as_ref().map(|span| span.name());
    for span in span.iter().flat_map(|span| span.scope()) {
        if let Some(found) = span.extensions().get::<Ids>() {
            ids.fill_from(found);
        }
    }
    if ids.request_id.is_none() {
        // A request made without a span (`request_scope`): its ids are the thread's.
        RequestIds::with_current(|current| ids.fill_from_request(current));
    }
    (innermost, ids)
}

/// RFC 3339 with microseconds, UTC.
fn chrono_now() -> String {
    humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn ids_keep_the_value_recorded_last_and_take_the_missing_ones_from_outer_spans() {
        let mut inner = Ids::default();
        inner.set("trace_id", "aaa");
        inner.set("trace_id", "bbb");
        inner.set("user", "ignored");
        let mut outer = Ids::default();
        outer.set("request_id", "req-1");
        outer.set("trace_id", "ccc");
        inner.fill_from(&outer);
        assert_eq!((inner.request_id(), inner.trace_id()), (Some("req-1"), Some("bbb")));
    }

    #[test]
    fn lines_carry_the_request_ids_and_hide_redacted_fields() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let owner = Arc::default();
        let format = JsonLines { redact: vec!["password".to_owned()].into(), owner: Arc::clone(&owner) };
        let output = tracing_subscriber::fmt::layer().event_format(format).with_writer(move || sink.clone());
        let subscriber = Dispatch::new(tracing_subscriber::registry().with(IdsLayer).with(output));
        owner.set(subscriber.downgrade()).unwrap();
        tracing::dispatcher::with_default(&subscriber, || {
            let span = tracing::info_span!("request", request_id = "req-1", trace_id = tracing::field::Empty);
            span.record("trace_id", "abc123");
            let _entered = span.enter();
            tracing::info_span!("db").in_scope(|| {
                tracing::info!(password = "hunter2", Password = "x", user = "ann", count = 3, "signed in");
            });
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).expect(&text);
        assert_eq!(line["message"], "signed in");
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["trace_id"], "abc123");
        assert_eq!(line["span"], "db", "the innermost span");
        assert_eq!(line["password"], REDACTED);
        assert_eq!(line["Password"], REDACTED, "names match case-insensitively");
        assert_eq!(line["user"], "ann");
        assert_eq!(line["count"], 3);
        assert!(!text.contains("hunter2"));
    }

    /// JSON lines at WARN into a buffer, with the request ids layer: what production logs.
    fn json_lines_at_warn() -> (Buffer, Dispatch) {
        use tracing_subscriber::Layer;
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let owner = Arc::default();
        let output = tracing_subscriber::fmt::layer()
            .event_format(JsonLines { redact: Vec::new().into(), owner: Arc::clone(&owner) })
            .with_writer(move || sink.clone())
            .with_filter(tracing_subscriber::filter::LevelFilter::WARN);
        let subscriber = Dispatch::new(tracing_subscriber::registry().with(IdsLayer).with(output));
        owner.set(subscriber.downgrade()).unwrap();
        (buffer, subscriber)
    }

    #[test]
    fn a_warning_carries_the_ids_of_a_request_span_its_level_filters_out() {
        let (buffer, subscriber) = json_lines_at_warn();
        tracing::dispatcher::with_default(&subscriber, || {
            let span = tracing::info_span!("request", request_id = "req-2", trace_id = "def456");
            let _entered = span.enter();
            tracing::info!("not written");
            tracing::warn!("slow downstream");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).expect(&text);
        assert_eq!(line["message"], "slow downstream");
        assert_eq!(line["request_id"], "req-2");
        assert_eq!(line["trace_id"], "def456");
        assert_eq!(line["span"], "request");
    }

    #[test]
    fn a_line_of_a_request_without_a_span_carries_its_ids() {
        let (buffer, subscriber) = json_lines_at_warn();
        let mut trace_id = [0; 16];
        trace_id[0] = 0xab;
        trace_id[15] = 0x01;
        tracing::dispatcher::with_default(&subscriber, || {
            RequestIds::new("req-3", Some(trace_id)).scope(|| tracing::error!("store failed"));
            RequestIds::new("req-4", None).scope(|| {
                tracing::info_span!("db").in_scope(|| tracing::warn!("slow"));
            });
            tracing::warn!("outside any request");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[0]["request_id"], "req-3");
        assert_eq!(lines[0]["trace_id"], "ab000000000000000000000000000001");
        assert!(lines[0].get("span").is_none(), "no span: {}", lines[0]);
        assert_eq!((&lines[1]["request_id"], &lines[1]["span"]), (&Value::from("req-4"), &Value::from("db")));
        assert!(lines[1].get("trace_id").is_none(), "tracing off: no trace id: {}", lines[1]);
        assert!(lines[2].get("request_id").is_none(), "{}", lines[2]);
    }
}
