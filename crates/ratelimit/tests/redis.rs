#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected errors"
)]
//! The Redis-shared limiter, against a real Redis (`TEST_REDIS_URL`, else a throwaway
//! `redis-server`).

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{Proxy, TestRedis, unique_prefix};
use whatpro_ratelimit::{Decision, Quota, RateLimiter, RedisLimiter};

/// A generous timeout so a loaded machine does not push counting tests onto the local fallback.
const PATIENT: Duration = Duration::from_secs(5);

async fn limiter(url: &str) -> RedisLimiter {
    RedisLimiter::connect_with_timeout(url, PATIENT)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_instances_share_one_counter() {
    let redis = TestRedis::start();
    let key = format!("{}sso:ip:203.0.113.9", unique_prefix("shared"));
    let (a, b) = (limiter(redis.url()).await, limiter(redis.url()).await);
    let quota = Quota::per_minute(10);

    assert_eq!(
        a.check(&key, quota).await,
        Decision::Allowed { remaining: 9 }
    );
    assert_eq!(
        b.check(&key, quota).await,
        Decision::Allowed { remaining: 8 }
    );
    let mut allowed = 2;
    for i in 0..20 {
        let instance = if i % 2 == 0 { &a } else { &b };
        if instance.check(&key, quota).await.is_allowed() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 10);

    let other_key = format!("{}sso:ip:198.51.100.1", unique_prefix("shared"));
    assert!(a.check(&other_key, quota).await.is_allowed());
    assert_eq!(
        b.check(&key, Quota::per_minute(11)).await,
        Decision::Allowed { remaining: 10 },
        "another quota on the same key counts apart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_checks_at_a_limit_of_ten_allow_exactly_ten() {
    let redis = TestRedis::start();
    let key = format!("{}refresh:session:1", unique_prefix("concurrent"));
    let limiter = Arc::new(limiter(redis.url()).await);
    let quota = Quota::per_minute(10);

    let checks = (0..50).map(|_| {
        let (limiter, key) = (Arc::clone(&limiter), key.clone());
        tokio::spawn(async move { limiter.check(&key, quota).await })
    });
    let decisions = futures_util::future::join_all(checks).await;
    let decisions: Vec<Decision> = decisions.into_iter().map(Result::unwrap).collect();

    assert_eq!(decisions.iter().filter(|d| d.is_allowed()).count(), 10);
    let mut remaining: Vec<u32> = decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Allowed { remaining } => Some(*remaining),
            Decision::Limited { .. } => None,
        })
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, (0..10).collect::<Vec<_>>());
    for decision in decisions.iter().filter(|d| !d.is_allowed()) {
        let secs = decision.retry_after_secs().unwrap();
        assert!((1..=60).contains(&secs), "{decision:?}");
    }
}

#[tokio::test]
async fn retry_after_comes_from_the_window() {
    let redis = TestRedis::start();
    let key = format!("{}user:7", unique_prefix("window"));
    let limiter = limiter(redis.url()).await;
    let quota = Quota::new(1, Duration::from_secs(3));

    assert_eq!(
        limiter.check(&key, quota).await,
        Decision::Allowed { remaining: 0 }
    );
    let Decision::Limited { retry_after: first } = limiter.check(&key, quota).await else {
        panic!("expected a limit");
    };
    assert!(
        first > Duration::from_secs(2) && first <= Duration::from_secs(3),
        "{first:?}"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let Decision::Limited { retry_after: later } = limiter.check(&key, quota).await else {
        panic!("expected a limit");
    };
    assert!(
        later < first,
        "the window shrinks: {first:?} then {later:?}"
    );
    assert!(later <= Duration::from_secs(2), "{later:?}");

    tokio::time::sleep(later + Duration::from_millis(100)).await;
    assert_eq!(
        limiter.check(&key, quota).await,
        Decision::Allowed { remaining: 0 },
        "a new window starts once the old one has expired"
    );
}

#[tokio::test]
async fn fails_open_to_the_local_limiter_when_redis_goes_away() {
    let redis = TestRedis::start();
    let proxy = Proxy::start(redis.url()).await;
    let key = format!("{}sso:ip:192.0.2.1", unique_prefix("fail-open"));
    let limiter = RedisLimiter::connect_with_timeout(proxy.url(), Duration::from_secs(1))
        .await
        .unwrap();
    let quota = Quota::per_minute(3);

    for remaining in [2, 1, 0] {
        assert_eq!(
            limiter.check(&key, quota).await,
            Decision::Allowed { remaining }
        );
    }
    assert!(!limiter.check(&key, quota).await.is_allowed());

    proxy.cut();

    // The local limiter starts fresh and still enforces the quota, and no check hangs.
    let mut decisions = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        decisions.push(limiter.check(&key, quota).await);
        assert!(started.elapsed() < Duration::from_secs(3), "a check hung");
    }
    let allowed = decisions.iter().filter(|d| d.is_allowed()).count();
    assert_eq!(allowed, 3, "{decisions:?}");
    assert!(!decisions[4].is_allowed(), "{decisions:?}");
}

#[tokio::test]
async fn fails_open_after_the_timeout_when_redis_hangs_and_comes_back() {
    let redis = TestRedis::start();
    let proxy = Proxy::start(redis.url()).await;
    let key = format!("{}api_key:abc", unique_prefix("stall"));
    let limiter = RedisLimiter::connect(proxy.url()).await.unwrap();
    let quota = Quota::per_minute(600);
    assert!(limiter.check(&key, quota).await.is_allowed());

    proxy.stall();

    let started = Instant::now();
    assert!(limiter.check(&key, quota).await.is_allowed());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "gave up after the 200 ms timeout, took {:?}",
        started.elapsed()
    );

    let started = Instant::now();
    for _ in 0..10 {
        assert!(limiter.check(&key, quota).await.is_allowed());
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "Redis is skipped while cooling down, took {:?}",
        started.elapsed()
    );

    // Once Redis answers again, the limiter counts there again (its counter is at 1; the local
    // one has counted 11 events).
    proxy.resume();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match limiter.check(&key, quota).await {
            Decision::Allowed { remaining } if remaining >= 590 => break,
            Decision::Allowed { .. } => {}
            limited @ Decision::Limited { .. } => panic!("unexpected {limited:?}"),
        }
        assert!(Instant::now() < deadline, "never went back to Redis");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn connect_fails_cleanly_when_nothing_listens() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let result = RedisLimiter::connect(&format!("redis://127.0.0.1:{port}/")).await;
    assert!(result.is_err());
}
