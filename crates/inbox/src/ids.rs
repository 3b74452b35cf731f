//! Ids of the inbox domain: Hub-owned UUID v7 ids and Chatwoot's inbox id.

use std::fmt;

use uuid::Uuid;

macro_rules! hub_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID.
            pub const fn as_uuid(self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

hub_id!(
    /// The Hub's id of a mirrored inbox.
    InboxId
);
hub_id!(
    /// A run of the inbox sync.
    SyncRunId
);
hub_id!(
    /// A WhatsApp provider registered by an account.
    ProviderId
);
hub_id!(
    /// An instance (one WhatsApp number/session) at a provider.
    InstanceId
);

/// Chatwoot's id of an inbox (its database id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChatwootInboxId(i64);

impl ChatwootInboxId {
    /// Wraps a raw Chatwoot id.
    pub const fn new(raw: i64) -> Self {
        Self(raw)
    }

    /// The raw Chatwoot id.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for ChatwootInboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
