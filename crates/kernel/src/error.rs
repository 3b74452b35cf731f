//! Error classification shared by every domain: what kind of failure it is, and a stable code.
//! HTTP statuses are chosen from the kind in exactly one place, the app's `ApiError`.

/// A boxed error for the catch-all "internal" variants of domain errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, independent of transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed (syntax).
    BadRequest,
    /// The request is well-formed but its values are not acceptable.
    Invalid,
    /// No valid credential.
    Unauthenticated,
    /// The billing state forbids this action.
    PaymentRequired,
    /// The credential is valid but may not do this.
    Forbidden,
    /// The plan's limit is reached.
    QuotaExceeded,
    /// The thing does not exist (or belongs to another tenant).
    NotFound,
    /// The action conflicts with the current state.
    Conflict,
    /// Too many requests; retry later.
    RateLimited,
    /// An upstream service answered badly.
    Upstream,
    /// A dependency (database, upstream) cannot be reached right now.
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
}

/// Implemented by every error that may cross a port: its kind and a stable snake_case code.
pub trait Classify {
    /// The kind of failure.
    fn kind(&self) -> ErrorKind;
    /// A stable machine-readable code such as `board_not_found`.
    fn code(&self) -> &'static str;

    /// Structured facts for the error body's `details` (e.g. a quota's `limit` and `used`);
    /// empty by default.
    fn details(&self) -> Vec<(&'static str, DetailValue)> {
        Vec::new()
    }
}

/// A value in an error's [`Classify::details`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DetailValue {
    /// A number.
    Int(i64),
    /// A text.
    Text(String),
}
