//! Timestamps: UTC instants truncated to milliseconds.
//!
//! Milliseconds are what BSON dates keep, so truncating on the way in means a value reads back
//! exactly as it was answered on create, on every backend.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// The earliest and latest instants Python's `datetime` can represent (years 1 to 9999):
/// the original rejects anything outside, and so do we, rather than store what it could not.
const MIN_MILLIS: i64 = -62_135_596_800_000;
const MAX_MILLIS: i64 = 253_402_300_799_999;

/// A UTC instant with millisecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        Self(Utc::now().timestamp_millis())
    }

    /// Milliseconds since the Unix epoch; `None` outside years 1..=9999.
    pub fn from_millis(millis: i64) -> Option<Self> {
        (MIN_MILLIS..=MAX_MILLIS).contains(&millis).then_some(Self(millis))
    }

    /// Truncates sub-millisecond precision (towards the past, like BSON).
    pub fn from_datetime<Tz: TimeZone>(dt: &DateTime<Tz>) -> Option<Self> {
        Self::from_millis(dt.timestamp_millis())
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        // In range by construction.
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    /// RFC 3339 in UTC with a `Z` and exactly three fraction digits, the one format every
    /// response uses (contract §10: consistent `Z` on all datetimes).
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_millis_and_z() {
        let t = Timestamp::from_millis(1_705_314_600_000).expect("in range");
        assert_eq!(t.to_rfc3339(), "2024-01-15T10:30:00.000Z");
        let t = Timestamp::from_millis(1_748_781_296_789).expect("in range");
        assert_eq!(t.to_rfc3339(), "2025-06-01T12:34:56.789Z");
    }

    #[test]
    fn microseconds_are_truncated_not_rounded() {
        let dt = Utc.with_ymd_and_hms(2024, 1, 15, 10, 30, 0).unwrap() + chrono::Duration::microseconds(123_999);
        assert_eq!(Timestamp::from_datetime(&dt).unwrap().to_rfc3339(), "2024-01-15T10:30:00.123Z");
    }

    #[test]
    fn years_outside_python_datetime_are_rejected() {
        assert!(Timestamp::from_millis(MAX_MILLIS + 1).is_none());
        assert!(Timestamp::from_millis(MIN_MILLIS - 1).is_none());
        assert_eq!(Timestamp::from_millis(MIN_MILLIS).unwrap().to_rfc3339(), "0001-01-01T00:00:00.000Z");
        assert_eq!(Timestamp::from_millis(MAX_MILLIS).unwrap().to_rfc3339(), "9999-12-31T23:59:59.999Z");
    }
}
