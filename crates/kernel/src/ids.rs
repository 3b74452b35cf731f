//! Ids of things Chatwoot owns. Hub-owned ids are UUID v7 newtypes defined by their domains.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! chatwoot_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// Wraps a raw Chatwoot id.
            pub const fn new(raw: i64) -> Self {
                Self(raw)
            }

            /// The raw Chatwoot id.
            pub const fn get(self) -> i64 {
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

chatwoot_id!(
    /// A Chatwoot account id: the Hub's tenant.
    AccountId
);
chatwoot_id!(
    /// A Chatwoot user id.
    UserId
);
