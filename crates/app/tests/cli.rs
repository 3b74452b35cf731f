//! The `whatpro-hub` binary as an operator runs it: configuration errors, graceful shutdown on
//! SIGTERM, and OpenTelemetry export to an OTLP receiver.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed step must fail the test loudly"
)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use whatpro_testkit::TestDb;

const BIN: &str = env!("CARGO_BIN_EXE_whatpro-hub");

/// A command with a clean environment: only what the test sets reaches the Hub.
fn hub(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.current_dir(std::env::temp_dir());
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn missing_or_malformed_configuration_stops_start_up_with_one_line_naming_the_variable() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "DATABASE_URL"),
        (
            &[("DATABASE_URL", "postgres://u@127.0.0.1:1/db")],
            "CHATWOOT_URL",
        ),
        (
            &[
                ("DATABASE_URL", "mysql://u@h/db"),
                ("CHATWOOT_URL", "http://cw.local"),
            ],
            "DATABASE_URL",
        ),
        (
            &[
                ("DATABASE_URL", "postgres://u@127.0.0.1:1/db"),
                ("CHATWOOT_URL", "http://cw.local"),
                ("HUB_BIND", "nowhere"),
            ],
            "HUB_BIND",
        ),
        (
            &[
                ("DATABASE_URL", "postgres://u@127.0.0.1:1/db"),
                ("CHATWOOT_URL", "http://cw.local"),
                ("HUB_TOKEN_KEYS", "k4.local.xyz"),
            ],
            "HUB_TOKEN_KEYS",
        ),
        (
            &[
                ("DATABASE_URL", "postgres://u@127.0.0.1:1/db"),
                ("CHATWOOT_URL", "http://cw.local"),
                ("HUB_LOG_FORMAT", "yaml"),
            ],
            "HUB_LOG_FORMAT",
        ),
    ];
    for (vars, blamed) in cases {
        let mut cmd = hub(&["serve"]);
        for (k, v) in *vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{vars:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "exactly one line expected, got {stderr:?}");
        assert!(
            lines[0].starts_with(&format!("configuration error: {blamed}: ")),
            "{vars:?} -> {stderr:?}"
        );
    }
}

#[test]
fn unknown_keys_in_whatpro_toml_are_refused() {
    let dir = std::env::temp_dir().join(format!("whatpro-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("whatpro.toml");
    std::fs::write(
        &file,
        "HUB_BIND = \"127.0.0.1:1\"\nCHATWOOT_ULR = \"typo\"\n",
    )
    .unwrap();
    let out = hub(&["serve"])
        .env("WHATPRO_CONFIG", &file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("unknown key `CHATWOOT_ULR`"), "{stderr}");
}

/// A running `whatpro-hub serve` with its output collected.
struct Server {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
}

impl Server {
    fn start(db: &TestDb, extra: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut cmd = hub(&["serve"]);
        cmd.env("DATABASE_URL", db.url())
            .env("CHATWOOT_URL", "http://127.0.0.1:9")
            .env("HUB_BIND", format!("127.0.0.1:{port}"))
            .env("HUB_WORKERS", "1")
            .env(
                "HUB_TOKEN_KEYS",
                whatpro_crypto::KeyRing::generate()
                    .unwrap()
                    .to_paserk_list(),
            )
            .env(
                "HUB_DATA_KEYS",
                whatpro_crypto::KeyRing::generate()
                    .unwrap()
                    .to_paserk_list(),
            )
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut text = sink.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            });
        }
        let server = Self {
            child,
            port,
            output,
        };
        server.wait_until_serving();
        server
    }

    fn wait_until_serving(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if http_get(self.port, "/healthz").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("server did not come up:\n{}", self.output.lock().unwrap());
    }

    fn terminate(mut self) -> (Option<i32>, String) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(200));
                return (status.code(), self.output.lock().unwrap().clone());
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking `GET` over a fresh connection; the raw response text.
fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_migrates_logs_json_with_request_id_and_exits_0_on_sigterm() {
    let db = TestDb::new().await;
    let server = Server::start(&db, &[]);
    let port = server.port;
    let response = tokio::task::spawn_blocking(move || http_get(port, "/readyz"))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let (code, output) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("shutting down"), "{output}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still open"
    );

    // The access log is JSON with the fields operators rely on.
    let access = output
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"] == "http.access" && v["route"] == "/readyz")
        .unwrap_or_else(|| panic!("no JSON access log line for /readyz in:\n{output}"));
    assert_eq!(access["method"], "GET");
    assert_eq!(access["status"], 200);
    assert!(access["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(access["latency_ms"].is_number());
}

/// A minimal OTLP/HTTP receiver: records the path and body of every POST.
async fn otlp_receiver() -> (u16, Arc<Mutex<Vec<(String, Vec<u8>)>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&received);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(split) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..split]).to_string();
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() < split + 4 + length {
                        continue;
                    }
                    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    let body = buf[split + 4..split + 4 + length].to_vec();
                    buf.drain(..split + 4 + length);
                    sink.lock().unwrap().push((path, body));
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    (port, received)
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_are_exported_to_the_otlp_endpoint() {
    let (otlp_port, received) = otlp_receiver().await;
    let db = TestDb::new().await;
    let server = Server::start(
        &db,
        &[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp_port}"),
        )],
    );
    let port = server.port;
    tokio::task::spawn_blocking(move || {
        // A caller's trace context is continued: our span joins trace 4bf9...
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET /healthz HTTP/1.1\r\nHost: x\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"));
    })
    .await
    .unwrap();
    // Shutdown flushes the batch exporter.
    let (code, output) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{output}");

    let posts = received.lock().unwrap().clone();
    let traces: Vec<&Vec<u8>> = posts
        .iter()
        .filter(|(p, _)| p == "/v1/traces")
        .map(|(_, b)| b)
        .collect();
    assert!(
        !traces.is_empty(),
        "no POST /v1/traces arrived; got {:?}",
        posts.iter().map(|p| &p.0).collect::<Vec<_>>()
    );
    let all: Vec<u8> = traces.into_iter().flatten().copied().collect();
    let contains = |needle: &[u8]| all.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(b"GET /healthz"),
        "the request span is not in the export"
    );
    assert!(
        contains(b"whatpro-hub"),
        "service.name is not in the export"
    );
    let trace_id: Vec<u8> = (0..16)
        .map(|i| {
            u8::from_str_radix(&"4bf92f3577b34da6a3ce929d0e0e4736"[i * 2..i * 2 + 2], 16).unwrap()
        })
        .collect();
    assert!(
        contains(&trace_id),
        "the incoming traceparent was not continued"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_requests_finish() {
    use whatpro_chatwoot_sim::{ChatwootSim, Fault};
    let sim = ChatwootSim::start(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let seed = sim.seed_demo();
    let db = TestDb::new().await;
    let keys = whatpro_crypto::KeyRing::generate()
        .unwrap()
        .to_paserk_list();
    let server = Server::start(
        &db,
        &[
            ("CHATWOOT_URL", sim.url()),
            ("HUB_TOKEN_KEYS", keys.clone()),
            ("HUB_DATA_KEYS", keys),
        ],
    );
    // Chatwoot answers slowly, so the sign-in is still running when SIGTERM arrives.
    sim.set_fault(Some(Fault::Delay(Duration::from_millis(1500))));
    let port = server.port;
    let token = seed.admin.access_token.clone();
    let request = std::thread::spawn(move || {
        use std::io::Write;
        let body = format!(r#"{{"chatwoot_access_token":"{token}","token_delivery":"body"}}"#);
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "POST /api/v1/auth/sso HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (code, output) = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let response = request.join().unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "in-flight request was cut: {response:?}\n{output}"
    );
    assert!(response.contains("access_token"));
    assert_eq!(code, Some(0), "{output}");
}
