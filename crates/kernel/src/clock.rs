//! Time and id generation as ports, so tests can fix them.

use std::sync::Mutex;
use std::sync::PoisonError;

use time::OffsetDateTime;
use uuid::Uuid;

/// The current time. Services take `&dyn Clock` instead of calling `now()` themselves.
pub trait Clock: Send + Sync {
    /// The current UTC time.
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

/// A clock that stays where it is put; for tests.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    /// A clock frozen at `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Source of new Hub-owned ids.
pub trait IdGen: Send + Sync {
    /// A new, unique, time-ordered id.
    fn new_id(&self) -> Uuid;
}

/// UUID v7 ids (time-ordered, so keyset pagination by id follows creation order).
#[derive(Debug, Clone, Copy, Default)]
pub struct UuidV7Gen;

impl IdGen for UuidV7Gen {
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}
