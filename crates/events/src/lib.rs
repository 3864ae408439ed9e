//! The portfolio change stream: every committed write becomes an event in one global order,
//! which subscribers follow live and resume after a disconnect from a bounded history.
//!
//! # Layout
//! - [`event`]: [`EventId`] (`<ms>-<seq>`), [`EventKind`], [`Event`], [`Change`].
//! - [`feed`]: [`ChangeFeed`], what the API sees: `publish` after a commit, `subscribe` with
//!   an optional position to resume from.
//! - `local`: one replica; ids, order and history kept in process (a ring buffer).
//! - `redis_log`: several replicas; Redis Streams gives the order (`XADD` ids) and the history
//!   (`MAXLEN ~`), one reader task per replica feeds its local subscribers.
//! - `hub`: the local fan-out (a tokio broadcast channel) and each subscriber's bounded
//!   buffer; a subscriber that falls behind by more than its buffer is dropped, never queued for.
//! - [`store`]: [`PublishingStore`], the `PortfolioStore` decorator that publishes after commits.

pub mod event;
pub mod feed;
mod hub;
mod local;
mod redis_log;
pub mod store;

pub use event::{BadEventId, Change, Event, EventId, EventKind, portfolio_json};
pub use feed::{ChangeFeed, FeedSettings, FeedStats, Refused};
pub use hub::{Item, Subscription};
pub use store::PublishingStore;
