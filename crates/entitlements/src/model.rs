//! Plans, limits, features and the entitlements an account ends up with.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use whatpro_kernel::AccountId;

/// Something a plan limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    /// Members of the account (Chatwoot agents and administrators).
    Agents,
    /// Teams.
    Teams,
    /// Inboxes in service (beyond the limit they are flagged `over_quota`).
    Inboxes,
    /// WhatsApp providers.
    Providers,
    /// WhatsApp provider instances.
    Instances,
    /// Kanban boards.
    Boards,
    /// Internal chat rooms.
    Rooms,
    /// Messages sent in a calendar month (UTC).
    MessagesPerMonth,
}

impl Resource {
    /// Every resource, in the order lists show them.
    pub const ALL: [Resource; 8] = [
        Resource::Agents,
        Resource::Teams,
        Resource::Inboxes,
        Resource::Providers,
        Resource::Instances,
        Resource::Boards,
        Resource::Rooms,
        Resource::MessagesPerMonth,
    ];

    /// The limit's wire name (`max_agents` ...).
    pub fn limit_key(self) -> &'static str {
        match self {
            Resource::Agents => "max_agents",
            Resource::Teams => "max_teams",
            Resource::Inboxes => "max_inboxes",
            Resource::Providers => "max_providers",
            Resource::Instances => "max_instances",
            Resource::Boards => "max_boards",
            Resource::Rooms => "max_rooms",
            Resource::MessagesPerMonth => "max_messages_per_month",
        }
    }

    /// The usage counter's wire name (`agents` ...).
    pub fn usage_key(self) -> &'static str {
        match self {
            Resource::Agents => "agents",
            Resource::Teams => "teams",
            Resource::Inboxes => "inboxes",
            Resource::Providers => "providers",
            Resource::Instances => "instances",
            Resource::Boards => "boards",
            Resource::Rooms => "rooms",
            Resource::MessagesPerMonth => "messages_this_month",
        }
    }

    /// A plural noun for messages.
    pub fn noun(self) -> &'static str {
        match self {
            Resource::Agents => "agents",
            Resource::Teams => "teams",
            Resource::Inboxes => "inboxes",
            Resource::Providers => "providers",
            Resource::Instances => "instances",
            Resource::Boards => "boards",
            Resource::Rooms => "rooms",
            Resource::MessagesPerMonth => "messages a month",
        }
    }

    /// The resource whose limit is named `key`.
    pub fn from_limit_key(key: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.limit_key() == key)
    }

    /// Whether usage restarts every calendar month (UTC) instead of counting live objects.
    pub fn is_monthly(self) -> bool {
        matches!(self, Resource::MessagesPerMonth)
    }
}

/// A switchable capability of a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// The Kanban of conversations.
    Kanban,
    /// Internal chat between agents.
    InternalChat,
    /// WhatsApp providers and instances.
    Providers,
    /// API keys and machine access.
    ApiAccess,
    /// Embedding inside Chatwoot (instance tokens, dashboard app).
    Embed,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 5] = [
        Feature::Kanban,
        Feature::InternalChat,
        Feature::Providers,
        Feature::ApiAccess,
        Feature::Embed,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Kanban => "kanban",
            Feature::InternalChat => "internal_chat",
            Feature::Providers => "providers",
            Feature::ApiAccess => "api_access",
            Feature::Embed => "embed",
        }
    }

    /// The feature named `name`.
    pub fn from_name(name: &str) -> Option<Feature> {
        Feature::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// A limit: a maximum, or none.
pub type LimitValue = Option<i64>;

/// A plan id: 1-40 characters of `[a-z0-9_-]` (e.g. `trial`, `starter`, `pro`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlanId(String);

/// A plan id that breaks the rules of [`PlanId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a plan id is 1-40 characters of a-z, 0-9, `_` and `-`")]
pub struct PlanIdError;

impl PlanId {
    /// The plan every new account starts on.
    pub fn trial() -> PlanId {
        PlanId("trial".to_owned())
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PlanId {
    type Err = PlanIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 40
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok {
            Ok(PlanId(s.to_owned()))
        } else {
            Err(PlanIdError)
        }
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plan: its price and what it grants. Resources missing from `limits` are unlimited;
/// features missing from `features` are off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Id.
    pub id: PlanId,
    /// Display name.
    pub name: String,
    /// Monthly price in cents of BRL (0 for free plans).
    pub price_cents: i64,
    /// Limits per resource.
    pub limits: BTreeMap<Resource, LimitValue>,
    /// Feature flags.
    pub features: BTreeMap<Feature, bool>,
}

impl Plan {
    /// The limit of `resource` (`None`: unlimited).
    pub fn limit(&self, resource: Resource) -> LimitValue {
        self.limits.get(&resource).copied().flatten()
    }

    /// Checks name, price and limit values.
    ///
    /// # Errors
    /// A sentence naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        let name_chars = self.name.trim().chars().count();
        if name_chars == 0 || name_chars > 100 {
            return Err("name must be 1-100 characters".to_owned());
        }
        if !(0..=100_000_000).contains(&self.price_cents) {
            return Err("price_cents must be between 0 and 100000000".to_owned());
        }
        for (resource, value) in &self.limits {
            if let Some(v) = value
                && *v < 0
            {
                return Err(format!(
                    "limits.{} must be null or >= 0",
                    resource.limit_key()
                ));
            }
        }
        Ok(())
    }
}

/// Per-account changes to what the plan grants (super_admin only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// Limits replacing the plan's (a `None` value: unlimited).
    pub limits: BTreeMap<Resource, LimitValue>,
    /// Feature flags replacing the plan's.
    pub features: BTreeMap<Feature, bool>,
}

/// An account's plan and overrides as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEntitlements {
    /// The account.
    pub account_id: AccountId,
    /// Its plan.
    pub plan: Plan,
    /// Its overrides.
    pub overrides: Overrides,
}

/// What an account may do: the plan merged with its overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveEntitlements {
    /// The plan.
    pub plan_id: PlanId,
    /// Every resource's limit (`None`: unlimited).
    pub limits: BTreeMap<Resource, LimitValue>,
    /// Every feature's flag.
    pub features: BTreeMap<Feature, bool>,
}

impl EffectiveEntitlements {
    /// Merges the plan with the overrides: every resource and feature gets a value.
    pub fn of(account: &AccountEntitlements) -> Self {
        let limits = Resource::ALL
            .into_iter()
            .map(|r| {
                let value = match account.overrides.limits.get(&r) {
                    Some(v) => *v,
                    None => account.plan.limit(r),
                };
                (r, value)
            })
            .collect();
        let features = Feature::ALL
            .into_iter()
            .map(|f| {
                let on = account
                    .overrides
                    .features
                    .get(&f)
                    .or_else(|| account.plan.features.get(&f))
                    .copied()
                    .unwrap_or(false);
                (f, on)
            })
            .collect();
        Self {
            plan_id: account.plan.id.clone(),
            limits,
            features,
        }
    }

    /// The limit of `resource`.
    pub fn limit(&self, resource: Resource) -> LimitValue {
        self.limits.get(&resource).copied().flatten()
    }

    /// Whether `feature` is on.
    pub fn has(&self, feature: Feature) -> bool {
        self.features.get(&feature).copied().unwrap_or(false)
    }
}

/// A slot taken by [`check_and_reserve`](crate::EntitlementsService::check_and_reserve):
/// give it back with `release` when the create fails or the object is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a reservation must be kept (object created) or released"]
pub struct Reservation {
    /// The resource.
    pub resource: Resource,
    /// The counter's period (`""` for live objects, `YYYY-MM` for monthly resources).
    pub period: String,
}

/// One slot of a limited resource, to be taken by the store **in the same transaction** as
/// the create that uses it (from [`claim`](crate::EntitlementsService::claim)). The store
/// bumps the counter only while it is below `limit`, in one statement, atomically with the
/// insert: a failed create, a crash or a refused slot leave the counter untouched, so nothing
/// is ever given back by hand and no slot leaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaClaim {
    /// The resource.
    pub resource: Resource,
    /// The counter's period (`""` for live objects, `YYYY-MM` for monthly resources).
    pub period: String,
    /// The account's limit when the claim was made (`None`: unlimited, the slot is still
    /// counted). Read from the entitlements cache, so a changed limit applies within its TTL.
    pub limit: Option<i64>,
}

impl QuotaClaim {
    /// The refusal to report when the store found no slot left.
    pub fn exceeded(&self, used: i64, limit: i64) -> crate::EntitlementError {
        crate::EntitlementError::QuotaExceeded {
            resource: self.resource,
            limit,
            used,
        }
    }
}

/// A resource whose usage is above a plan's limit (refuses a downgrade).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageExcess {
    /// The resource.
    pub resource: Resource,
    /// The new plan's limit.
    pub limit: i64,
    /// Current usage.
    pub used: i64,
}
