//! The Hub as a Chatwoot app: installing and uninstalling it in an account (Platform App
//! events) and registering it as a Dashboard App of a Chatwoot account.
//!
//! An uninstalled account keeps its data, but its members lose access (the identity store
//! leaves it out of every principal) until it is installed again. Events are de-duplicated by
//! the sender's id, so a repeat has exactly one effect.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use whatpro_iam::{
    Action, AuditContext, ChatwootCredential, PlatformScope, StoreError, TenantScope,
};
use whatpro_kernel::{AccountId, Classify, ErrorKind};

/// Longest accepted event id (and delivery id).
pub const MAX_EVENT_ID_CHARS: usize = 200;
/// Longest accepted account name.
pub const MAX_ACCOUNT_NAME_CHARS: usize = 255;

/// What a Platform App event does to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstallationChange {
    /// `account.installed`: create the account, or give its members access again.
    Installed,
    /// `account.uninstalled`: keep the data, refuse every credential of the account.
    Uninstalled,
}

impl InstallationChange {
    /// The event name on the wire and in the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallationChange::Installed => "account.installed",
            InstallationChange::Uninstalled => "account.uninstalled",
        }
    }

    /// The change named by an event, if it is one we know.
    pub fn parse(event: &str) -> Option<Self> {
        match event {
            "account.installed" => Some(InstallationChange::Installed),
            "account.uninstalled" => Some(InstallationChange::Uninstalled),
            _ => None,
        }
    }
}

/// A verified Platform App event (its signature was checked by the HTTP layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationEvent {
    /// The sender's event id (de-duplication key).
    pub id: String,
    /// Install or uninstall.
    pub change: InstallationChange,
    /// The Chatwoot account.
    pub account_id: AccountId,
    /// The account's name (empty: keep the known one).
    pub account_name: String,
    /// `X-Whatpro-Delivery`, kept in the audit metadata.
    pub delivery: Option<String>,
    /// For the audit row.
    pub audit: AuditContext,
}

/// How an event was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallationOutcome {
    /// Stored and applied now.
    Applied,
    /// Its id was seen before: nothing changed.
    Duplicate,
}

impl InstallationOutcome {
    /// `applied` or `duplicate`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstallationOutcome::Applied => "applied",
            InstallationOutcome::Duplicate => "duplicate",
        }
    }
}

/// The Hub's installations in accounts.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AccountInstallations: Send + Sync {
    /// Applies an event in one transaction: records its id (a known id changes nothing and
    /// answers `Duplicate`), creates or reactivates the account (install) or marks it
    /// uninstalled, audits `account.installed` / `account.uninstalled` with the system as
    /// actor in the account's log, and tells every instance to drop the cached principals of
    /// the account's members.
    async fn apply(
        &self,
        scope: &PlatformScope,
        event: &InstallationEvent,
    ) -> Result<InstallationOutcome, StoreError>;
}

/// A Dashboard App to create in a Chatwoot account: one frame tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDashboardApp {
    /// The tab's title.
    pub title: String,
    /// The page Chatwoot frames (`http(s)://...`).
    pub frame_url: String,
}

/// A Dashboard App as Chatwoot renders it (`{id, title, content, created_at}`).
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardApp {
    /// Chatwoot's id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// `[{"type": "frame", "url": "..."}]`, as Chatwoot stores it.
    pub content: Value,
    /// As Chatwoot renders it (an ISO-8601 string).
    pub created_at: Value,
}

impl DashboardApp {
    /// Whether one of the app's frames shows `url`.
    pub fn frames(&self, url: &str) -> bool {
        self.content.as_array().is_some_and(|items| {
            items
                .iter()
                .any(|item| item.get("url").and_then(Value::as_str) == Some(url))
        })
    }
}

/// Why a Chatwoot Dashboard App call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DashboardAppError {
    /// Chatwoot refused the credential (invalid, not a member, not an administrator,
    /// suspended account).
    #[error("Chatwoot refused the credential{}", detail(.0))]
    CredentialsInvalid(Option<String>),
    /// Chatwoot could not be reached.
    #[error("Chatwoot is unreachable: {0}")]
    Unavailable(String),
    /// Chatwoot answered something else than expected.
    #[error("Chatwoot answered unexpectedly: {0}")]
    Upstream(String),
}

fn detail(message: &Option<String>) -> String {
    message
        .as_deref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default()
}

/// Chatwoot's Dashboard Apps API (an account's iframe tabs).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ChatwootDashboardApps: Send + Sync {
    /// The dashboard apps of the scope's account, read with `credential`.
    async fn list(
        &self,
        scope: &TenantScope,
        credential: &ChatwootCredential,
    ) -> Result<Vec<DashboardApp>, DashboardAppError>;

    /// Creates a dashboard app in the scope's account with `credential` (an administrator's).
    async fn create(
        &self,
        scope: &TenantScope,
        credential: &ChatwootCredential,
        app: &NewDashboardApp,
    ) -> Result<DashboardApp, DashboardAppError>;
}

/// Failures of the Platform App use cases.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformAppError {
    /// The caller's role does not allow this.
    #[error("your role does not allow this")]
    Forbidden,
    /// The event's values are not acceptable.
    #[error("{0}")]
    InvalidEvent(String),
    /// Chatwoot refused the given credential.
    #[error("Chatwoot refused the credential{}", detail(.0))]
    ChatwootCredentialsInvalid(Option<String>),
    /// Chatwoot could not be reached.
    #[error("Chatwoot is unreachable")]
    ChatwootUnavailable(String),
    /// Chatwoot answered badly.
    #[error("Chatwoot answered unexpectedly")]
    ChatwootUpstream(String),
    /// Storage is unavailable.
    #[error("the service is temporarily unavailable")]
    Unavailable(String),
    /// Unexpected failure (detail for the log only).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Classify for PlatformAppError {
    fn kind(&self) -> ErrorKind {
        match self {
            PlatformAppError::Forbidden => ErrorKind::Forbidden,
            PlatformAppError::InvalidEvent(_) | PlatformAppError::ChatwootCredentialsInvalid(_) => {
                ErrorKind::Invalid
            }
            PlatformAppError::ChatwootUnavailable(_) | PlatformAppError::Unavailable(_) => {
                ErrorKind::Unavailable
            }
            PlatformAppError::ChatwootUpstream(_) => ErrorKind::Upstream,
            PlatformAppError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            PlatformAppError::Forbidden => "forbidden",
            PlatformAppError::InvalidEvent(_) => "invalid_event",
            PlatformAppError::ChatwootCredentialsInvalid(_) => "chatwoot_credentials_invalid",
            PlatformAppError::ChatwootUnavailable(_) => "chatwoot_unavailable",
            PlatformAppError::ChatwootUpstream(_) => "chatwoot_bad_gateway",
            PlatformAppError::Unavailable(_) => "unavailable",
            PlatformAppError::Internal(_) => "internal_error",
        }
    }
}

impl From<StoreError> for PlatformAppError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(d) => PlatformAppError::Unavailable(d),
            StoreError::Internal(d) => PlatformAppError::Internal(d),
        }
    }
}

impl From<DashboardAppError> for PlatformAppError {
    fn from(err: DashboardAppError) -> Self {
        match err {
            DashboardAppError::CredentialsInvalid(m) => {
                PlatformAppError::ChatwootCredentialsInvalid(m)
            }
            DashboardAppError::Unavailable(d) => PlatformAppError::ChatwootUnavailable(d),
            DashboardAppError::Upstream(d) => PlatformAppError::ChatwootUpstream(d),
        }
    }
}

/// A registered Dashboard App and whether this call created it.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    /// The app in Chatwoot.
    pub app: DashboardApp,
    /// False when an app framing the same URL already existed (nothing was created).
    pub created: bool,
}

/// Platform App events and the Dashboard App registration.
pub struct PlatformAppService {
    installations: Arc<dyn AccountInstallations>,
    dashboard_apps: Arc<dyn ChatwootDashboardApps>,
    system: PlatformScope,
}

impl PlatformAppService {
    /// Wires the service; `system` is the scope events are applied with (the composition
    /// root's [`PlatformScope::for_system_jobs`]: an event is authenticated by its signature,
    /// not by a user).
    pub fn new(
        installations: Arc<dyn AccountInstallations>,
        dashboard_apps: Arc<dyn ChatwootDashboardApps>,
        system: PlatformScope,
    ) -> Self {
        Self {
            installations,
            dashboard_apps,
            system,
        }
    }

    /// Applies a signed install/uninstall event once.
    ///
    /// # Errors
    /// `InvalidEvent` for an empty or overlong id or delivery, a non-positive account id or
    /// an overlong name; storage errors.
    pub async fn apply_event(
        &self,
        event: InstallationEvent,
    ) -> Result<InstallationOutcome, PlatformAppError> {
        validate(&event)?;
        Ok(self.installations.apply(&self.system, &event).await?)
    }

    /// Registers the Hub as a Dashboard App of the scope's Chatwoot account (admins). When an
    /// app already frames `app.frame_url`, that one is returned and nothing is created.
    ///
    /// # Errors
    /// `Forbidden` without `SettingsWrite`; `ChatwootCredentialsInvalid`,
    /// `ChatwootUnavailable`, `ChatwootUpstream`.
    pub async fn register_dashboard_app(
        &self,
        scope: &TenantScope,
        credential: &ChatwootCredential,
        app: &NewDashboardApp,
    ) -> Result<Registration, PlatformAppError> {
        if !scope.can(Action::SettingsWrite) {
            return Err(PlatformAppError::Forbidden);
        }
        let existing = self.dashboard_apps.list(scope, credential).await?;
        if let Some(found) = existing.into_iter().find(|a| a.frames(&app.frame_url)) {
            return Ok(Registration {
                app: found,
                created: false,
            });
        }
        let created = self.dashboard_apps.create(scope, credential, app).await?;
        Ok(Registration {
            app: created,
            created: true,
        })
    }
}

fn printable(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn validate(event: &InstallationEvent) -> Result<(), PlatformAppError> {
    let invalid = |m: &str| Err(PlatformAppError::InvalidEvent(m.to_owned()));
    let id_chars = event.id.chars().count();
    if event.id.trim().is_empty() || id_chars > MAX_EVENT_ID_CHARS || !printable(&event.id) {
        return invalid("`id` must be 1 to 200 printable characters");
    }
    if event.account_id.get() <= 0 {
        return invalid("`account.id` must be a positive Chatwoot account id");
    }
    if event.account_name.chars().count() > MAX_ACCOUNT_NAME_CHARS
        || !printable(&event.account_name)
    {
        return invalid("`account.name` must be at most 255 printable characters");
    }
    if let Some(delivery) = &event.delivery
        && (delivery.chars().count() > MAX_EVENT_ID_CHARS || !printable(delivery))
    {
        return invalid("`X-Whatpro-Delivery` must be at most 200 printable characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use serde_json::json;
    use whatpro_iam::Role;
    use whatpro_kernel::UserId;

    use super::*;

    fn event(id: &str, account: i64) -> InstallationEvent {
        InstallationEvent {
            id: id.to_owned(),
            change: InstallationChange::Installed,
            account_id: AccountId::new(account),
            account_name: "Acme".to_owned(),
            delivery: Some("d-1".to_owned()),
            audit: AuditContext {
                request_id: "r".to_owned(),
                ip: None,
            },
        }
    }

    fn service(
        installations: MockAccountInstallations,
        apps: MockChatwootDashboardApps,
    ) -> PlatformAppService {
        PlatformAppService::new(
            Arc::new(installations),
            Arc::new(apps),
            PlatformScope::for_system_jobs(),
        )
    }

    fn app(id: i64, url: &str) -> DashboardApp {
        DashboardApp {
            id,
            title: "x".to_owned(),
            content: json!([{"type": "frame", "url": url}]),
            created_at: json!("2026-01-19T14:10:00.000Z"),
        }
    }

    #[test]
    fn event_names_round_trip() {
        for change in [
            InstallationChange::Installed,
            InstallationChange::Uninstalled,
        ] {
            assert_eq!(InstallationChange::parse(change.as_str()), Some(change));
        }
        assert_eq!(InstallationChange::parse("account.deleted"), None);
    }

    #[tokio::test]
    async fn valid_events_reach_the_store_and_bad_ones_do_not() {
        let mut store = MockAccountInstallations::new();
        store
            .expect_apply()
            .times(1)
            .returning(|_, _| Ok(InstallationOutcome::Duplicate));
        let service = service(store, MockChatwootDashboardApps::new());
        assert_eq!(
            service.apply_event(event("e-1", 1)).await,
            Ok(InstallationOutcome::Duplicate)
        );
        let long = "x".repeat(201);
        for bad in [
            event("", 1),
            event("  ", 1),
            event(&long, 1),
            event("a\nb", 1),
            event("e-2", 0),
            event("e-2", -4),
            InstallationEvent {
                account_name: "n".repeat(256),
                ..event("e-3", 1)
            },
            InstallationEvent {
                delivery: Some("d".repeat(201)),
                ..event("e-4", 1)
            },
        ] {
            let err = service.apply_event(bad).await.unwrap_err();
            assert_eq!(err.code(), "invalid_event");
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
    }

    #[tokio::test]
    async fn only_settings_writers_register_and_an_existing_frame_is_reused() {
        let url = "https://hub.example/embed/app";
        let credential = ChatwootCredential::AccessToken("t".to_owned());
        let new = NewDashboardApp {
            title: "WhatPro Hub".to_owned(),
            frame_url: url.to_owned(),
        };
        let agent = TenantScope::for_tests(AccountId::new(1), UserId::new(6), Role::Agent);
        let admin = TenantScope::for_tests(AccountId::new(1), UserId::new(5), Role::Admin);

        let denied = service(
            MockAccountInstallations::new(),
            MockChatwootDashboardApps::new(),
        );
        assert_eq!(
            denied
                .register_dashboard_app(&agent, &credential, &new)
                .await
                .unwrap_err(),
            PlatformAppError::Forbidden
        );

        let mut apps = MockChatwootDashboardApps::new();
        apps.expect_list()
            .returning(move |_, _| Ok(vec![app(1, "https://other.example"), app(2, url)]));
        apps.expect_create().never();
        let reused = service(MockAccountInstallations::new(), apps)
            .register_dashboard_app(&admin, &credential, &new)
            .await
            .unwrap();
        assert_eq!(reused.app.id, 2);
        assert!(!reused.created);

        let mut apps = MockChatwootDashboardApps::new();
        apps.expect_list().returning(|_, _| Ok(vec![]));
        apps.expect_create()
            .times(1)
            .returning(move |_, _, _| Ok(app(7, url)));
        let created = service(MockAccountInstallations::new(), apps)
            .register_dashboard_app(&admin, &credential, &new)
            .await
            .unwrap();
        assert_eq!(created.app.id, 7);
        assert!(created.created);
    }

    #[tokio::test]
    async fn chatwoot_failures_keep_their_meaning() {
        let credential = ChatwootCredential::AccessToken("t".to_owned());
        let admin = TenantScope::for_tests(AccountId::new(1), UserId::new(5), Role::Admin);
        let new = NewDashboardApp {
            title: "t".to_owned(),
            frame_url: "https://hub.example/embed/app".to_owned(),
        };
        for (failure, code) in [
            (
                DashboardAppError::CredentialsInvalid(None),
                "chatwoot_credentials_invalid",
            ),
            (
                DashboardAppError::Unavailable("down".to_owned()),
                "chatwoot_unavailable",
            ),
            (
                DashboardAppError::Upstream("500".to_owned()),
                "chatwoot_bad_gateway",
            ),
        ] {
            let mut apps = MockChatwootDashboardApps::new();
            apps.expect_list()
                .returning(move |_, _| Err(failure.clone()));
            let err = service(MockAccountInstallations::new(), apps)
                .register_dashboard_app(&admin, &credential, &new)
                .await
                .unwrap_err();
            assert_eq!(err.code(), code);
        }
    }
}
