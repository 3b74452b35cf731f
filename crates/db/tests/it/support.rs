//! Fixtures shared by the tests.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use whatpro_db::{PgAuditLog, PgIdentityStore, PgMemberRepository, Pool};
use whatpro_iam::{
    AccountStatus, AuditContext, ChatwootMembership, ChatwootProfile, ChatwootRole, DeviceInfo,
    IdentityStore, LoginRecord, NewRefreshToken, Principal, RefreshRotation, Role, SessionId,
    TenantScope,
};
use whatpro_kernel::{AccountId, Limit, UserId};
use whatpro_tenancy::{AuditEntry, AuditLog, AuditQuery};
use whatpro_testkit::TestDb;

/// A migrated database with a pool and the identity store on it.
pub struct Fixture {
    pub db: TestDb,
    pub pool: Pool,
    pub store: PgIdentityStore,
}

impl Fixture {
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        let pool = db.pool();
        let store = PgIdentityStore::new(pool.clone());
        Self { db, pool, store }
    }

    pub fn members(&self) -> PgMemberRepository {
        PgMemberRepository::new(self.pool.clone())
    }

    /// Every audit row of `account` (newest first), read through the adapter.
    pub async fn audit(&self, account: i64) -> Vec<AuditEntry> {
        let scope = admin_scope(account, 0);
        let query = AuditQuery {
            action: None,
            limit: Limit::clamped(Some(200)),
            before: None,
        };
        PgAuditLog::new(self.pool.clone())
            .list(&scope, &query)
            .await
            .unwrap()
            .0
    }

    /// Number of rows of a `SELECT count(*) AS n ...`.
    pub async fn count(&self, sql: &str) -> i64 {
        count(&self.pool, sql).await
    }

    /// Logs `profile` in with a fresh session whose first refresh token hashes to `token`.
    pub async fn login(
        &self,
        profile: &ChatwootProfile,
        token: &str,
        now: OffsetDateTime,
    ) -> (SessionId, Principal) {
        let record = login_record(profile, token, now);
        let principal = self.store.record_login(&record).await.unwrap();
        (record.session_id, principal)
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

pub async fn count(pool: &Pool, sql: &str) -> i64 {
    let mut conn = pool.get().await.unwrap();
    let rows: Vec<Count> = diesel::sql_query(sql).load(&mut conn).await.unwrap();
    rows.iter().map(|r| r.n).sum()
}

/// Now, at PostgreSQL's precision (microseconds), so round trips compare equal.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap()
}

pub fn admin_scope(account: i64, user: i64) -> TenantScope {
    TenantScope::for_tests(AccountId::new(account), UserId::new(user), Role::Admin)
}

pub fn membership(account: i64, role: ChatwootRole, status: AccountStatus) -> ChatwootMembership {
    ChatwootMembership {
        account_id: AccountId::new(account),
        account_name: format!("Account {account}"),
        status,
        role,
    }
}

pub fn profile(user: i64, accounts: &[(i64, ChatwootRole)]) -> ChatwootProfile {
    profile_with(
        user,
        accounts
            .iter()
            .map(|(a, r)| membership(*a, *r, AccountStatus::Active))
            .collect(),
    )
}

pub fn profile_with(user: i64, accounts: Vec<ChatwootMembership>) -> ChatwootProfile {
    ChatwootProfile {
        user_id: UserId::new(user),
        email: format!("user{user}@example.com"),
        name: format!("User {user}"),
        accounts,
    }
}

/// A stand-in for the SHA-256 of a refresh token (the store treats hashes as opaque bytes).
pub fn hash(token: &str) -> Vec<u8> {
    format!("hash:{token}").into_bytes()
}

pub fn audit_context() -> AuditContext {
    AuditContext {
        request_id: "req-test".to_owned(),
        ip: Some("203.0.113.9".to_owned()),
    }
}

pub fn login_record(profile: &ChatwootProfile, token: &str, now: OffsetDateTime) -> LoginRecord {
    let absolute = now + Duration::days(30);
    let idle = now + Duration::days(7);
    LoginRecord {
        profile: profile.clone(),
        super_admin: false,
        session_id: SessionId::from_uuid(Uuid::now_v7()),
        device: DeviceInfo {
            user_agent: Some("test-agent/1.0".to_owned()),
            ip: Some("203.0.113.9".to_owned()),
        },
        refresh: NewRefreshToken {
            hash: hash(token),
            expires_at: idle,
        },
        sealed_credential: Some("sealed-secret-credential".to_owned()),
        now,
        idle_expires_at: idle,
        absolute_expires_at: absolute,
        audit: audit_context(),
    }
}

pub fn rotation(presented: &str, successor: &str, now: OffsetDateTime) -> RefreshRotation {
    let idle = now + Duration::days(7);
    RefreshRotation {
        presented_hash: hash(presented),
        successor: NewRefreshToken {
            hash: hash(successor),
            expires_at: idle,
        },
        now,
        grace: Duration::seconds(5),
        idle_expires_at: idle,
        audit: audit_context(),
    }
}

/// `(account, role)` pairs of a principal.
pub fn roles(principal: &Principal) -> Vec<(i64, Role)> {
    principal
        .memberships
        .iter()
        .map(|m| (m.account_id.get(), m.role))
        .collect()
}
