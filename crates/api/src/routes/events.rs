//! The change stream: `GET /api/v2/portfolios/events`, as Server-Sent Events.

use crate::client::{ClientId, Slot};
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use pfs_events::{EventId, Item, Refused, Subscription};
use serde_json::json;
use std::convert::Infallible;
use std::fmt::Write;
use std::time::Duration;

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// Follow every create, update and delete, in one order shared by all subscribers.
///
/// Each event is `event: created|updated|deleted`, `id: <ms>-<seq>` and
/// `data: {"portfolio": {...}, "version": N}` (the portfolio as the API returns it; for a
/// delete, as it was deleted). Reconnecting with `Last-Event-ID` replays what followed that
/// event from a bounded history; a position no longer in it gets `event: reset` (reload what
/// you track, then continue). A client that falls too far behind gets `event: dropped` and the
/// stream ends; it can reconnect with its last id. Comment lines keep idle streams open.
#[utoipa::path(get, path = "/api/v2/portfolios/events", tag = "v2",
    params(("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (`<ms>-<seq>`)")),
    responses(
        (status = 200, description = "An endless `text/event-stream` of created, updated, deleted (and reset, dropped) events", content_type = "text/event-stream"),
        (status = 400, description = "Malformed Last-Event-ID"),
        (status = 404, description = "The change stream is disabled (`events.enabled = false`)"),
        (status = 429, description = "This client already holds `events.max_subscribers_per_client` streams on this replica"),
        (status = 503, description = "Too many subscribers on this replica, or the history is unreachable")))]
pub async fn stream(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let Some(feed) = state.events.clone() else {
        return Err(ApiError::RouteNotFound);
    };
    let headers = req.headers();
    let resume = match headers.get(LAST_EVENT_ID).map(|v| v.to_str().unwrap_or("?").trim()) {
        None | Some("") => None,
        Some(id) => Some(
            id.parse::<EventId>()
                .map_err(|_| ApiError::BadRequest("Last-Event-ID must be an event id (<ms>-<seq>)".into()))?,
        ),
    };
    let client = ClientId::of(headers, req.extensions(), state.config.rate_limit.trust_forwarded_for);
    // Taken before subscribing and held by the body: the slot is given back when the stream
    // ends, whichever side ends it.
    let Some(slot) = state.stream_clients.take(client) else {
        return Ok(too_many_for_client(client, state.config.events.max_subscribers_per_client));
    };
    let subscription = match feed.subscribe(resume, state.lifecycle.streams_closing()).await {
        Ok(subscription) => subscription,
        Err(refused) => return Ok(unavailable(&refused)),
    };
    let keep_alive = state.config.events.keep_alive;
    let body = stream::unfold((subscription, slot), move |(mut subscription, slot): (Subscription, Slot)| async move {
        let chunk = next_chunk(&mut subscription, keep_alive).await?;
        Some((Ok::<_, Infallible>(chunk), (subscription, slot)))
    });
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        // Reverse proxies (nginx) would otherwise buffer the stream and deliver it in lumps.
        (HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    Ok((headers, Body::from_stream(body)).into_response())
}

/// Chunks are this large at most, unless one event is larger.
const CHUNK_BYTES: usize = 64 * 1024;

/// The next piece of the body: every item already waiting (a burst becomes one write, not
/// one per event), a keep-alive comment after `keep_alive` of silence, or `None` at the end.
async fn next_chunk(subscription: &mut Subscription, keep_alive: Duration) -> Option<Bytes> {
    let first = match tokio::time::timeout(keep_alive, subscription.next()).await {
        Err(_) => return Some(Bytes::from_static(b":\n\n")),
        Ok(item) => item?,
    };
    let mut chunk = String::new();
    write_frame(&mut chunk, first);
    while chunk.len() < CHUNK_BYTES {
        match subscription.try_next() {
            Some(item) => write_frame(&mut chunk, item),
            None => break,
        }
    }
    Some(Bytes::from(chunk))
}

/// One SSE frame. Every `data` is one line of JSON (serde escapes newlines inside strings),
/// and ids and event names are plain ASCII, so no field needs splitting.
fn write_frame(out: &mut String, item: Item) {
    let (id, event, data) = match item {
        Item::Event(event) => (Some(event.id), event.kind.as_str(), event.data.clone()),
        Item::Gap { head } => (
            head,
            "reset",
            json!({ "reason": "the requested position is no longer in the event history; reload, then continue" })
                .to_string(),
        ),
        Item::Dropped => (
            None,
            "dropped",
            json!({ "reason": "this client fell too far behind; reconnect with Last-Event-ID to resume" }).to_string(),
        ),
    };
    if let Some(id) = id {
        let _ = writeln!(out, "id: {id}");
    }
    let _ = write!(out, "event: {event}\ndata: {data}\n\n");
}

/// 429: this client holds its share of the replica's streams already. Not 503: the replica has
/// room, this client does not, and it can free a slot by closing one of its streams.
fn too_many_for_client(client: ClientId, max: usize) -> Response {
    metrics::counter!("events_subscribers_refused", "reason" => "per_client").increment(1);
    tracing::warn!(client = ?client, max, "change stream: refused a subscriber, this client holds its limit");
    let detail = format!("This client already holds {max} change streams on this replica; close one, or retry later");
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::RETRY_AFTER, "5")];
    (StatusCode::TOO_MANY_REQUESTS, headers, json!({ "detail": detail }).to_string()).into_response()
}

fn unavailable(refused: &Refused) -> Response {
    let retry_after = match refused {
        Refused::TooMany => {
            tracing::warn!("change stream: refused a subscriber, the limit is reached");
            "5"
        }
        Refused::Unavailable(err) => {
            tracing::warn!(error = %err, "change stream: history unavailable");
            "1"
        }
    };
    let body = json!({ "detail": refused.to_string() }).to_string();
    let headers = [(header::CONTENT_TYPE, "application/json"), (header::RETRY_AFTER, retry_after)];
    (StatusCode::SERVICE_UNAVAILABLE, headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use crate::wire::dto::PortfolioDto;
    use pfs_domain::{Portfolio, Version};

    #[test]
    fn events_carry_the_portfolio_exactly_as_the_api_returns_it() {
        let portfolio = Portfolio::new("Growth \"Fund\"".into(), None, Version(7));
        let api = serde_json::to_string(&PortfolioDto::from(&portfolio)).unwrap();
        assert_eq!(pfs_events::portfolio_json(&portfolio).to_string(), api);
    }
}
