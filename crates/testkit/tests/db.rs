//! The per-test database harness against a real server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions"
)]

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use whatpro_testkit::{TestDb, empty_database};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

async fn count(url: &str, sql: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let rows: Vec<Count> = diesel::sql_query(sql).load(&mut conn).await.unwrap();
    rows.iter().map(|r| r.n).sum()
}

async fn database_exists(admin_url: &str, name: &str) -> bool {
    count(
        admin_url,
        &format!("SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"),
    )
    .await
        > 0
}

#[tokio::test(flavor = "multi_thread")]
async fn two_test_dbs_are_different_databases() {
    let a = TestDb::new().await;
    let b = TestDb::new().await;
    assert_ne!(a.name(), b.name());
    assert_ne!(a.url(), b.url());
    assert!(a.url().ends_with(&format!("/{}", a.name())));

    let mut conn = a.pool().get().await.unwrap();
    let current: Vec<Name> = diesel::sql_query("SELECT current_database()::text AS name")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(current[0].name, a.name());
    diesel::sql_query("CREATE TABLE only_in_a (id int)")
        .execute(&mut conn)
        .await
        .unwrap();

    let in_b = count(
        b.url(),
        "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'only_in_a'",
    )
    .await;
    assert_eq!(in_b, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn test_dbs_come_from_the_migrated_template() {
    let db = TestDb::new().await;
    let applied = count(
        db.url(),
        "SELECT count(*) AS n FROM __diesel_schema_migrations",
    )
    .await;
    assert!(applied > 0, "no migrations recorded");
    let pending = whatpro_db::run_migrations(&db.pool()).await.unwrap();
    assert!(
        pending.is_empty(),
        "the clone had pending migrations: {pending:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_test_db_no_longer_exists() {
    let db = TestDb::new().await;
    let name = db.name().to_owned();
    let admin_url = db.admin_url();
    assert!(admin_url.ends_with("/postgres"));
    // An open connection does not keep it alive.
    let pool = db.pool();
    let _conn = pool.get().await.unwrap();
    assert!(database_exists(&admin_url, &name).await);

    drop(db);
    assert!(!database_exists(&admin_url, &name).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_database_has_no_migrations() {
    let db = empty_database().await;
    let tables = count(
        db.url(),
        "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'",
    )
    .await;
    assert_eq!(tables, 0);
    let name = db.name().to_owned();
    let admin_url = db.admin_url();
    drop(db);
    assert!(!database_exists(&admin_url, &name).await);
}

#[tokio::test]
async fn works_on_a_current_thread_runtime_too() {
    let db = TestDb::new().await;
    let applied = count(
        db.url(),
        "SELECT count(*) AS n FROM __diesel_schema_migrations",
    )
    .await;
    assert!(applied > 0);
}
