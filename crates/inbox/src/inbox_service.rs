//! [`InboxService`]: the account's Chatwoot connection and the inbox mirror it feeds.

use std::sync::Arc;
use std::time::Duration;

use whatpro_entitlements::Resource;
use whatpro_iam::{AccountStatus, Action, AuditContext, ChatwootRole, PlatformScope, TenantScope};
use whatpro_kernel::{Clock, IdGen, Limit};

use crate::error::InboxError;
use crate::ids::{InboxId, SyncRunId};
use crate::model::{
    ChatwootConnection, ConnectionStatus, Inbox, NewConnection, Paged, SyncRun, SyncStart,
    SyncTrigger,
};
use crate::ports::{ChatwootAccounts, ChatwootCallError, InboxStore, Quotas, SecretSealer};
use crate::secrets::chatwoot_token_purpose;
use crate::sync::plan_sync;
use crate::validate;

/// How long one sync may hold its account's lease. A sync takes at most two Chatwoot attempts
/// of 5 s plus the database write; a process that dies mid-sync frees the account after this.
pub const SYNC_LEASE: Duration = Duration::from_secs(120);

/// The longest failure text kept on a run.
const MAX_ERROR_CHARS: usize = 500;

/// What a round of scheduled syncs did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncRound {
    /// Accounts whose sync succeeded.
    pub succeeded: usize,
    /// Accounts whose sync failed (recorded on their runs).
    pub failed: usize,
    /// Accounts skipped (another sync was running, or the connection went away).
    pub skipped: usize,
}

/// The Chatwoot connection of an account and its inbox mirror.
pub struct InboxService {
    store: Arc<dyn InboxStore>,
    chatwoot: Arc<dyn ChatwootAccounts>,
    sealer: Arc<dyn SecretSealer>,
    quotas: Arc<dyn Quotas>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGen>,
}

impl std::fmt::Debug for InboxService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxService").finish_non_exhaustive()
    }
}

fn require(scope: &TenantScope, action: Action) -> Result<(), InboxError> {
    if scope.can(action) {
        Ok(())
    } else {
        Err(InboxError::Forbidden)
    }
}

fn shorten(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

impl InboxService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn InboxStore>,
        chatwoot: Arc<dyn ChatwootAccounts>,
        sealer: Arc<dyn SecretSealer>,
        quotas: Arc<dyn Quotas>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGen>,
    ) -> Self {
        Self {
            store,
            chatwoot,
            sealer,
            quotas,
            clock,
            ids,
        }
    }

    /// Stores (or replaces) the account's Chatwoot connection after Chatwoot confirmed that
    /// `token` belongs to an active administrator of the account (admins, `SettingsWrite`).
    /// The token is sealed with the data keys and never shown again.
    ///
    /// # Errors
    /// `Forbidden`; `Invalid` (`api_access_token`); `ChatwootTokenInvalid` (Chatwoot refused
    /// it); `ChatwootNotAdmin`; `ChatwootUnavailable`; storage errors.
    pub async fn connect(
        &self,
        scope: &TenantScope,
        token: &str,
        audit: &AuditContext,
    ) -> Result<ChatwootConnection, InboxError> {
        require(scope, Action::SettingsWrite)?;
        let token = validate::chatwoot_token(token)?;
        let profile = self
            .chatwoot
            .token_owner(scope, &token)
            .await
            .map_err(|e| match e {
                ChatwootCallError::Unauthorized(message) => {
                    InboxError::ChatwootTokenInvalid(message)
                }
                other => InboxError::ChatwootUnavailable(other.to_string()),
            })?;
        let account = scope.account_id();
        let administrator = profile.accounts.iter().any(|m| {
            m.account_id == account
                && m.role == ChatwootRole::Administrator
                && m.status == AccountStatus::Active
        });
        if !administrator {
            return Err(InboxError::ChatwootNotAdmin(account.get()));
        }
        let sealed_token = self
            .sealer
            .seal(&chatwoot_token_purpose(account), token.as_bytes())
            .map_err(|e| InboxError::Internal(format!("cannot seal the Chatwoot token: {e}")))?;
        let connection = NewConnection {
            sealed_token,
            chatwoot_user_id: profile.user_id,
            chatwoot_user_name: profile.name,
            verified_at: self.clock.now(),
        };
        Ok(self
            .store
            .save_connection(scope, &connection, audit)
            .await?)
    }

    /// The connection's state and the latest sync run (`InboxesRead`).
    ///
    /// # Errors
    /// `Forbidden`; storage errors.
    pub async fn status(&self, scope: &TenantScope) -> Result<ConnectionStatus, InboxError> {
        require(scope, Action::InboxesRead)?;
        let connection = self.store.connection(scope).await?;
        let last_run = self
            .store
            .list_runs(scope, None, Limit::clamped(Some(1)))
            .await?
            .items
            .into_iter()
            .next();
        Ok(ConnectionStatus {
            connection,
            last_run,
        })
    }

    /// Removes the connection (admins); `true` when there was one. The mirror stays.
    ///
    /// # Errors
    /// `Forbidden`; storage errors.
    pub async fn disconnect(
        &self,
        scope: &TenantScope,
        audit: &AuditContext,
    ) -> Result<bool, InboxError> {
        require(scope, Action::SettingsWrite)?;
        Ok(self.store.delete_connection(scope, audit).await?)
    }

    /// The stored token, opened, for server-to-server calls made on an admin's behalf (e.g.
    /// registering the Dashboard App); `None` without a connection.
    ///
    /// # Errors
    /// `Forbidden` without `SettingsWrite`; `ChatwootReconnectRequired`; storage errors.
    pub async fn stored_token(&self, scope: &TenantScope) -> Result<Option<String>, InboxError> {
        require(scope, Action::SettingsWrite)?;
        let Some(sealed) = self.store.sealed_token(scope).await? else {
            return Ok(None);
        };
        self.open_token(scope, &sealed).map(Some)
    }

    fn open_token(&self, scope: &TenantScope, sealed: &str) -> Result<String, InboxError> {
        let plain = self
            .sealer
            .open(&chatwoot_token_purpose(scope.account_id()), sealed)
            .map_err(|_| InboxError::ChatwootReconnectRequired)?;
        String::from_utf8(plain).map_err(|_| InboxError::ChatwootReconnectRequired)
    }

    /// Mirrored inboxes by id (`InboxesRead`).
    ///
    /// # Errors
    /// `Forbidden`; storage errors.
    pub async fn list_inboxes(
        &self,
        scope: &TenantScope,
        after: Option<InboxId>,
        limit: Limit,
    ) -> Result<Paged<Inbox>, InboxError> {
        require(scope, Action::InboxesRead)?;
        Ok(self.store.list_inboxes(scope, after, limit).await?)
    }

    /// Sync runs, newest first (`InboxesRead`).
    ///
    /// # Errors
    /// `Forbidden`; storage errors.
    pub async fn list_runs(
        &self,
        scope: &TenantScope,
        before: Option<SyncRunId>,
        limit: Limit,
    ) -> Result<Paged<SyncRun>, InboxError> {
        require(scope, Action::InboxesRead)?;
        Ok(self.store.list_runs(scope, before, limit).await?)
    }

    /// Syncs the mirror with Chatwoot's inbox list (`InboxesWrite`): upserts by Chatwoot id,
    /// marks inboxes gone from Chatwoot removed, flags those beyond `max_inboxes` (the oldest
    /// keep service) and records the run. One sync per account at a time; when Chatwoot fails
    /// the mirror keeps its last good state and the run records the error.
    ///
    /// # Errors
    /// `Forbidden`; `ChatwootNotConnected`; `SyncInProgress`; `ChatwootUnavailable` (401, other
    /// statuses, garbage, timeouts); `ChatwootReconnectRequired`; storage and entitlement
    /// errors.
    pub async fn sync(
        &self,
        scope: &TenantScope,
        trigger: SyncTrigger,
    ) -> Result<SyncRun, InboxError> {
        require(scope, Action::InboxesWrite)?;
        let run = SyncRunId::from_uuid(self.ids.new_id());
        let now = self.clock.now();
        let lease = time::Duration::try_from(SYNC_LEASE)
            .map_err(|e| InboxError::Internal(e.to_string()))?;
        let sealed = match self
            .store
            .begin_sync(scope, run, trigger, now, now + lease)
            .await?
        {
            SyncStart::Started { sealed_token } => sealed_token,
            SyncStart::NotConnected => return Err(InboxError::ChatwootNotConnected),
            SyncStart::InProgress => return Err(InboxError::SyncInProgress),
        };
        match self.fetch_and_apply(scope, run, &sealed).await {
            Ok(done) => Ok(done),
            Err(error) => {
                let message = match &error {
                    InboxError::ChatwootUnavailable(m) => m.clone(),
                    other => other.to_string(),
                };
                // The failure is recorded; if even that fails the lease expires on its own.
                if let Err(e) = self
                    .store
                    .fail_sync(scope, run, &shorten(&message), self.clock.now())
                    .await
                {
                    tracing::warn!(error = %e, run = %run, "could not record a failed inbox sync");
                }
                Err(error)
            }
        }
    }

    async fn fetch_and_apply(
        &self,
        scope: &TenantScope,
        run: SyncRunId,
        sealed: &str,
    ) -> Result<SyncRun, InboxError> {
        let token = self.open_token(scope, sealed)?;
        let listed = self
            .chatwoot
            .inboxes(scope, &token)
            .await
            .map_err(|e| InboxError::ChatwootUnavailable(e.to_string()))?;
        let limit = self.quotas.limit(scope, Resource::Inboxes).await?;
        let mirror = self.store.mirror(scope).await?;
        let now = self.clock.now();
        let plan = plan_sync(&mirror, &listed, limit, now, self.ids.as_ref());
        Ok(self.store.apply_sync(scope, run, &plan, now).await?)
    }

    /// One round of the periodic re-sync: every connected account whose last sync started
    /// more than half an `interval` ago is synced (`Scheduled`), one after another.
    ///
    /// # Errors
    /// Storage errors listing the accounts (failures of single accounts are counted).
    pub async fn sync_due(
        &self,
        platform: &PlatformScope,
        interval: Duration,
        max_accounts: i64,
    ) -> Result<SyncRound, InboxError> {
        let half = time::Duration::try_from(interval / 2)
            .map_err(|e| InboxError::Internal(e.to_string()))?;
        let due = self
            .store
            .accounts_due_for_sync(platform, self.clock.now() - half, max_accounts)
            .await?;
        let mut round = SyncRound::default();
        for account in due {
            let scope = platform.tenant(account);
            match self.sync(&scope, SyncTrigger::Scheduled).await {
                Ok(_) => round.succeeded += 1,
                Err(InboxError::SyncInProgress | InboxError::ChatwootNotConnected) => {
                    round.skipped += 1;
                }
                Err(error) => {
                    tracing::warn!(account = %account, error = %error, "scheduled inbox sync failed");
                    round.failed += 1;
                }
            }
        }
        Ok(round)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ChatwootInboxId;
    use crate::model::{ChatwootInbox, SyncCounts, SyncStatus};
    use crate::ports::{MockChatwootAccounts, MockInboxStore, MockQuotas, MockSecretSealer};
    use time::OffsetDateTime;
    use time::macros::datetime;
    use whatpro_iam::{ChatwootMembership, ChatwootProfile, Role};
    use whatpro_kernel::{AccountId, FixedClock, UserId, UuidV7Gen};

    const NOW: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

    struct Mocks {
        store: MockInboxStore,
        chatwoot: MockChatwootAccounts,
        sealer: MockSecretSealer,
        quotas: MockQuotas,
    }

    impl Mocks {
        fn new() -> Self {
            let mut sealer = MockSecretSealer::new();
            sealer.expect_seal().returning(|purpose, plain| {
                Ok(format!(
                    "sealed[{purpose}]{}",
                    String::from_utf8_lossy(plain)
                ))
            });
            sealer.expect_open().returning(|purpose, sealed| {
                sealed
                    .strip_prefix(&format!("sealed[{purpose}]"))
                    .map(|p| p.as_bytes().to_vec())
                    .ok_or_else(|| crate::ports::SealError("other purpose".into()))
            });
            Self {
                store: MockInboxStore::new(),
                chatwoot: MockChatwootAccounts::new(),
                sealer,
                quotas: MockQuotas::new(),
            }
        }

        fn service(self) -> InboxService {
            InboxService::new(
                Arc::new(self.store),
                Arc::new(self.chatwoot),
                Arc::new(self.sealer),
                Arc::new(self.quotas),
                Arc::new(FixedClock::new(NOW)),
                Arc::new(UuidV7Gen),
            )
        }
    }

    fn scope(role: Role) -> TenantScope {
        TenantScope::for_tests(AccountId::new(1), UserId::new(5), role)
    }

    fn profile(role: ChatwootRole, status: AccountStatus, account: i64) -> ChatwootProfile {
        ChatwootProfile {
            user_id: UserId::new(5),
            email: "c@x.example".into(),
            name: "Carlos".into(),
            accounts: vec![ChatwootMembership {
                account_id: AccountId::new(account),
                account_name: "A".into(),
                status,
                role,
            }],
        }
    }

    fn connection() -> ChatwootConnection {
        ChatwootConnection {
            account_id: AccountId::new(1),
            chatwoot_user_id: UserId::new(5),
            chatwoot_user_name: "Carlos".into(),
            verified_at: NOW,
            last_sync_at: None,
            created_at: NOW,
            updated_at: NOW,
        }
    }

    fn run(status: SyncStatus) -> SyncRun {
        SyncRun {
            id: SyncRunId::from_uuid(uuid::Uuid::now_v7()),
            trigger: SyncTrigger::Manual,
            status,
            started_at: NOW,
            finished_at: Some(NOW),
            counts: SyncCounts::default(),
            error: None,
        }
    }

    #[tokio::test]
    async fn only_admins_connect_and_the_token_is_stored_sealed_for_the_account() {
        for role in [Role::Supervisor, Role::Agent, Role::Viewer] {
            let mut m = Mocks::new();
            m.chatwoot.expect_token_owner().never();
            m.store.expect_save_connection().never();
            let err = m
                .service()
                .connect(&scope(role), "tok", &AuditContext::default())
                .await
                .unwrap_err();
            assert_eq!(err, InboxError::Forbidden, "{role}");
        }
        let mut m = Mocks::new();
        m.chatwoot
            .expect_token_owner()
            .withf(|_, token| token == "tok")
            .returning(|_, _| {
                Ok(profile(
                    ChatwootRole::Administrator,
                    AccountStatus::Active,
                    1,
                ))
            });
        m.store
            .expect_save_connection()
            .withf(|scope, c, _| {
                scope.account_id() == AccountId::new(1)
                    && c.sealed_token == "sealed[whatpro:sealed:chatwoot-connection:1]tok"
                    && c.chatwoot_user_id == UserId::new(5)
            })
            .times(1)
            .returning(|_, _, _| Ok(connection()));
        let saved = m
            .service()
            .connect(&scope(Role::Admin), " tok ", &AuditContext::default())
            .await
            .unwrap();
        assert_eq!(saved.chatwoot_user_name, "Carlos");
    }

    #[tokio::test]
    async fn tokens_of_non_administrators_and_refused_tokens_are_not_stored() {
        let cases = [
            (
                Ok(profile(ChatwootRole::Agent, AccountStatus::Active, 1)),
                "chatwoot_not_admin",
            ),
            (
                Ok(profile(
                    ChatwootRole::Administrator,
                    AccountStatus::Suspended,
                    1,
                )),
                "chatwoot_not_admin",
            ),
            (
                Ok(profile(
                    ChatwootRole::Administrator,
                    AccountStatus::Active,
                    9,
                )),
                "chatwoot_not_admin",
            ),
            (
                Err(ChatwootCallError::Unauthorized(Some(
                    "Invalid Access Token".into(),
                ))),
                "chatwoot_token_invalid",
            ),
            (
                Err(ChatwootCallError::Unavailable("timed out".into())),
                "chatwoot_unavailable",
            ),
            (
                Err(ChatwootCallError::Upstream("Chatwoot answered 500".into())),
                "chatwoot_unavailable",
            ),
        ];
        for (answer, code) in cases {
            let mut m = Mocks::new();
            m.chatwoot
                .expect_token_owner()
                .returning(move |_, _| answer.clone());
            m.store.expect_save_connection().never();
            let err = m
                .service()
                .connect(&scope(Role::Admin), "tok", &AuditContext::default())
                .await
                .unwrap_err();
            use whatpro_kernel::Classify;
            assert_eq!(err.code(), code, "{err}");
        }
        let mut m = Mocks::new();
        m.chatwoot.expect_token_owner().never();
        let err = m
            .service()
            .connect(&scope(Role::Admin), "has space", &AuditContext::default())
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            InboxError::Invalid {
                field: "api_access_token",
                ..
            }
        ));
    }

    #[tokio::test]
    async fn sync_without_connection_or_while_another_runs_changes_nothing() {
        for (start, expected) in [
            (SyncStart::NotConnected, InboxError::ChatwootNotConnected),
            (SyncStart::InProgress, InboxError::SyncInProgress),
        ] {
            let mut m = Mocks::new();
            m.store
                .expect_begin_sync()
                .returning(move |_, _, _, _, _| Ok(start.clone()));
            m.chatwoot.expect_inboxes().never();
            m.store.expect_apply_sync().never();
            m.store.expect_fail_sync().never();
            let err = m
                .service()
                .sync(&scope(Role::Supervisor), SyncTrigger::Manual)
                .await
                .unwrap_err();
            assert_eq!(err, expected);
        }
        // Agents may not sync at all.
        let mut m = Mocks::new();
        m.store.expect_begin_sync().never();
        assert_eq!(
            m.service()
                .sync(&scope(Role::Agent), SyncTrigger::Manual)
                .await
                .unwrap_err(),
            InboxError::Forbidden
        );
    }

    #[tokio::test]
    async fn a_failing_chatwoot_records_the_error_and_leaves_the_mirror() {
        let mut m = Mocks::new();
        m.store
            .expect_begin_sync()
            .withf(|_, _, trigger, now, lease| {
                *trigger == SyncTrigger::Manual && *lease - *now == time::Duration::seconds(120)
            })
            .returning(|_, _, _, _, _| {
                Ok(SyncStart::Started {
                    sealed_token: "sealed[whatpro:sealed:chatwoot-connection:1]tok".into(),
                })
            });
        m.chatwoot
            .expect_inboxes()
            .withf(|_, token| token == "tok")
            .returning(|_, _| Err(ChatwootCallError::Upstream("Chatwoot answered 500".into())));
        m.store.expect_mirror().never();
        m.store.expect_apply_sync().never();
        m.store
            .expect_fail_sync()
            .withf(|_, _, error, _| error == "Chatwoot answered 500")
            .times(1)
            .returning(|_, _, _, _| Ok(run(SyncStatus::Failed)));
        let err = m
            .service()
            .sync(&scope(Role::Admin), SyncTrigger::Manual)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            InboxError::ChatwootUnavailable("Chatwoot answered 500".into())
        );
    }

    #[tokio::test]
    async fn a_good_answer_is_planned_against_the_mirror_and_the_plan_limit() {
        let mut m = Mocks::new();
        m.store.expect_begin_sync().returning(|_, _, _, _, _| {
            Ok(SyncStart::Started {
                sealed_token: "sealed[whatpro:sealed:chatwoot-connection:1]tok".into(),
            })
        });
        m.chatwoot.expect_inboxes().returning(|_, _| {
            Ok((1..=4)
                .map(|i| ChatwootInbox {
                    id: ChatwootInboxId::new(i),
                    name: format!("Inbox {i}"),
                    channel_type: "Channel::Api".into(),
                })
                .collect())
        });
        m.quotas
            .expect_limit()
            .withf(|_, r| *r == Resource::Inboxes)
            .returning(|_, _| Ok(Some(3)));
        m.store.expect_mirror().returning(|_| Ok(Vec::new()));
        m.store
            .expect_apply_sync()
            .withf(|_, _, plan, _| {
                plan.counts.added == 4 && plan.counts.over_quota == 1 && plan.over_quota.len() == 1
            })
            .times(1)
            .returning(|_, _, _, _| Ok(run(SyncStatus::Succeeded)));
        m.store.expect_fail_sync().never();
        let done = m
            .service()
            .sync(&scope(Role::Admin), SyncTrigger::Manual)
            .await
            .unwrap();
        assert_eq!(done.status, SyncStatus::Succeeded);
    }

    #[tokio::test]
    async fn a_token_sealed_for_another_account_is_not_used() {
        let mut m = Mocks::new();
        m.store.expect_begin_sync().returning(|_, _, _, _, _| {
            Ok(SyncStart::Started {
                sealed_token: "sealed[whatpro:sealed:chatwoot-connection:9]tok".into(),
            })
        });
        m.chatwoot.expect_inboxes().never();
        m.store
            .expect_fail_sync()
            .times(1)
            .returning(|_, _, _, _| Ok(run(SyncStatus::Failed)));
        let err = m
            .service()
            .sync(&scope(Role::Admin), SyncTrigger::Manual)
            .await
            .unwrap_err();
        assert_eq!(err, InboxError::ChatwootReconnectRequired);
    }

    #[tokio::test]
    async fn scheduled_rounds_sync_every_due_account_as_the_system() {
        let mut m = Mocks::new();
        m.store
            .expect_accounts_due_for_sync()
            .withf(|_, before, _| *before == NOW - time::Duration::seconds(450))
            .returning(|_, _, _| Ok(vec![AccountId::new(1), AccountId::new(2)]));
        m.store
            .expect_begin_sync()
            .withf(|scope, _, trigger, _, _| {
                *trigger == SyncTrigger::Scheduled && *scope.actor() == whatpro_iam::Actor::System
            })
            .returning(|scope, _, _, _, _| {
                Ok(if scope.account_id() == AccountId::new(1) {
                    SyncStart::InProgress
                } else {
                    SyncStart::Started {
                        sealed_token: "sealed[whatpro:sealed:chatwoot-connection:2]t".into(),
                    }
                })
            });
        m.chatwoot
            .expect_inboxes()
            .returning(|_, _| Err(ChatwootCallError::Unavailable("timed out".into())));
        m.quotas.expect_limit().never();
        m.store
            .expect_fail_sync()
            .returning(|_, _, _, _| Ok(run(SyncStatus::Failed)));
        let round = m
            .service()
            .sync_due(
                &PlatformScope::for_system_jobs(),
                Duration::from_secs(900),
                100,
            )
            .await
            .unwrap();
        assert_eq!(
            round,
            SyncRound {
                succeeded: 0,
                failed: 1,
                skipped: 1
            }
        );
    }

    #[tokio::test]
    async fn the_stored_token_is_only_for_admins() {
        let mut m = Mocks::new();
        m.store.expect_sealed_token().never();
        assert_eq!(
            m.service()
                .stored_token(&scope(Role::Supervisor))
                .await
                .unwrap_err(),
            InboxError::Forbidden
        );
        let mut m = Mocks::new();
        m.store.expect_sealed_token().returning(|_| {
            Ok(Some(
                "sealed[whatpro:sealed:chatwoot-connection:1]tok".into(),
            ))
        });
        assert_eq!(
            m.service()
                .stored_token(&scope(Role::Admin))
                .await
                .unwrap()
                .as_deref(),
            Some("tok")
        );
    }
}
