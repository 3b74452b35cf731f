//! The simulator's in-memory "database".

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::fixtures;
use crate::types::{AccountStatus, Availability, DeviseSession, SimRole};

/// A user row.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub access_token: String,
    pub user_type: Option<String>,
    pub password: Option<String>,
    pub display_name: Option<String>,
    pub custom_attributes: Map<String, Value>,
    pub pubsub_token: String,
    pub created_at: String,
}

impl User {
    /// `available_name`: display name, else name.
    pub fn available_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// An `account_users` row.
#[derive(Debug, Clone)]
pub(crate) struct Membership {
    pub role: SimRole,
    /// The user's availability setting.
    pub availability: Availability,
    /// Live presence (`availability_status`).
    pub presence: Availability,
    pub auto_offline: bool,
    pub active_at: Option<String>,
}

impl Membership {
    pub fn new(role: SimRole) -> Self {
        Self {
            role,
            availability: Availability::Online,
            presence: Availability::Online,
            auto_offline: true,
            active_at: None,
        }
    }
}

/// Which account members belong to a team.
#[derive(Debug, Clone)]
pub(crate) enum TeamMembers {
    /// Every member of the account.
    Everyone,
    /// Only these user ids.
    Only(Vec<i64>),
}

#[derive(Debug, Clone)]
pub(crate) struct InboxEntry {
    pub value: Value,
    /// `None`: every account member is an inbox member.
    pub members: Option<Vec<i64>>,
}

impl InboxEntry {
    pub fn id(&self) -> Option<i64> {
        self.value.get("id").and_then(Value::as_i64)
    }

    pub fn name(&self) -> &str {
        self.value.get("name").and_then(Value::as_str).unwrap_or("")
    }

    pub fn has_member(&self, user_id: i64) -> bool {
        self.members
            .as_ref()
            .is_none_or(|members| members.contains(&user_id))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct TeamEntry {
    pub value: Value,
    pub members: TeamMembers,
}

impl TeamEntry {
    pub fn from_value(value: Value) -> Self {
        let members = if value.get("is_member").and_then(Value::as_bool) == Some(true) {
            TeamMembers::Everyone
        } else {
            TeamMembers::Only(Vec::new())
        };
        Self { value, members }
    }

    pub fn id(&self) -> Option<i64> {
        self.value.get("id").and_then(Value::as_i64)
    }

    pub fn has_member(&self, user_id: i64) -> bool {
        match &self.members {
            TeamMembers::Everyone => true,
            TeamMembers::Only(ids) => ids.contains(&user_id),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct WebhookEntry {
    pub id: i64,
    pub name: Option<String>,
    pub url: String,
    pub subscriptions: Vec<Value>,
    pub inbox_id: Option<i64>,
    pub secret: String,
}

#[derive(Debug, Clone)]
pub(crate) struct DashboardAppEntry {
    pub id: i64,
    pub title: String,
    pub content: Value,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub id: i64,
    pub name: String,
    pub status: AccountStatus,
    pub inboxes: Vec<InboxEntry>,
    /// Set by `set_agents`; `None` builds the list from the members.
    pub agents: Option<Vec<Value>>,
    pub teams: Vec<TeamEntry>,
    pub webhooks: Vec<WebhookEntry>,
    pub dashboard_apps: Vec<DashboardAppEntry>,
    pub conversations: Vec<Value>,
}

impl Account {
    /// A new active account with the default inboxes and teams from the fixtures.
    pub fn new(id: i64, name: &str) -> Self {
        Self {
            id,
            name: name.to_owned(),
            status: AccountStatus::Active,
            inboxes: default_inboxes(id),
            agents: None,
            teams: default_teams(id),
            webhooks: Vec::new(),
            dashboard_apps: Vec::new(),
            conversations: Vec::new(),
        }
    }
}

/// Shifts a fixture id so that every account gets its own ids (account 1 keeps the fixture ids).
pub(crate) fn account_specific_id(fixture_id: i64, account_id: i64) -> i64 {
    fixture_id.saturating_add(account_id.saturating_sub(1).saturating_mul(100))
}

fn shift_id(obj: &mut Value, key: &str, account_id: i64) {
    if let Some(slot) = obj.get_mut(key)
        && let Some(id) = slot.as_i64()
    {
        *slot = Value::from(account_specific_id(id, account_id));
    }
}

fn default_inboxes(account_id: i64) -> Vec<InboxEntry> {
    let items = fixtures::INBOXES_JSON
        .get("payload")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    items
        .into_iter()
        .map(|mut value| {
            shift_id(&mut value, "id", account_id);
            shift_id(&mut value, "channel_id", account_id);
            InboxEntry {
                value,
                members: None,
            }
        })
        .collect()
}

fn default_teams(account_id: i64) -> Vec<TeamEntry> {
    let items = fixtures::TEAMS_JSON.as_array().cloned().unwrap_or_default();
    items
        .into_iter()
        .map(|mut value| {
            shift_id(&mut value, "id", account_id);
            if let Some(slot) = value.get_mut("account_id") {
                *slot = Value::from(account_id);
            }
            TeamEntry::from_value(value)
        })
        .collect()
}

#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub user_id: i64,
    pub session: DeviseSession,
}

/// Everything the simulator knows.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub accounts: BTreeMap<i64, Account>,
    pub users: BTreeMap<i64, User>,
    /// Keyed by `(user_id, account_id)`.
    pub memberships: BTreeMap<(i64, i64), Membership>,
    pub sessions: Vec<Session>,
    /// Last id handed out to a webhook or dashboard app.
    pub last_id: i64,
}

impl State {
    pub fn next_id(&mut self) -> i64 {
        self.last_id += 1;
        self.last_id
    }

    /// The user's memberships with their accounts, ordered by account id.
    pub fn memberships_of(&self, user_id: i64) -> Vec<(&Account, &Membership)> {
        self.memberships
            .range((user_id, i64::MIN)..=(user_id, i64::MAX))
            .filter_map(|((_, account_id), m)| self.accounts.get(account_id).map(|a| (a, m)))
            .collect()
    }

    /// The account's members with their memberships, ordered by user id.
    pub fn members_of(&self, account_id: i64) -> Vec<(&User, &Membership)> {
        self.memberships
            .iter()
            .filter(|((_, a), _)| *a == account_id)
            .filter_map(|((u, _), m)| self.users.get(u).map(|user| (user, m)))
            .collect()
    }

    pub fn membership(&self, user_id: i64, account_id: i64) -> Option<&Membership> {
        self.memberships.get(&(user_id, account_id))
    }
}
