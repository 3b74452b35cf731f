#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on unexpected errors"
)]
//! Account inboxes and administrator checks against the fake Chatwoot, and the inbox domain's
//! `ChatwootAccounts` port over them.

use std::time::{Duration, Instant};

use url::Url;
use whatpro_chatwoot::{ChatwootClient, ChatwootError, ClientSettings};
use whatpro_chatwoot_sim::{ChatwootSim, DemoSeed, Fault, SimRole};
use whatpro_iam::{ChatwootRole, Role, TenantScope};
use whatpro_inbox::{ChatwootAccounts, ChatwootCallError, ChatwootInboxId};
use whatpro_kernel::{AccountId, UserId};

async fn sim() -> (ChatwootSim, DemoSeed) {
    let sim = ChatwootSim::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let seed = sim.seed_demo();
    (sim, seed)
}

fn client(sim: &ChatwootSim) -> ChatwootClient {
    client_with(sim, ClientSettings::default())
}

fn client_with(sim: &ChatwootSim, settings: ClientSettings) -> ChatwootClient {
    ChatwootClient::new(Url::parse(&sim.url()).unwrap(), settings).unwrap()
}

fn scope(account: i64) -> TenantScope {
    TenantScope::for_tests(AccountId::new(account), UserId::new(5), Role::Admin)
}

#[tokio::test]
async fn lists_an_accounts_inboxes_with_the_token_in_its_header() {
    let (sim, seed) = sim().await;
    let inboxes = client(&sim)
        .list_inboxes(&seed.admin.access_token, AccountId::new(1))
        .await
        .unwrap();
    let ids: Vec<i64> = inboxes.iter().map(|i| i.id.get()).collect();
    assert_eq!(ids, sim.inbox_ids(1));
    assert!(
        inboxes
            .iter()
            .any(|i| i.channel_type == "Channel::Whatsapp")
    );
    let request = sim.requests().pop().unwrap();
    assert_eq!(request.path, "/api/v1/accounts/1/inboxes");
    assert_eq!(
        request.header("api_access_token"),
        Some(seed.admin.access_token.as_str())
    );

    // Through the port: the scope's account, never another.
    sim.seed_inboxes(9, 900, 2);
    let inboxes = client(&sim)
        .inboxes(&scope(9), &seed.admin.access_token)
        .await
        .unwrap();
    assert_eq!(inboxes.len(), 5);
    assert!(inboxes.iter().any(|i| i.id == ChatwootInboxId::new(900)));
}

#[tokio::test]
async fn failures_map_to_unauthorized_upstream_and_unavailable() {
    let (sim, seed) = sim().await;
    let token = seed.admin.access_token.as_str();
    let chatwoot = client(&sim);

    let err = chatwoot
        .inboxes(&scope(1), "wrong-token")
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChatwootCallError::Unauthorized(Some(_))),
        "{err:?}"
    );

    for (fault, what) in [
        (Fault::Status(404), "404"),
        (Fault::Status(500), "500"),
        (Fault::Garbage, "unreadable"),
    ] {
        sim.set_route_fault("/inboxes", Some(fault));
        let err = chatwoot.inboxes(&scope(1), token).await.unwrap_err();
        match &err {
            ChatwootCallError::Upstream(m) => assert!(m.contains(what), "{m}"),
            other => panic!("{fault:?}: {other:?}"),
        }
        assert!(!err.to_string().contains(token));
    }
    sim.set_route_fault("/inboxes", Some(Fault::Status(401)));
    assert!(matches!(
        chatwoot.inboxes(&scope(1), token).await.unwrap_err(),
        ChatwootCallError::Unauthorized(_)
    ));

    // Slow: each attempt times out, the GET is retried once, then it is unavailable.
    sim.set_route_fault("/inboxes", Some(Fault::Delay(Duration::from_secs(3))));
    sim.clear_requests();
    let started = Instant::now();
    let err = client_with(
        &sim,
        ClientSettings {
            request_timeout: Duration::from_millis(300),
            ..ClientSettings::default()
        },
    )
    .inboxes(&scope(1), token)
    .await
    .unwrap_err();
    assert!(matches!(err, ChatwootCallError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(sim.requests().len(), 2, "one retry");

    // A 503 once is retried and then answered.
    sim.set_route_fault("/inboxes", None);
    sim.set_fault_times(Fault::Status(503), 1);
    assert_eq!(chatwoot.inboxes(&scope(1), token).await.unwrap().len(), 3);
}

#[tokio::test]
async fn tells_administrators_from_agents() {
    let (sim, seed) = sim().await;
    let chatwoot = client(&sim);
    let admin = chatwoot
        .account_standing(&seed.admin.access_token, AccountId::new(1))
        .await
        .unwrap();
    assert!(admin.is_active_administrator());
    // Carlos is only an agent of account 9.
    let agent = chatwoot
        .account_standing(&seed.admin.access_token, AccountId::new(9))
        .await
        .unwrap();
    assert_eq!(agent.role, Some(ChatwootRole::Agent));
    assert!(!agent.is_active_administrator());
    // Not a member at all.
    let stranger = chatwoot
        .account_standing(&seed.agent.access_token, AccountId::new(9))
        .await
        .unwrap();
    assert_eq!(stranger.role, None);
    // A suspended account's administrator is not an active administrator.
    sim.add_membership(seed.agent.id, 9, SimRole::Administrator);
    sim.set_account_status(9, whatpro_chatwoot_sim::AccountStatus::Suspended);
    let suspended = chatwoot
        .account_standing(&seed.agent.access_token, AccountId::new(9))
        .await
        .unwrap();
    assert_eq!(suspended.role, Some(ChatwootRole::Administrator));
    assert!(!suspended.is_active_administrator());

    let err = chatwoot
        .account_standing("nope", AccountId::new(1))
        .await
        .unwrap_err();
    assert!(matches!(err, ChatwootError::Unauthorized { .. }));
    let owner = chatwoot
        .token_owner(&scope(1), &seed.admin.access_token)
        .await
        .unwrap();
    assert_eq!(owner.user_id, UserId::new(5));
}
