//! Shared vocabulary of the Hub.
//!
//! Ids of Chatwoot-owned things, the [`Clock`] and [`IdGen`] ports, keyset pagination and the
//! error classification every domain error implements ([`ErrorKind`], [`Classify`]).
//! This crate does no I/O and depends on nothing heavier than serde, uuid, time and thiserror.

mod clock;
mod error;
mod ids;
mod page;

pub use clock::{Clock, FixedClock, IdGen, SystemClock, UuidV7Gen};
pub use error::{BoxError, Classify, DetailValue, ErrorKind};
pub use ids::{AccountId, UserId};
pub use page::{Cursor, CursorError, Limit, Page};
