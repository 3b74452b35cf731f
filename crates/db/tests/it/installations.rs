//! `PgAccountInstallations`: Platform App install/uninstall events, de-duplicated, audited, and
//! felt at once by the identity store (and its cache) of the account's members only.

use whatpro_db::{CachedIdentityStore, PgAccountInstallations, PgIdentityStore};
use whatpro_iam::{AuditContext, ChatwootRole, IdentityStore, PlatformScope};
use whatpro_kernel::{AccountId, UserId};
use whatpro_tenancy::{
    AccountInstallations, AuditActor, InstallationChange, InstallationEvent, InstallationOutcome,
};

use crate::support::{Fixture, now, profile};

fn event(id: &str, change: InstallationChange, account: i64) -> InstallationEvent {
    InstallationEvent {
        id: id.to_owned(),
        change,
        account_id: AccountId::new(account),
        account_name: String::new(),
        delivery: Some("delivery-7".to_owned()),
        audit: AuditContext {
            request_id: "req-1".to_owned(),
            ip: None,
        },
    }
}

fn accounts_of(principal: &whatpro_iam::Principal) -> Vec<i64> {
    principal
        .memberships
        .iter()
        .map(|m| m.account_id.get())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn uninstall_hides_one_account_from_its_members_until_it_is_installed_again() {
    let fx = Fixture::new().await;
    let cached = CachedIdentityStore::new(PgIdentityStore::new(fx.pool.clone()));
    let installations =
        PgAccountInstallations::new(fx.pool.clone()).with_invalidator(cached.invalidator());
    let system = PlatformScope::for_system_jobs();
    let both = profile(
        1,
        &[(10, ChatwootRole::Administrator), (20, ChatwootRole::Agent)],
    );
    let only_b = profile(2, &[(20, ChatwootRole::Administrator)]);
    fx.login(&both, "t1", now()).await;
    fx.login(&only_b, "t2", now()).await;
    let user = UserId::new(1);
    assert_eq!(
        accounts_of(&cached.principal(user).await.unwrap().unwrap()),
        [10, 20]
    );

    let uninstall = event("e-1", InstallationChange::Uninstalled, 10);
    assert_eq!(
        installations.apply(&system, &uninstall).await.unwrap(),
        InstallationOutcome::Applied
    );
    // The cached principal was dropped: the account is gone at once, its data kept.
    assert_eq!(
        accounts_of(&cached.principal(user).await.unwrap().unwrap()),
        [20]
    );
    assert_eq!(
        accounts_of(&cached.principal(UserId::new(2)).await.unwrap().unwrap()),
        [20]
    );
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM account_members WHERE account_id = 10")
            .await,
        1
    );
    // A login (Chatwoot still lists the account) does not reinstall it.
    let (_, principal) = fx.login(&both, "t3", now()).await;
    assert_eq!(accounts_of(&principal), [20]);
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM accounts WHERE id = 10 AND uninstalled_at IS NOT NULL")
            .await,
        1
    );

    // A repeat of the id is a no-op, whatever it says.
    let repeat = event("e-1", InstallationChange::Installed, 10);
    assert_eq!(
        installations.apply(&system, &repeat).await.unwrap(),
        InstallationOutcome::Duplicate
    );
    assert_eq!(
        accounts_of(&fx.store.principal(user).await.unwrap().unwrap()),
        [20]
    );

    let install = event("e-2", InstallationChange::Installed, 10);
    assert_eq!(
        installations.apply(&system, &install).await.unwrap(),
        InstallationOutcome::Applied
    );
    assert_eq!(
        accounts_of(&cached.principal(user).await.unwrap().unwrap()),
        [10, 20]
    );

    // Audited in account 10 only, by the system, once per applied event.
    let audit = fx.audit(10).await;
    let actions: Vec<&str> = audit
        .iter()
        .filter(|e| e.action.starts_with("account."))
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(actions, ["account.installed", "account.uninstalled"]);
    let entry = audit
        .iter()
        .find(|e| e.action == "account.uninstalled")
        .unwrap();
    assert_eq!(entry.actor, AuditActor::System);
    assert_eq!(entry.target.as_deref(), Some("account:10"));
    assert_eq!(entry.metadata["event_id"], "e-1");
    assert_eq!(entry.metadata["delivery"], "delivery-7");
    assert_eq!(entry.request_id.as_deref(), Some("req-1"));
    assert!(
        fx.audit(20)
            .await
            .iter()
            .all(|e| !e.action.starts_with("account."))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn install_creates_an_unknown_account_and_keeps_a_known_name() {
    let fx = Fixture::new().await;
    let installations = PgAccountInstallations::new(fx.pool.clone());
    let system = PlatformScope::for_system_jobs();
    let mut named = event("n-1", InstallationChange::Installed, 30);
    named.account_name = "Acme".to_owned();
    installations.apply(&system, &named).await.unwrap();
    // A later event without a name keeps it.
    installations
        .apply(&system, &event("n-2", InstallationChange::Uninstalled, 30))
        .await
        .unwrap();
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM accounts WHERE id = 30 AND name = 'Acme' AND status = 'active' AND uninstalled_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        fx.count("SELECT count(*) AS n FROM platform_app_events WHERE account_id = 30")
            .await,
        2
    );
}
