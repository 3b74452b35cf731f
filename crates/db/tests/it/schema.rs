//! `schema.rs` matches the migrated database.

use crate::support::Fixture;

#[tokio::test(flavor = "multi_thread")]
async fn schema_rs_matches_the_migrated_database() {
    let fx = Fixture::new().await;
    let mut conn = fx.pool.get().await.unwrap();
    let problems = whatpro_db::schema_mismatches(&mut conn).await.unwrap();
    assert!(
        problems.is_empty(),
        "schema.rs is out of sync with migrations/:\n{}",
        problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drift_is_reported() {
    let fx = Fixture::new().await;
    let mut conn = fx.pool.get().await.unwrap();
    use diesel_async::RunQueryDsl;
    diesel::sql_query("ALTER TABLE users ADD COLUMN nickname TEXT")
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query("ALTER TABLE sessions ALTER COLUMN user_agent SET NOT NULL")
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query("ALTER TABLE accounts ALTER COLUMN name TYPE VARCHAR(100)")
        .execute(&mut conn)
        .await
        .unwrap();
    diesel::sql_query("CREATE TABLE stray (id INT)")
        .execute(&mut conn)
        .await
        .unwrap();
    let problems = whatpro_db::schema_mismatches(&mut conn).await.unwrap();
    let text = problems.join("\n");
    assert_eq!(problems.len(), 4, "{text}");
    assert!(text.contains("users.nickname"), "{text}");
    assert!(text.contains("sessions.user_agent"), "{text}");
    assert!(text.contains("accounts.name"), "{text}");
    assert!(text.contains("`stray`"), "{text}");
}
