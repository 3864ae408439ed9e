//! The change stream: `GET /api/v2/portfolios/events`, as Server-Sent Events.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use pfs_events::{EventId, Item, Refused};
use serde_json::json;
use std::convert::Infallible;

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
        (status = 503, description = "Too many subscribers on this replica, or the history is unreachable")))]
pub async fn stream(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(feed) = state.events.clone() else {
        return Err(ApiError::RouteNotFound);
    };
    let resume = match headers.get(LAST_EVENT_ID).map(|v| v.to_str().unwrap_or("?").trim()) {
        None | Some("") => None,
        Some(id) => Some(
            id.parse::<EventId>()
                .map_err(|_| ApiError::BadRequest("Last-Event-ID must be an event id (<ms>-<seq>)".into()))?,
        ),
    };
    let subscription = match feed.subscribe(resume, state.lifecycle.streams_closing()).await {
        Ok(subscription) => subscription,
        Err(refused) => return Ok(unavailable(&refused)),
    };
    let events = stream::unfold(subscription, |mut subscription| async move {
        let item = subscription.next().await?;
        Some((Ok::<_, Infallible>(sse_event(item)), subscription))
    });
    let keep_alive = KeepAlive::new().interval(state.config.events.keep_alive);
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    let headers = response.headers_mut();
    // Reverse proxies (nginx) would otherwise buffer the stream and deliver it in lumps.
    headers.insert(HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

fn sse_event(item: Item) -> Event {
    match item {
        Item::Event(event) => Event::default().id(event.id.to_string()).event(event.kind.as_str()).data(&event.data),
        Item::Gap { head } => {
            let reset = Event::default().event("reset").data(
                json!({ "reason": "the requested position is no longer in the event history; reload, then continue" })
                    .to_string(),
            );
            match head {
                Some(head) => reset.id(head.to_string()),
                None => reset,
            }
        }
        Item::Dropped => Event::default().event("dropped").data(
            json!({ "reason": "this client fell too far behind; reconnect with Last-Event-ID to resume" }).to_string(),
        ),
    }
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
