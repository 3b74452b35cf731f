//! `whatpro-chatwoot-sim`: a faithful fake Chatwoot server for the Hub's tests and for
//! `whatpro-hub dev`.
//!
//! It owns the simulated Chatwoot side of the integration contract in
//! `/work/shared/chatwoot/README.md`: the user API (`/api/v1/profile`, account inboxes, agents,
//! teams, conversations, webhooks and dashboard apps), devise_token_auth (`/auth/sign_in`,
//! `/auth/validate_token`, `/auth/sign_out`), Chatwoot's error bodies and statuses, failure
//! injection, request recording, and outgoing signed webhooks. Responses are built from the
//! shared example payloads, embedded verbatim in [`fixtures`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use whatpro_chatwoot_sim::ChatwootSim;
//! let sim = ChatwootSim::start("127.0.0.1:0".parse().map_err(std::io::Error::other)?).await?;
//! let seed = sim.seed_demo();
//! // GET {sim.url()}/api/v1/profile with header `api_access_token: {seed.admin.access_token}`
//! # Ok(()) }
//! ```

mod api;
pub mod fixtures;
mod model;
mod server;
mod types;
mod util;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use types::{
    AccountStatus, Availability, DemoSeed, DeviseSession, Fault, NewSimUser, RecordedRequest,
    SeededUser, SimError, SimRole,
};
pub use webhook::{WEBHOOK_TIMEOUT, WebhookSigning, rails_json, sign, verify_signature};

/// Events an account webhook may subscribe to (`Webhook::ALLOWED_WEBHOOK_EVENTS`).
pub const ALLOWED_WEBHOOK_EVENTS: [&str; 12] = api::ALLOWED_WEBHOOK_EVENTS;

use model::{Account, Membership, TeamEntry, TeamMembers, User};
use server::Shared;

/// Stops the server when the last [`ChatwootSim`] clone is dropped.
struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Receivers also notice the sender being dropped; sending is just explicit.
        let _ = self.shutdown.send(true);
    }
}

/// A running fake Chatwoot. Cheap to clone; the server stops when the last clone is dropped
/// or [`ChatwootSim::shutdown`] is called.
#[derive(Clone)]
pub struct ChatwootSim {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for ChatwootSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatwootSim")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl ChatwootSim {
    /// Binds (use `127.0.0.1:0` for a free port) and serves in a spawned tokio task until
    /// [`shutdown`](Self::shutdown) or the drop of the last handle. Starts with no accounts or users.
    pub async fn start(bind: SocketAddr) -> std::io::Result<ChatwootSim> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let (shutdown, receiver) = watch::channel(false);
        tokio::spawn(server::serve(listener, Arc::clone(&shared), receiver));
        tracing::info!(%addr, "chatwoot-sim listening");
        Ok(ChatwootSim {
            inner: Arc::new(Handle {
                shared,
                addr,
                shutdown,
            }),
        })
    }

    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Stops accepting connections and closes open ones.
    pub fn shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn with_account(&self, account_id: i64, f: impl FnOnce(&mut Account)) {
        let mut state = self.shared().lock_state();
        match state.accounts.get_mut(&account_id) {
            Some(account) => f(account),
            None => tracing::warn!(account_id, "chatwoot-sim: unknown account"),
        }
    }

    // ------------------------------------------------------------ accounts and users

    /// Adds an active account (or renames an existing one). A new account gets the inboxes of
    /// `inboxes_index.json` and the teams of `teams_index.json`, with account-specific ids
    /// (`fixture id + (account_id - 1) * 100`, so account 1 keeps the fixture ids).
    pub fn add_account(&self, id: i64, name: &str) {
        let mut state = self.shared().lock_state();
        state
            .accounts
            .entry(id)
            .and_modify(|a| a.name = name.to_owned())
            .or_insert_with(|| Account::new(id, name));
    }

    /// Sets an account's status (suspended accounts answer 401 `Account is suspended`).
    pub fn set_account_status(&self, id: i64, status: AccountStatus) {
        self.with_account(id, |a| a.status = status);
    }

    /// Adds (or replaces) a user.
    pub fn add_user(&self, user: NewSimUser) {
        let mut state = self.shared().lock_state();
        state.users.insert(
            user.id,
            User {
                id: user.id,
                name: user.name,
                email: user.email,
                access_token: user.access_token,
                user_type: user.user_type,
                password: user.password,
                display_name: user.display_name,
                custom_attributes: user.custom_attributes,
                pubsub_token: util::alphanumeric(24),
                created_at: util::iso_now(),
            },
        );
    }

    /// Removes a user, their memberships and sessions.
    pub fn remove_user(&self, user_id: i64) {
        let mut state = self.shared().lock_state();
        state.users.remove(&user_id);
        state.memberships.retain(|(u, _), _| *u != user_id);
        state.sessions.retain(|s| s.user_id != user_id);
    }

    /// Makes the user a member of the account with `role` (or changes the role).
    pub fn add_membership(&self, user_id: i64, account_id: i64, role: SimRole) {
        let mut state = self.shared().lock_state();
        state
            .memberships
            .entry((user_id, account_id))
            .and_modify(|m| m.role = role)
            .or_insert_with(|| Membership::new(role));
    }

    /// Removes the user from the account.
    pub fn remove_membership(&self, user_id: i64, account_id: i64) {
        let mut state = self.shared().lock_state();
        state.memberships.remove(&(user_id, account_id));
    }

    /// Sets the user's availability (and live presence) in an account.
    pub fn set_availability(&self, user_id: i64, account_id: i64, availability: Availability) {
        let mut state = self.shared().lock_state();
        if let Some(m) = state.memberships.get_mut(&(user_id, account_id)) {
            m.availability = availability;
            m.presence = availability;
        }
    }

    /// Sets `active_at` of a membership (ISO string). The profile's top-level `account_id`
    /// and `role` come from the membership with the latest `active_at`.
    pub fn set_active_at(&self, user_id: i64, account_id: i64, active_at: Option<&str>) {
        let mut state = self.shared().lock_state();
        if let Some(m) = state.memberships.get_mut(&(user_id, account_id)) {
            m.active_at = active_at.map(str::to_owned);
        }
    }

    /// Creates a devise_token_auth session for the user (random `access-token` and `client`,
    /// `uid` = email, expiry in 2 months). For an unknown user the session never validates.
    pub fn sign_in(&self, user_id: i64) -> DeviseSession {
        let mut state = self.shared().lock_state();
        api::create_session(&mut state, user_id)
    }

    /// Ends every devise session of the user.
    pub fn sign_out_all(&self, user_id: i64) {
        let mut state = self.shared().lock_state();
        state.sessions.retain(|s| s.user_id != user_id);
    }

    // ------------------------------------------------------------ account data

    /// Replaces the account's inboxes (Inbox objects as in `inboxes_index.json`). Every account
    /// member is a member of each inbox until [`set_inbox_members`](Self::set_inbox_members).
    pub fn set_inboxes(&self, account_id: i64, inboxes: Vec<Value>) {
        self.with_account(account_id, |a| {
            a.inboxes = inboxes
                .into_iter()
                .map(|value| model::InboxEntry {
                    value,
                    members: None,
                })
                .collect();
        });
    }

    /// Adds an inbox (an Inbox object as in `inboxes_index.json`; see
    /// [`api_inbox`](Self::api_inbox)) or replaces the one with the same `id`.
    pub fn add_inbox(&self, account_id: i64, inbox: Value) {
        self.with_account(account_id, |a| {
            let entry = model::InboxEntry {
                value: inbox,
                members: None,
            };
            match a.inboxes.iter_mut().find(|i| i.id() == entry.id()) {
                Some(slot) => *slot = entry,
                None => a.inboxes.push(entry),
            }
        });
    }

    /// Removes an inbox; `false` when the account has no inbox with that id.
    pub fn remove_inbox(&self, account_id: i64, inbox_id: i64) -> bool {
        let mut removed = false;
        self.with_account(account_id, |a| {
            let before = a.inboxes.len();
            a.inboxes.retain(|i| i.id() != Some(inbox_id));
            removed = a.inboxes.len() != before;
        });
        removed
    }

    /// The account's inbox ids, in the order `GET .../inboxes` lists them for an
    /// administrator (by name).
    pub fn inbox_ids(&self, account_id: i64) -> Vec<i64> {
        let state = self.shared().lock_state();
        let Some(account) = state.accounts.get(&account_id) else {
            return Vec::new();
        };
        let mut inboxes: Vec<&model::InboxEntry> = account.inboxes.iter().collect();
        inboxes.sort_by(|a, b| {
            a.name()
                .to_lowercase()
                .cmp(&b.name().to_lowercase())
                .then(a.id().cmp(&b.id()))
        });
        inboxes.iter().filter_map(|i| i.id()).collect()
    }

    /// An API-channel inbox shaped like the `Channel::Api` item of `inboxes_index.json`
    /// (every key kept), with this id, name and `channel_id`.
    pub fn api_inbox(id: i64, name: &str) -> Value {
        let template = fixtures::INBOXES_JSON
            .get("payload")
            .and_then(Value::as_array)
            .and_then(|items| {
                items
                    .iter()
                    .find(|i| i.get("channel_type").and_then(Value::as_str) == Some("Channel::Api"))
            })
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let mut inbox = template;
        if let Some(object) = inbox.as_object_mut() {
            object.insert("id".to_owned(), Value::from(id));
            object.insert("channel_id".to_owned(), Value::from(id));
            object.insert("name".to_owned(), Value::from(name));
            object.insert("channel_type".to_owned(), Value::from("Channel::Api"));
        }
        inbox
    }

    /// Adds `count` API-channel inboxes (`Seeded inbox 0001` ...) with ids from `first_id` up,
    /// for load tests (e.g. the 1 000-inbox sync benchmark). Returns their ids.
    pub fn seed_inboxes(&self, account_id: i64, first_id: i64, count: usize) -> Vec<i64> {
        let ids: Vec<i64> = (0..count)
            .filter_map(|i| i64::try_from(i).ok())
            .map(|i| first_id.saturating_add(i))
            .collect();
        self.with_account(account_id, |a| {
            for (n, id) in ids.iter().enumerate() {
                let value = Self::api_inbox(*id, &format!("Seeded inbox {:04}", n + 1));
                a.inboxes.retain(|i| i.id() != Some(*id));
                a.inboxes.push(model::InboxEntry {
                    value,
                    members: None,
                });
            }
        });
        ids
    }

    /// Restricts an inbox to these users (`None`: every account member). Agents only see
    /// inboxes they are members of; administrators see all.
    pub fn set_inbox_members(&self, account_id: i64, inbox_id: i64, members: Option<Vec<i64>>) {
        self.with_account(account_id, |a| {
            if let Some(inbox) = a.inboxes.iter_mut().find(|i| i.id() == Some(inbox_id)) {
                inbox.members = members;
            }
        });
    }

    /// Replaces the agents list returned as-is by `GET .../agents` (default: built from the
    /// account's members in the shape of `agents_index.json`).
    pub fn set_agents(&self, account_id: i64, agents: Vec<Value>) {
        self.with_account(account_id, |a| a.agents = Some(agents));
    }

    /// Returns `GET .../agents` to the default list built from the account's members.
    pub fn reset_agents(&self, account_id: i64) {
        self.with_account(account_id, |a| a.agents = None);
    }

    /// Replaces the account's teams (objects as in `teams_index.json`). A team whose
    /// `is_member` is `true` has every account member; otherwise none, until
    /// [`set_team_members`](Self::set_team_members). `is_member` is computed per caller.
    pub fn set_teams(&self, account_id: i64, teams: Vec<Value>) {
        self.with_account(account_id, |a| {
            a.teams = teams.into_iter().map(TeamEntry::from_value).collect();
        });
    }

    /// Sets the members of a team.
    pub fn set_team_members(&self, account_id: i64, team_id: i64, members: Vec<i64>) {
        self.with_account(account_id, |a| {
            if let Some(team) = a.teams.iter_mut().find(|t| t.id() == Some(team_id)) {
                team.members = TeamMembers::Only(members);
            }
        });
    }

    /// Replaces the account's conversations (objects shaped like Chatwoot's conversation
    /// partial, README 3) served by `GET .../conversations` with Chatwoot's filters
    /// (`status` default `open`, `assignee_type`, `inbox_id`, `team_id`, `page` of 25).
    pub fn set_conversations(&self, account_id: i64, conversations: Vec<Value>) {
        self.with_account(account_id, |a| a.conversations = conversations);
    }

    /// The account's webhooks as `GET .../webhooks` renders them (with `secret`).
    pub fn webhooks(&self, account_id: i64) -> Vec<Value> {
        let state = self.shared().lock_state();
        state
            .accounts
            .get(&account_id)
            .map(|a| {
                a.webhooks
                    .iter()
                    .map(|w| api::render_webhook(a, w))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The account's dashboard apps as `GET .../dashboard_apps` renders them.
    pub fn dashboard_apps(&self, account_id: i64) -> Vec<Value> {
        let state = self.shared().lock_state();
        state
            .accounts
            .get(&account_id)
            .map(|a| {
                a.dashboard_apps
                    .iter()
                    .map(api::render_dashboard_app)
                    .collect()
            })
            .unwrap_or_default()
    }

    // ------------------------------------------------------------ pages

    /// Serves `html` as `text/html` for `GET path` (exact path, query ignored), on the
    /// simulator's origin: e.g. a page standing in for the Chatwoot dashboard that runs a
    /// Dashboard Script in a browser test. Replaces an earlier page at the same path; API
    /// routes at other paths are unaffected. Faults apply to pages too.
    pub fn set_page(&self, path: &str, html: impl Into<String>) {
        self.shared()
            .lock_pages()
            .insert(path.to_owned(), html.into());
    }

    // ------------------------------------------------------------ faults and recording

    /// Failure injection: every following request gets this fault until `set_fault(None)`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        let mut state = self.shared().lock_fault();
        state.fault = fault;
        state.remaining = None;
    }

    /// Failure injection for one route: every request whose path contains `path_piece` (e.g.
    /// `"/inboxes"`) gets this fault until it is cleared with `None`; other routes answer
    /// normally. Route faults win over [`set_fault`](Self::set_fault).
    pub fn set_route_fault(&self, path_piece: &str, fault: Option<Fault>) {
        let mut state = self.shared().lock_fault();
        state.routes.retain(|(piece, _)| piece != path_piece);
        if let Some(fault) = fault {
            state.routes.push((path_piece.to_owned(), fault));
        }
    }

    /// Failure injection for the next `times` requests only, then normal answers again.
    pub fn set_fault_times(&self, fault: Fault, times: usize) {
        let mut state = self.shared().lock_fault();
        if times == 0 {
            state.fault = None;
            state.remaining = None;
        } else {
            state.fault = Some(fault);
            state.remaining = Some(times);
        }
    }

    /// Every request received so far (oldest first; the last 10 000 are kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared().lock_requests().iter().cloned().collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared().lock_requests().clear();
    }

    // ------------------------------------------------------------ webhooks out

    /// Posts a webhook the way Chatwoot does (README 4c): Rails-compact JSON body,
    /// `Content-Type`/`Accept: application/json`, `X-Chatwoot-Delivery` (UUID),
    /// `X-Chatwoot-Timestamp`, and `X-Chatwoot-Signature` when `secret` is given. No retry,
    /// 5 s timeout. Returns the receiver's status (any status, 2xx or not).
    pub async fn send_webhook(
        &self,
        url: &str,
        payload: &Value,
        secret: Option<&str>,
    ) -> Result<u16, SimError> {
        let signing = secret.map_or(WebhookSigning::Unsigned, WebhookSigning::Signed);
        webhook::deliver(url, rails_json(payload).into_bytes(), signing).await
    }

    /// Posts exactly `body` (e.g. an example payload's bytes), choosing how it is signed;
    /// [`WebhookSigning::Legacy`] mimics Chatwoot before 4.11.2 (no `X-Chatwoot-*` headers).
    pub async fn send_webhook_body(
        &self,
        url: &str,
        body: &[u8],
        signing: WebhookSigning<'_>,
    ) -> Result<u16, SimError> {
        webhook::deliver(url, body.to_vec(), signing).await
    }

    // ------------------------------------------------------------ demo data

    /// Seeds the demo used by `whatpro-hub dev` and many tests: accounts 1 "WhatPro Demo" and
    /// 9 "Cliente Beta"; Carlos Lima (id 5, administrator in 1, agent in 9, as in
    /// `profile.json`) and Ana Reis (id 6, agent in 1, as in `agents_index.json`). Both have a
    /// personal API token and the password `secret`.
    pub fn seed_demo(&self) -> DemoSeed {
        let admin = SeededUser {
            id: 5,
            name: "Carlos Lima".to_owned(),
            email: "carlos@whatpro.example".to_owned(),
            access_token: "kZ8yX7wV6uT5sR4qP3oN2mLk".to_owned(),
            password: "secret".to_owned(),
        };
        let agent = SeededUser {
            id: 6,
            name: "Ana Reis".to_owned(),
            email: "ana@whatpro.example".to_owned(),
            access_token: "aR5nT8eI2sW4qP7xL1mZ3cVb".to_owned(),
            password: "secret".to_owned(),
        };
        self.add_account(1, "WhatPro Demo");
        self.add_account(9, "Cliente Beta");
        self.add_user(
            NewSimUser::new(admin.id, &admin.name, &admin.email, &admin.access_token)
                .with_password(&admin.password)
                .with_display_name("Carlos"),
        );
        let mut extension = Map::new();
        extension.insert("extension".to_owned(), Value::from("204"));
        self.add_user(
            NewSimUser::new(agent.id, &agent.name, &agent.email, &agent.access_token)
                .with_password(&agent.password)
                .with_custom_attributes(extension),
        );
        self.add_membership(admin.id, 1, SimRole::Administrator);
        self.add_membership(admin.id, 9, SimRole::Agent);
        self.add_membership(agent.id, 1, SimRole::Agent);
        {
            let mut state = self.shared().lock_state();
            if let Some(m) = state.memberships.get_mut(&(admin.id, 1)) {
                m.active_at = Some("2026-01-19T13:30:00.512Z".to_owned());
            }
            if let Some(m) = state.memberships.get_mut(&(admin.id, 9)) {
                m.presence = types::Availability::Offline;
            }
            if let Some(m) = state.memberships.get_mut(&(agent.id, 1)) {
                m.availability = types::Availability::Busy;
                m.presence = types::Availability::Busy;
                m.auto_offline = false;
            }
        }
        DemoSeed {
            primary_account_id: 1,
            secondary_account_id: 9,
            admin,
            agent,
        }
    }
}
