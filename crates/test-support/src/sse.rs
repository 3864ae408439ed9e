//! A Server-Sent Events client for tests: opens the change stream and reads it event by event.

use crate::{TestApp, reqwest};
use serde_json::Value;
use std::time::Duration;

pub const EVENTS: &str = "/api/v2/portfolios/events";

/// One parsed SSE event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

/// A streaming response read frame by frame.
pub struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    pub async fn open(app: &TestApp, last_event_id: Option<&str>) -> Self {
        Self::open_url(&app.client, &app.url(EVENTS), last_event_id).await
    }

    pub async fn open_url(client: &reqwest::Client, url: &str, last_event_id: Option<&str>) -> Self {
        let mut request = client.get(url);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.expect("GET events");
        Self::from_response(response)
    }

    pub fn from_response(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next event, skipping keep-alive comments; `None` when the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&frame) {
                    return Some(event);
                }
                continue;
            }
            let chunk = self.response.chunk().await.expect("stream chunk")?;
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    pub async fn expect(&mut self) -> SseEvent {
        tokio::time::timeout(Duration::from_secs(10), self.next())
            .await
            .expect("an event within 10 s")
            .expect("the stream is still open")
    }
}

fn parse(frame: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (None, None, String::new());
    for line in frame.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = Some(value.to_owned()),
            "data" => data.push_str(value),
            _ => {} // comments (keep-alive) and unknown fields
        }
    }
    Some(SseEvent { id, event: event?, data: serde_json::from_str(&data).expect("JSON data") })
}
