#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected errors"
)]
//! `ChatwootIdentity` against the fake Chatwoot (`whatpro-chatwoot-sim`).

use std::time::{Duration, Instant};

use url::Url;
use whatpro_chatwoot::{ChatwootClient, ChatwootError, ClientSettings};
use whatpro_chatwoot_sim::{ChatwootSim, DemoSeed, DeviseSession, Fault};
use whatpro_iam::{
    AccountStatus, ChatwootCredential, ChatwootIdentity, ChatwootMembership, ChatwootRole,
    IdentityError,
};
use whatpro_kernel::{AccountId, UserId};

async fn sim() -> (ChatwootSim, DemoSeed) {
    let sim = ChatwootSim::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let seed = sim.seed_demo();
    (sim, seed)
}

fn client_for(base: &str, settings: ClientSettings) -> ChatwootClient {
    ChatwootClient::new(Url::parse(base).unwrap(), settings).unwrap()
}

fn client(sim: &ChatwootSim) -> ChatwootClient {
    client_for(&sim.url(), ClientSettings::default())
}

fn token(t: &str) -> ChatwootCredential {
    ChatwootCredential::AccessToken(t.to_owned())
}

fn session(s: &DeviseSession) -> ChatwootCredential {
    ChatwootCredential::Session {
        access_token: s.access_token.clone(),
        client: s.client.clone(),
        uid: s.uid.clone(),
    }
}

fn demo_admin_accounts() -> Vec<ChatwootMembership> {
    vec![
        ChatwootMembership {
            account_id: AccountId::new(1),
            account_name: "WhatPro Demo".to_owned(),
            status: AccountStatus::Active,
            role: ChatwootRole::Administrator,
        },
        ChatwootMembership {
            account_id: AccountId::new(9),
            account_name: "Cliente Beta".to_owned(),
            status: AccountStatus::Active,
            role: ChatwootRole::Agent,
        },
    ]
}

fn sorted(mut accounts: Vec<ChatwootMembership>) -> Vec<ChatwootMembership> {
    accounts.sort_by_key(|m| m.account_id);
    accounts
}

#[tokio::test]
async fn profile_with_api_token() {
    let (sim, seed) = sim().await;
    let profile = client(&sim)
        .verify(&token(&seed.admin.access_token))
        .await
        .unwrap();
    assert_eq!(profile.user_id, UserId::new(5));
    assert_eq!(profile.email, "carlos@whatpro.example");
    assert_eq!(profile.name, "Carlos Lima");
    assert_eq!(sorted(profile.accounts), demo_admin_accounts());

    let requests = sim.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/api/v1/profile");
    assert!(
        request
            .headers
            .iter()
            .any(|(n, v)| n == "api_access_token" && *v == seed.admin.access_token),
        "{:?}",
        request.headers.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    assert!(!request.headers.iter().any(|(n, _)| n == "api-access-token"));
    assert_eq!(
        request.header("user-agent"),
        Some(format!("whatpro-hub/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
}

#[tokio::test]
async fn profile_with_devise_session() {
    let (sim, seed) = sim().await;
    let devise = sim.sign_in(seed.admin.id);
    let profile = client(&sim).verify(&session(&devise)).await.unwrap();
    assert_eq!(profile.user_id, UserId::new(5));
    assert_eq!(profile.email, "carlos@whatpro.example");
    assert_eq!(profile.name, "Carlos Lima");
    assert_eq!(sorted(profile.accounts), demo_admin_accounts());

    let requests = sim.requests();
    let paths: Vec<_> = requests.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(paths, ["/auth/validate_token", "/api/v1/profile"]);
    for request in &requests {
        assert_eq!(
            request.header("access-token"),
            Some(devise.access_token.as_str())
        );
        assert_eq!(request.header("client"), Some(devise.client.as_str()));
        assert_eq!(request.header("uid"), Some(devise.uid.as_str()));
        assert_eq!(request.header("token-type"), Some("Bearer"));
        assert_eq!(request.header("api_access_token"), None);
    }
}

#[tokio::test]
async fn bad_token_is_invalid_credentials() {
    let (sim, _) = sim().await;
    let result = client(&sim).verify(&token("not-a-token")).await;
    assert_eq!(result, Err(IdentityError::InvalidCredentials));

    let error = client(&sim)
        .profile(&token("not-a-token"))
        .await
        .unwrap_err();
    assert_eq!(
        error,
        ChatwootError::Unauthorized {
            message: Some("Invalid Access Token".to_owned())
        }
    );
    assert!(!error.to_string().contains("not-a-token"));
}

#[tokio::test]
async fn unusable_tokens_are_refused_without_a_call() {
    let (sim, _) = sim().await;
    for bad in ["", "   ", "a\nb"] {
        let result = client(&sim).verify(&token(bad)).await;
        assert_eq!(result, Err(IdentityError::InvalidCredentials), "{bad:?}");
    }
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn bad_session_is_invalid_credentials() {
    let (sim, seed) = sim().await;
    let forged = ChatwootCredential::Session {
        access_token: "forged".to_owned(),
        client: "forged".to_owned(),
        uid: seed.admin.email.clone(),
    };
    assert_eq!(
        client(&sim).verify(&forged).await,
        Err(IdentityError::InvalidCredentials)
    );

    // A real session after sign-out.
    let devise = sim.sign_in(seed.admin.id);
    sim.sign_out_all(seed.admin.id);
    assert_eq!(
        client(&sim).verify(&session(&devise)).await,
        Err(IdentityError::InvalidCredentials)
    );
    // validate_token refused: the profile is never asked.
    assert!(
        sim.requests()
            .iter()
            .all(|r| r.path == "/auth/validate_token")
    );
}

#[tokio::test]
async fn suspended_account_is_mapped() {
    let (sim, seed) = sim().await;
    sim.set_account_status(9, whatpro_chatwoot_sim::AccountStatus::Suspended);
    let profile = client(&sim)
        .verify(&token(&seed.admin.access_token))
        .await
        .unwrap();
    let accounts = sorted(profile.accounts);
    assert_eq!(accounts[0].status, AccountStatus::Active);
    assert_eq!(accounts[1].account_id, AccountId::new(9));
    assert_eq!(accounts[1].status, AccountStatus::Suspended);
    assert_eq!(accounts[1].role, ChatwootRole::Agent);
}

#[tokio::test]
async fn retries_once_after_503() {
    let (sim, seed) = sim().await;
    sim.set_fault_times(Fault::Status(503), 1);
    let started = Instant::now();
    let profile = client(&sim)
        .verify(&token(&seed.admin.access_token))
        .await
        .unwrap();
    assert!(started.elapsed() >= whatpro_chatwoot::RETRY_DELAY);
    assert_eq!(profile.user_id, UserId::new(5));
    assert_eq!(sim.requests().len(), 2);
}

#[tokio::test]
async fn persistent_503_is_upstream_after_one_retry() {
    let (sim, seed) = sim().await;
    sim.set_fault(Some(Fault::Status(503)));
    let result = client(&sim).verify(&token(&seed.admin.access_token)).await;
    assert!(
        matches!(result, Err(IdentityError::Upstream(_))),
        "{result:?}"
    );
    assert_eq!(sim.requests().len(), 2);
}

#[tokio::test]
async fn no_retry_without_retries() {
    let (sim, seed) = sim().await;
    sim.set_fault(Some(Fault::Status(502)));
    let settings = ClientSettings {
        retries: 0,
        ..ClientSettings::default()
    };
    let result = client_for(&sim.url(), settings)
        .verify(&token(&seed.admin.access_token))
        .await;
    assert!(
        matches!(result, Err(IdentityError::Upstream(_))),
        "{result:?}"
    );
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn rate_limit_and_500_are_upstream_without_retry() {
    let (sim, seed) = sim().await;
    for status in [429, 500] {
        sim.clear_requests();
        sim.set_fault(Some(Fault::Status(status)));
        let error = client(&sim)
            .profile(&token(&seed.admin.access_token))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(status));
        assert!(matches!(
            IdentityError::from(error),
            IdentityError::Upstream(_)
        ));
        assert_eq!(sim.requests().len(), 1, "{status}");
    }
}

#[tokio::test]
async fn slow_chatwoot_is_unavailable_in_bounded_time() {
    let (sim, seed) = sim().await;
    sim.set_fault(Some(Fault::Delay(Duration::from_secs(3))));
    let settings = ClientSettings {
        request_timeout: Duration::from_millis(300),
        ..ClientSettings::default()
    };
    let started = Instant::now();
    let result = client_for(&sim.url(), settings)
        .verify(&token(&seed.admin.access_token))
        .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(&result, Err(IdentityError::Unavailable(reason)) if !reason.contains(&seed.admin.access_token)),
        "{result:?}"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // Two attempts: the timeout is retried for a GET.
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
}

#[tokio::test]
async fn closed_connection_is_unavailable_or_upstream() {
    let (sim, seed) = sim().await;
    sim.set_fault(Some(Fault::Close));
    let started = Instant::now();
    let result = client(&sim).verify(&token(&seed.admin.access_token)).await;
    assert!(
        matches!(
            result,
            Err(IdentityError::Unavailable(_) | IdentityError::Upstream(_))
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(11));
}

#[tokio::test]
async fn unreachable_chatwoot_is_unavailable() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let result = client_for(
        &format!("http://127.0.0.1:{port}/"),
        ClientSettings::default(),
    )
    .verify(&token("whatever"))
    .await;
    assert!(
        matches!(result, Err(IdentityError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let (sim, seed) = sim().await;
    for base in [
        format!("{}/chat/", sim.url()),
        format!("{}/chat", sim.url()),
    ] {
        sim.clear_requests();
        let error = client_for(&base, ClientSettings::default())
            .profile(&token(&seed.admin.access_token))
            .await
            .unwrap_err();
        // The sim has no prefix, so it answers 404 (a real proxy would strip the prefix).
        assert_eq!(error.status(), Some(404), "{error}");
        let paths: Vec<_> = sim.requests().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/chat/api/v1/profile"], "{base}");
    }

    sim.clear_requests();
    let devise = sim.sign_in(seed.admin.id);
    let result = client_for(&format!("{}/chat/", sim.url()), ClientSettings::default())
        .verify(&session(&devise))
        .await;
    assert!(
        matches!(result, Err(IdentityError::Upstream(_))),
        "{result:?}"
    );
    assert_eq!(sim.requests()[0].path, "/chat/auth/validate_token");
}

#[tokio::test]
async fn client_is_cloneable_and_reused() {
    let (sim, seed) = sim().await;
    let a = client(&sim);
    let b = a.clone();
    let (admin, agent) = (
        token(&seed.admin.access_token),
        token(&seed.agent.access_token),
    );
    let (x, y) = tokio::join!(a.verify(&admin), b.verify(&agent));
    assert_eq!(x.unwrap().user_id, UserId::new(5));
    let agent = y.unwrap();
    assert_eq!(agent.user_id, UserId::new(6));
    assert_eq!(
        agent.accounts,
        vec![ChatwootMembership {
            account_id: AccountId::new(1),
            account_name: "WhatPro Demo".to_owned(),
            status: AccountStatus::Active,
            role: ChatwootRole::Agent,
        }]
    );
}
