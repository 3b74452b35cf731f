//! Test helpers: a throwaway Redis server and a TCP proxy that can make it "go away".
//!
//! `TestRedis::start()` uses `TEST_REDIS_URL` when set, else starts `redis-server` on a free
//! loopback port with persistence off and kills it when dropped. Tests sharing a server keep
//! apart by putting `unique_prefix(..)` in front of their keys.

use std::io::{Read, Write};
use std::net::{TcpListener as StdListener, TcpStream as StdStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// A Redis server for one test.
pub struct TestRedis {
    url: String,
    owned: Option<OwnedServer>,
}

struct OwnedServer {
    child: Child,
    dir: PathBuf,
}

impl TestRedis {
    /// `TEST_REDIS_URL` if set, else a fresh `redis-server` child process.
    pub fn start() -> Self {
        if let Ok(url) = std::env::var("TEST_REDIS_URL")
            && !url.trim().is_empty()
        {
            return Self {
                url: url.trim().to_owned(),
                owned: None,
            };
        }
        let mut last_error = String::new();
        for _ in 0..5 {
            match spawn_server() {
                Ok((url, owned)) => {
                    return Self {
                        url,
                        owned: Some(owned),
                    };
                }
                Err(error) => last_error = error,
            }
        }
        panic!("could not start a throwaway redis-server: {last_error}");
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if let Some(server) = &mut self.owned {
            let _ = server.child.kill();
            let _ = server.child.wait();
            let _ = std::fs::remove_dir_all(&server.dir);
        }
    }
}

fn spawn_server() -> Result<(String, OwnedServer), String> {
    let port = StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let dir = unique_dir(port)?;
    let log = dir.join("redis.log");
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match spawned {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "redis-server is not installed, so the Redis rate-limit tests cannot run. Install it \
                 (`apt-get install -y redis-server`) or point TEST_REDIS_URL at a server."
            );
        }
        Err(error) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!("spawning redis-server: {error}"));
        }
    };
    let mut server = OwnedServer { child, dir };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if ping(port) {
            return Ok((format!("redis://127.0.0.1:{port}/"), server));
        }
        let exited = server.child.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let _ = server.child.kill();
            let _ = server.child.wait();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_dir_all(&server.dir);
            return Err(format!("redis-server on port {port} did not start: {log}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = StdStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reply = [0_u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

fn unique_dir(port: u16) -> Result<PathBuf, String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "whatpro-ratelimit-redis-{}-{port}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// A key prefix no other test (or earlier run against the same server) uses.
pub fn unique_prefix(test: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("test:{test}:{}:{nanos}:", std::process::id())
}

/// A loopback TCP proxy in front of a Redis server, to simulate outages.
pub struct Proxy {
    url: String,
    stalled: Arc<AtomicBool>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    /// Proxies to the host and port of `redis_url` (`redis://[auth@]host:port[/db]`).
    pub async fn start(redis_url: &str) -> Self {
        let rest = redis_url
            .strip_prefix("redis://")
            .expect("the proxy handles redis:// URLs only");
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((auth, rest)) => (format!("{auth}@"), rest),
            None => (String::new(), rest),
        };
        let (target, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let target = target.to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{auth}{}{path}", listener.local_addr().unwrap());
        let stalled = Arc::new(AtomicBool::new(false));
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let (stalled, tasks) = (Arc::clone(&stalled), Arc::clone(&tasks));
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        continue;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let up = tokio::spawn(pump(client_read, server_write, Arc::clone(&stalled)));
                    let down = tokio::spawn(pump(server_read, client_write, Arc::clone(&stalled)));
                    let mut tasks = tasks.lock().unwrap_or_else(PoisonError::into_inner);
                    tasks.extend([up.abort_handle(), down.abort_handle()]);
                }
            })
        };
        tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(accept.abort_handle());
        Self {
            url,
            stalled,
            tasks,
        }
    }

    /// The URL that goes through the proxy.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Keeps connections open but forwards nothing more: calls hang until they time out.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Forwards again on new connections (stalled ones stay stuck).
    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// Closes the listening port and every connection: calls fail at once.
    pub fn cut(&self) {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for task in tasks.iter() {
            task.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, stalled: Arc<AtomicBool>) {
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
