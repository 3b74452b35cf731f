//! Per-test PostgreSQL databases cloned from a template migrated once per test process.
//!
//! The server is `TEST_DATABASE_URL` when set, else one throwaway cluster per process (see
//! `whatpro-pgcluster`). Nothing here keeps a pool or connection in a static: every test runs on
//! its own Tokio runtime and a connection dies with the runtime that opened it, so each operation
//! opens a short-lived connection of its own.

use std::fmt::Display;
use std::sync::OnceLock;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::sync::OnceCell;
use whatpro_db::{Pool, PoolSettings, build_pool, run_migrations};
use whatpro_pgcluster::LocalCluster;

/// Name prefix of per-test databases; the owner pid and a random suffix follow.
const TEST_PREFIX: &str = "whatpro_test_";
/// Name prefix of template databases; the owner pid and a random suffix follow.
const TEMPLATE_PREFIX: &str = "whatpro_tpl_";
/// Bound on connecting to the server and on single admin statements.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The server every test database lives on.
#[derive(Debug)]
struct Server {
    /// URL of the `postgres` database.
    admin_url: String,
    /// True for `TEST_DATABASE_URL`, false for the throwaway cluster.
    external: bool,
    /// Kept so the cluster's handle lives as long as the process.
    _cluster: Option<LocalCluster>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static TEMPLATE: OnceCell<Result<String, String>> = OnceCell::const_new();

/// A database for one test, cloned from the migrated template; dropped (`WITH (FORCE)`) when
/// the value is dropped.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDb {
    /// Clones a fresh database from the migrated template (migrating it first if this is the
    /// first database of the process). Panics with a clear message when anything fails.
    pub async fn new() -> TestDb {
        let server = server().await;
        let template = template(server).await;
        let sql_for = |name: &str| format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"");
        or_panic(
            create_database(server, &sql_for).await,
            "could not create a test database from the template",
        )
    }

    /// The connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name (`whatpro_test_<pid>_<random>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A fresh pool on this database (`PoolSettings::default()`); no connection is opened yet.
    pub fn pool(&self) -> Pool {
        or_panic(
            build_pool(&self.url, &PoolSettings::default()),
            "could not build a pool for the test database",
        )
    }

    /// The admin URL of the server (database `postgres`), for tests that need to create or
    /// terminate things.
    pub fn admin_url(&self) -> String {
        self.admin_url.clone()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Its own thread and runtime: this may run inside (or after) the test's runtime.
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(drop_database(&admin_url, &name))
        });
        match dropper.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(database = %self.name, %error, "could not drop the test database");
            }
            Err(_) => {
                tracing::warn!(database = %self.name, "dropping the test database panicked");
            }
        }
    }
}

/// A fresh, empty (unmigrated) database, for migration tests; also dropped on `Drop`.
pub async fn empty_database() -> TestDb {
    let server = server().await;
    let sql_for = |name: &str| format!("CREATE DATABASE \"{name}\" TEMPLATE template0");
    or_panic(
        create_database(server, &sql_for).await,
        "could not create an empty test database",
    )
}

/// The process-wide server, started (blocking, off the async threads) on first use.
async fn server() -> &'static Server {
    let server = match SERVER.get() {
        Some(server) => server,
        None => or_panic(
            tokio::task::spawn_blocking(|| SERVER.get_or_init(init_server)).await,
            "starting the test PostgreSQL server panicked",
        ),
    };
    match server {
        Ok(server) => server,
        Err(e) => panic!("testkit: {e}"),
    }
}

fn init_server() -> Result<Server, String> {
    if let Some(url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        return Ok(Server {
            admin_url: with_database(url.trim(), "postgres"),
            external: true,
            _cluster: None,
        });
    }
    let cluster = LocalCluster::start_throwaway().map_err(|e| {
        format!(
            "could not start a throwaway PostgreSQL cluster (set TEST_DATABASE_URL to use an existing server): {e}"
        )
    })?;
    Ok(Server {
        admin_url: cluster.url("postgres"),
        external: false,
        _cluster: Some(cluster),
    })
}

/// The name of the migrated template, created on first use in this process.
async fn template(server: &'static Server) -> &'static str {
    let template = TEMPLATE
        .get_or_init(|| async move { build_template(server).await })
        .await;
    match template {
        Ok(name) => name,
        Err(e) => panic!("testkit: could not prepare the migrated template database: {e}"),
    }
}

async fn build_template(server: &Server) -> Result<String, String> {
    if server.external {
        sweep_leftover_databases(&server.admin_url).await;
    }
    let name = unique_name(TEMPLATE_PREFIX);
    admin_execute(&server.admin_url, &format!("CREATE DATABASE \"{name}\"")).await?;
    let url = with_database(&server.admin_url, &name);

    // Migrate on a thread with its own multi-thread runtime (diesel's harness needs
    // `block_in_place`, whatever flavour the calling test uses); shutting that runtime down
    // closes every connection the migration opened.
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = migrate_in_own_runtime(&url);
        let _ = done_tx.send(result);
    });
    done_rx
        .await
        .map_err(|_| "the migration thread panicked".to_owned())??;

    wait_until_unused(&server.admin_url, &name).await?;
    tracing::info!(template = %name, "migrated the test template database");
    Ok(name)
}

fn migrate_in_own_runtime(url: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("could not build a runtime for migrations: {e}"))?;
    let result = runtime.block_on(async {
        let settings = PoolSettings {
            max_size: 1,
            ..PoolSettings::default()
        };
        let pool = build_pool(url, &settings).map_err(|e| e.to_string())?;
        let migrated = run_migrations(&pool)
            .await
            .map(drop)
            .map_err(|e| e.to_string());
        pool.close();
        migrated
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Waits until no session is connected to `database` (closed connections linger briefly on the
/// server), so it can serve as a template.
async fn wait_until_unused(admin_url: &str, database: &str) -> Result<(), String> {
    #[derive(QueryableByName)]
    struct Sessions {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = connect(admin_url).await?;
    for _ in 0..100 {
        let rows: Vec<Sessions> =
            diesel::sql_query("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1")
                .bind::<Text, _>(database)
                .load(&mut conn)
                .await
                .map_err(|e| format!("could not read pg_stat_activity: {e}"))?;
        if rows.iter().all(|r| r.n == 0) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("sessions on {database} did not go away"))
}

/// Creates a uniquely named database with the statement `sql_for(name)` builds, retrying while
/// the template is still being accessed.
async fn create_database(
    server: &Server,
    sql_for: &dyn Fn(&str) -> String,
) -> Result<TestDb, String> {
    const ATTEMPTS: u32 = 20;
    let name = unique_name(TEST_PREFIX);
    let sql = sql_for(&name);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match admin_execute(&server.admin_url, &sql).await {
            Ok(()) => break,
            Err(e) if attempt < ATTEMPTS && e.contains("is being accessed by other users") => {
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(TestDb {
        url: with_database(&server.admin_url, &name),
        admin_url: server.admin_url.clone(),
        name,
    })
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), String> {
    admin_execute(
        admin_url,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .await
}

/// Drops test and template databases left on an external server by processes of this host that
/// are gone.
async fn sweep_leftover_databases(admin_url: &str) {
    #[derive(QueryableByName)]
    struct Database {
        #[diesel(sql_type = Text)]
        datname: String,
    }
    let listed: Result<Vec<Database>, String> = async {
        let mut conn = connect(admin_url).await?;
        diesel::sql_query(
            r"SELECT datname::text AS datname FROM pg_database
               WHERE datname LIKE 'whatpro\_test\_%' OR datname LIKE 'whatpro\_tpl\_%'",
        )
        .load(&mut conn)
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    let databases = match listed {
        Ok(databases) => databases,
        Err(error) => {
            tracing::warn!(%error, "could not list leftover test databases");
            return;
        }
    };
    for db in databases {
        let Some(pid) = owner_pid(&db.datname) else {
            continue;
        };
        if pid == std::process::id() || pid_alive(pid) {
            continue;
        }
        match drop_database(admin_url, &db.datname).await {
            Ok(()) => tracing::info!(database = %db.datname, "dropped a leftover test database"),
            Err(error) => {
                tracing::warn!(database = %db.datname, %error, "could not drop a leftover test database");
            }
        }
    }
}

/// The owner pid in `whatpro_test_<pid>_<rand>` / `whatpro_tpl_<pid>_<rand>`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(TEST_PREFIX)
        .or_else(|| name.strip_prefix(TEMPLATE_PREFIX))?;
    let (pid, suffix) = rest.split_once('_')?;
    if suffix.is_empty() {
        return None;
    }
    pid.parse().ok()
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => true,
        Err(_) => false,
    }
}

/// `<prefix><pid>_<12 random hex digits>`.
fn unique_name(prefix: &str) -> String {
    let random: u64 = rand::random();
    format!(
        "{prefix}{}_{:012x}",
        std::process::id(),
        random & 0xffff_ffff_ffff
    )
}

/// Opens a short-lived connection, bounded by [`ADMIN_TIMEOUT`].
async fn connect(url: &str) -> Result<AsyncPgConnection, String> {
    match tokio::time::timeout(ADMIN_TIMEOUT, AsyncPgConnection::establish(url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(format!("could not connect to {url}: {e}")),
        Err(_) => Err(format!("connecting to {url} timed out")),
    }
}

/// Runs one statement on a fresh connection to `admin_url`.
async fn admin_execute(admin_url: &str, sql: &str) -> Result<(), String> {
    let mut conn = connect(admin_url).await?;
    match tokio::time::timeout(ADMIN_TIMEOUT, diesel::sql_query(sql).execute(&mut conn)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("`{sql}` failed: {e}")),
        Err(_) => Err(format!("`{sql}` timed out")),
    }
}

/// `url` with its database (path) replaced by `database`, keeping user, host and parameters.
fn with_database(url: &str, database: &str) -> String {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let query = url[authority_end..]
        .find('?')
        .map_or("", |i| &url[authority_end + i..]);
    format!("{}/{database}{query}", &url[..authority_end])
}

fn or_panic<T, E: Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(e) => panic!("testkit: {what}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/app?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgresql://h/app", "postgres"),
            "postgresql://h/postgres"
        );
        assert_eq!(
            with_database("postgres://h?application_name=t", "x"),
            "postgres://h/x?application_name=t"
        );
    }

    #[test]
    fn owner_pid_is_read_from_database_names() {
        assert_eq!(owner_pid("whatpro_test_123_abc"), Some(123));
        assert_eq!(owner_pid("whatpro_tpl_9_0f"), Some(9));
        assert_eq!(owner_pid("whatpro_test_123"), None);
        assert_eq!(owner_pid("whatpro_other_1_a"), None);
        assert!(
            unique_name(TEST_PREFIX).starts_with(&format!("whatpro_test_{}_", std::process::id()))
        );
    }
}
