//! The clock port and its two implementations.

use time::OffsetDateTime;

/// The current time. Injected so that tests and the simulator can move it.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The real clock moved by an adjustable offset: tests (and the simulator-backed demo) move time
/// forward without waiting.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_nanos: std::sync::atomic::AtomicI64,
}

impl OffsetClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: time::Duration) {
        let n = i64::try_from(by.whole_nanoseconds()).unwrap_or(i64::MAX);
        self.offset_nanos
            .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
            + time::Duration::nanoseconds(
                self.offset_nanos.load(std::sync::atomic::Ordering::SeqCst),
            )
    }
}
