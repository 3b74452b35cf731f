//! The guarded reqwest client against real sockets on 127.0.0.1 (no other address is ever
//! contacted: names are mapped with static hosts or `/etc/hosts`).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::error::Error as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::dns::Resolve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use whatpro_netguard::{
    GuardedResolver, MAX_REDIRECTS, ResolveRefused, guarded_client_builder,
    guarded_client_builder_with,
};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A one-line HTTP/1.1 server on 127.0.0.1 that answers every request with `answer(port)`
/// and counts the requests it read.
struct RawServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl RawServer {
    async fn start(answer: impl Fn(u16) -> String + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                let answer = Arc::clone(&answer);
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.write_all(answer(addr.port()).as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        RawServer { addr, hits }
    }

    async fn ok() -> RawServer {
        Self::start(|_| {
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok".to_owned()
        })
        .await
    }

    async fn redirecting_to(location: String) -> RawServer {
        Self::start(move |_| {
            format!(
                "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\n\
                 connection: close\r\n\r\n"
            )
        })
        .await
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn refusal(error: &reqwest::Error) -> Option<&ResolveRefused> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<ResolveRefused>() {
            return Some(refused);
        }
        source = cause.source();
    }
    None
}

#[tokio::test]
async fn refuses_to_connect_to_localhost() {
    let server = RawServer::ok().await;
    let client = guarded_client_builder(false).build().unwrap();
    let error = client
        .get(format!("http://localhost:{}/", server.port()))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    assert_eq!(refusal(&error).unwrap().host(), "localhost");
    assert_eq!(server.hits(), 0);

    let open = guarded_client_builder(true).build().unwrap();
    let answer = open
        .get(format!("http://localhost:{}/", server.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn refuses_a_public_looking_name_that_resolves_to_loopback() {
    // What DNS rebinding looks like at connection time: a name that passed the check when
    // stored now answers 127.0.0.1.
    let server = RawServer::ok().await;
    let resolver =
        |allow| GuardedResolver::new(allow).with_static_host("evo.cliente.com.br", [LOOPBACK]);
    let url = format!("http://evo.cliente.com.br:{}/", server.port());

    let client = guarded_client_builder_with(resolver(false))
        .build()
        .unwrap();
    let error = client.get(&url).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    let refused = refusal(&error).unwrap();
    assert_eq!(
        refused.to_string(),
        "evo.cliente.com.br resolves to no allowed address"
    );
    assert_eq!(server.hits(), 0);

    let open = guarded_client_builder_with(resolver(true)).build().unwrap();
    assert_eq!(open.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn the_resolver_drops_forbidden_addresses_and_keeps_public_ones() {
    // Only resolves: nothing is connected to.
    let resolver = GuardedResolver::new(false).with_static_host(
        "mixed.example.com",
        [
            LOOPBACK,
            "10.0.0.1".parse().unwrap(),
            "8.8.8.8".parse().unwrap(),
            "::ffff:127.0.0.1".parse().unwrap(),
            "2606:4700:4700::1111".parse().unwrap(),
        ],
    );
    let addrs: Vec<IpAddr> = resolver
        .resolve("mixed.example.com".parse().unwrap())
        .await
        .unwrap()
        .map(|a| a.ip())
        .collect();
    assert_eq!(
        addrs,
        vec![
            "8.8.8.8".parse::<IpAddr>().unwrap(),
            "2606:4700:4700::1111".parse().unwrap()
        ]
    );
    let metadata = GuardedResolver::new(true)
        .resolve("metadata.google.internal".parse().unwrap())
        .await;
    assert!(metadata.is_err());
}

#[tokio::test]
async fn a_redirect_to_a_loopback_literal_is_refused() {
    // The first hop uses an IP literal: reqwest never passes literals to a resolver, which is
    // exactly why the redirect policy checks literal targets itself. (UrlGuard::check would
    // refuse this first URL; here it stands in for a public server.)
    let target = RawServer::ok().await;
    let origin =
        RawServer::redirecting_to(format!("http://127.0.0.1:{}/secret", target.port())).await;
    let url = format!("http://127.0.0.1:{}/", origin.port());

    let client = guarded_client_builder(false).build().unwrap();
    let error = client.get(&url).send().await.unwrap_err();
    assert!(error.is_redirect(), "{error:?}");
    assert_eq!(origin.hits(), 1);
    assert_eq!(target.hits(), 0);

    let open = guarded_client_builder(true).build().unwrap();
    assert_eq!(open.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(target.hits(), 1);
}

#[tokio::test]
async fn a_redirect_to_a_name_resolving_to_loopback_is_refused_at_connect() {
    let target = RawServer::ok().await;
    let origin = RawServer::redirecting_to(format!(
        "http://internal-looking.example.com:{}/",
        target.port()
    ))
    .await;
    let resolver =
        GuardedResolver::new(false).with_static_host("internal-looking.example.com", [LOOPBACK]);
    let client = guarded_client_builder_with(resolver).build().unwrap();
    let error = client
        .get(format!("http://127.0.0.1:{}/", origin.port()))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    assert!(refusal(&error).is_some());
    assert_eq!(origin.hits(), 1);
    assert_eq!(target.hits(), 0);
}

#[tokio::test]
async fn redirects_to_other_schemes_and_long_chains_are_refused() {
    let ftp = RawServer::redirecting_to("ftp://127.0.0.1/".to_owned()).await;
    let client = guarded_client_builder(true).build().unwrap();
    let error = client
        .get(format!("http://127.0.0.1:{}/", ftp.port()))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_redirect(), "{error:?}");

    let looping = RawServer::start(|port| {
        format!(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:{port}/again\r\n\
             content-length: 0\r\nconnection: close\r\n\r\n"
        )
    })
    .await;
    let error = client
        .get(format!("http://127.0.0.1:{}/", looping.port()))
        .send()
        .await
        .unwrap_err();
    assert!(error.is_redirect(), "{error:?}");
    assert_eq!(looping.hits(), MAX_REDIRECTS + 1);
}
