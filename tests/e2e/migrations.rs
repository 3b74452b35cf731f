//! Every migration is reversible: up, down, up gives the same schema, and down leaves
//! nothing behind.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use whatpro_testkit::empty_database;

#[tokio::test(flavor = "multi_thread")]
async fn migrations_apply_up_down_and_up_again_to_the_same_schema() {
    let db = empty_database().await;
    let pool = db.pool();
    let dump = || async {
        let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
        whatpro_db::dump_schema(&mut conn).await.unwrap()
    };
    let empty = dump().await;

    let applied = whatpro_db::run_migrations(&pool).await.unwrap();
    assert!(!applied.is_empty(), "there are migrations to apply");
    let first = dump().await;
    assert_ne!(first, empty, "migrations changed nothing");

    let reverted = whatpro_db::revert_all_migrations(&pool).await.unwrap();
    assert_eq!(reverted.len(), applied.len());
    let after_down = dump().await;
    assert_eq!(after_down, empty, "down migrations left objects behind");

    let reapplied = whatpro_db::run_migrations(&pool).await.unwrap();
    assert_eq!(reapplied, applied);
    let second = dump().await;
    assert_eq!(second, first, "schema differs after up, down, up");

    assert!(
        whatpro_db::run_migrations(&pool).await.unwrap().is_empty(),
        "re-running applies nothing"
    );
}
