#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected errors"
)]
//! The in-process limiter.

use std::time::Duration;

use whatpro_ratelimit::{Decision, LocalLimiter, Quota, RateLimiter};

async fn allowed_count(limiter: &dyn RateLimiter, key: &str, quota: Quota, tries: u32) -> u32 {
    let mut allowed = 0;
    for _ in 0..tries {
        if limiter.check(key, quota).await.is_allowed() {
            allowed += 1;
        }
    }
    allowed
}

#[tokio::test]
async fn ten_per_minute_allows_exactly_ten_then_limits() {
    let limiter = LocalLimiter::new();
    let quota = Quota::per_minute(10);
    for expected_remaining in (0..10).rev() {
        assert_eq!(
            limiter.check("sso:ip:203.0.113.9", quota).await,
            Decision::Allowed {
                remaining: expected_remaining
            }
        );
    }
    for _ in 0..5 {
        let decision = limiter.check("sso:ip:203.0.113.9", quota).await;
        let Decision::Limited { retry_after } = decision else {
            panic!("expected a limit, got {decision:?}");
        };
        assert!(retry_after > Duration::ZERO, "{retry_after:?}");
        assert!(retry_after <= Duration::from_secs(60), "{retry_after:?}");
        let secs = decision.retry_after_secs().unwrap();
        assert!((1..=60).contains(&secs), "{secs}");
    }
}

#[tokio::test]
async fn keys_are_independent() {
    let limiter = LocalLimiter::new();
    let quota = Quota::per_minute(3);
    assert_eq!(allowed_count(&limiter, "sso:ip:a", quota, 5).await, 3);
    assert_eq!(allowed_count(&limiter, "sso:ip:b", quota, 5).await, 3);
    assert!(!limiter.check("sso:ip:a", quota).await.is_allowed());
}

#[tokio::test]
async fn different_quotas_on_the_same_key_are_independent() {
    let limiter = LocalLimiter::new();
    assert_eq!(
        allowed_count(&limiter, "k", Quota::per_minute(2), 5).await,
        2
    );
    assert_eq!(
        allowed_count(&limiter, "k", Quota::per_minute(4), 6).await,
        4
    );
    assert_eq!(
        allowed_count(&limiter, "k", Quota::per_second(3), 5).await,
        3
    );
}

#[tokio::test]
async fn a_per_second_quota_refills_after_waiting() {
    let limiter = LocalLimiter::new();
    let quota = Quota::per_second(2);
    assert_eq!(allowed_count(&limiter, "k", quota, 4).await, 2);
    let Decision::Limited { retry_after } = limiter.check("k", quota).await else {
        panic!("expected a limit");
    };
    assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}");
    assert_eq!(
        Decision::Limited { retry_after }.retry_after_secs(),
        Some(1)
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(allowed_count(&limiter, "k", quota, 4).await, 2);
}

#[tokio::test]
async fn refilled_keys_are_forgotten() {
    let limiter = LocalLimiter::new();
    let quota = Quota::per_second(5);
    for i in 0..100 {
        limiter.check(&format!("user:{i}"), quota).await;
    }
    assert_eq!(limiter.tracked_keys(), 100);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    limiter.retain_recent();
    assert_eq!(limiter.tracked_keys(), 0);
    assert_eq!(
        limiter.check("user:1", quota).await,
        Decision::Allowed { remaining: 4 }
    );
}

#[tokio::test]
async fn zero_limit_limits_everything() {
    let limiter = LocalLimiter::new();
    let decision = limiter.check("k", Quota::per_minute(0)).await;
    assert_eq!(decision.retry_after_secs(), Some(60));
}
