//! The IDOR and role matrix: every account-scoped route (read from the generated OpenAPI
//! document, so a new route cannot escape) is called by each role of tenant A — with its
//! access token, with an API key and with an instance token holding every scope the role may
//! hold — with A's ids, B's account, a random account, and foreign and random resource ids.
//! Foreign or random targets must never succeed; own targets succeed exactly when the policy
//! table allows (and, for machine credentials, a scope can grant the action).

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatpro_chatwoot_sim::SimRole;
use whatpro_entitlements::Resource;
use whatpro_iam::{Action, Role, ScopeSet};
use whatpro_testkit::TestApp;

use crate::api_keys::new_key;
use crate::inbox::connect;
use crate::providers::{create_instance, create_provider, evolution_body, set_limits};
use crate::support::{ACCOUNT_A, ACCOUNT_B, Login, add_user, authed, login, set_role};

/// How to call one route: the action it needs, the body, and its non-account path ids.
struct Fixture {
    action: Action,
    body: Option<Value>,
    /// Path parameters other than `account_id` pointing at the caller's own tenant.
    own: fn(&World) -> BTreeMap<&'static str, String>,
    /// The same parameters pointing at tenant B's resources (empty when the route has none).
    foreign: fn(&World) -> BTreeMap<&'static str, String>,
}

/// The subscription tenant A holds.
fn subscription_body() -> Value {
    json!({
        "plan_id": "pro",
        "billing_type": "PIX",
        "customer": {"name": "Tenant A", "cpf_cnpj": "52998224725", "email": "a@example.com"}
    })
}

/// A provider base URL nothing listens on (probes fail fast, which is all the matrix needs).
const UNREACHABLE_PROVIDER: &str = "http://127.0.0.1:9";

/// Tenant A's live instance (and its provider).
fn a_instance(w: &World) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("provider_id", w.a_provider.clone()),
        ("instance_id", w.a_instance.clone()),
    ])
}

/// Tenant B's instance (and its provider).
fn b_instance(w: &World) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("provider_id", w.b_provider.clone()),
        ("instance_id", w.b_instance.clone()),
    ])
}

/// Every account-scoped route must have a fixture here.
fn fixture(method: &str, path: &str) -> Option<Fixture> {
    let none = |_: &World| BTreeMap::new();
    Some(match (method, path) {
        ("get", "/api/v1/accounts/{account_id}/members") => Fixture {
            action: Action::MembersRead,
            body: None,
            own: none,
            foreign: none,
        },
        ("patch", "/api/v1/accounts/{account_id}/members/{user_id}") => Fixture {
            action: Action::MembersWrite,
            // A no-op change of the viewer keeps the world stable between calls.
            body: Some(json!({"role": "viewer"})),
            own: |w| BTreeMap::from([("user_id", w.a_viewer.to_string())]),
            foreign: |w| BTreeMap::from([("user_id", w.b_only_member.to_string())]),
        },
        ("get", "/api/v1/accounts/{account_id}/audit") => Fixture {
            action: Action::AuditRead,
            body: None,
            own: none,
            foreign: none,
        },
        ("get", "/api/v1/accounts/{account_id}/api-keys") => Fixture {
            action: Action::ApiKeysRead,
            body: None,
            own: none,
            foreign: none,
        },
        ("post", "/api/v1/accounts/{account_id}/api-keys") => Fixture {
            action: Action::ApiKeysWrite,
            body: Some(json!({"name": "idor", "scopes": ["members:read"]})),
            own: none,
            foreign: none,
        },
        ("post", "/api/v1/accounts/{account_id}/api-keys/{key_id}/rotate") => Fixture {
            action: Action::ApiKeysWrite,
            body: None,
            own: |w| BTreeMap::from([("key_id", w.a_rotated_key.clone())]),
            foreign: |w| BTreeMap::from([("key_id", w.b_key.clone())]),
        },
        ("delete", "/api/v1/accounts/{account_id}/api-keys/{key_id}") => Fixture {
            action: Action::ApiKeysWrite,
            // Revoking is idempotent: the key stays revoked between calls.
            body: None,
            own: |w| BTreeMap::from([("key_id", w.a_revoked_key.clone())]),
            foreign: |w| BTreeMap::from([("key_id", w.b_key.clone())]),
        },
        ("post", "/api/v1/accounts/{account_id}/chatwoot/dashboard-app") => Fixture {
            action: Action::SettingsWrite,
            // The Chatwoot token of tenant A's administrator (user 100 of the world): the
            // first admin call registers the app (201), later ones find it (200).
            body: Some(json!({"api_access_token": "tok-100-xxxxxxxxxxxxxxxx"})),
            own: none,
            foreign: none,
        },
        ("put", "/api/v1/admin/accounts/{account_id}/entitlements") => Fixture {
            action: Action::PlatformWrite,
            body: Some(json!({})),
            own: none,
            foreign: none,
        },
        ("get", "/api/v1/accounts/{account_id}/entitlements")
        | ("get", "/api/v1/accounts/{account_id}/features") => Fixture {
            action: Action::FeaturesRead,
            body: None,
            own: none,
            foreign: none,
        },
        ("get", "/api/v1/accounts/{account_id}/usage")
        | ("get", "/api/v1/accounts/{account_id}/usage/active-users") => Fixture {
            action: Action::UsageRead,
            body: None,
            own: none,
            foreign: none,
        },
        ("patch", "/api/v1/accounts/{account_id}/settings") => Fixture {
            action: Action::SettingsWrite,
            body: Some(json!({"time_zone": "UTC"})),
            own: none,
            foreign: none,
        },
        ("get", "/api/v1/accounts/{account_id}/billing") => Fixture {
            action: Action::BillingRead,
            body: None,
            own: none,
            foreign: none,
        },
        ("post", "/api/v1/accounts/{account_id}/billing/subscribe") => Fixture {
            action: Action::BillingWrite,
            // The world subscribed A to this plan: repeats answer 200 with the state.
            body: Some(subscription_body()),
            own: none,
            foreign: none,
        },
        ("post", "/api/v1/accounts/{account_id}/billing/change-plan") => Fixture {
            action: Action::BillingWrite,
            // The plan A is subscribed to: a no-op.
            body: Some(json!({"plan_id": "pro"})),
            own: none,
            foreign: none,
        },
        ("post", "/api/v1/accounts/{account_id}/billing/cancel") => Fixture {
            action: Action::BillingWrite,
            // Cancelling at the end of the period is repeatable.
            body: None,
            own: none,
            foreign: none,
        },
        ("put", "/api/v1/accounts/{account_id}/chatwoot/connection") => Fixture {
            action: Action::SettingsWrite,
            // The token of tenant A's administrator (user 100): replacing is repeatable.
            body: Some(json!({"api_access_token": "tok-100-xxxxxxxxxxxxxxxx"})),
            own: none,
            foreign: none,
        },
        ("delete", "/api/v1/accounts/{account_id}/chatwoot/connection") => Fixture {
            // Removing a missing connection succeeds; the PUT (run after it) restores it.
            action: Action::SettingsWrite,
            body: None,
            own: none,
            foreign: none,
        },
        ("get", "/api/v1/accounts/{account_id}/chatwoot/connection")
        | ("get", "/api/v1/accounts/{account_id}/inboxes")
        | ("get", "/api/v1/accounts/{account_id}/inboxes/sync-runs") => Fixture {
            action: Action::InboxesRead,
            body: None,
            own: none,
            foreign: none,
        },
        ("post", "/api/v1/accounts/{account_id}/inboxes/sync") => Fixture {
            action: Action::InboxesWrite,
            body: None,
            own: none,
            foreign: none,
        },
        ("post", "/api/v1/accounts/{account_id}/providers") => Fixture {
            action: Action::ProvidersWrite,
            body: Some(evolution_body(UNREACHABLE_PROVIDER)),
            own: none,
            foreign: none,
        },
        ("get", "/api/v1/accounts/{account_id}/providers") => Fixture {
            action: Action::ProvidersRead,
            body: None,
            own: none,
            foreign: none,
        },
        ("get", "/api/v1/accounts/{account_id}/providers/{provider_id}")
        | ("get", "/api/v1/accounts/{account_id}/providers/{provider_id}/instances") => Fixture {
            action: Action::ProvidersRead,
            body: None,
            own: |w| BTreeMap::from([("provider_id", w.a_provider.clone())]),
            foreign: |w| BTreeMap::from([("provider_id", w.b_provider.clone())]),
        },
        ("patch", "/api/v1/accounts/{account_id}/providers/{provider_id}") => Fixture {
            action: Action::ProvidersWrite,
            body: Some(json!({"name": "idor"})),
            own: |w| BTreeMap::from([("provider_id", w.a_provider.clone())]),
            foreign: |w| BTreeMap::from([("provider_id", w.b_provider.clone())]),
        },
        ("delete", "/api/v1/accounts/{account_id}/providers/{provider_id}") => Fixture {
            // Deleting a deleted provider succeeds without effect.
            action: Action::ProvidersWrite,
            body: None,
            own: |w| BTreeMap::from([("provider_id", w.a_deleted_provider.clone())]),
            foreign: |w| BTreeMap::from([("provider_id", w.b_provider.clone())]),
        },
        ("post", "/api/v1/accounts/{account_id}/providers/{provider_id}/instances") => Fixture {
            action: Action::ProvidersWrite,
            body: Some(json!({"name": "idor"})),
            own: |w| BTreeMap::from([("provider_id", w.a_provider.clone())]),
            foreign: |w| BTreeMap::from([("provider_id", w.b_provider.clone())]),
        },
        (
            "get",
            "/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}",
        )
        | (
            "get",
            "/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}/health",
        ) => Fixture {
            action: Action::ProvidersRead,
            body: None,
            own: a_instance,
            foreign: b_instance,
        },
        (
            "patch",
            "/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}",
        ) => Fixture {
            action: Action::ProvidersWrite,
            body: Some(json!({"name": "idor"})),
            own: a_instance,
            foreign: b_instance,
        },
        (
            "post",
            "/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}/probe",
        ) => Fixture {
            // The provider of the world does not answer: the probe records that, 200.
            action: Action::ProvidersWrite,
            body: None,
            own: a_instance,
            foreign: b_instance,
        },
        (
            "delete",
            "/api/v1/accounts/{account_id}/providers/{provider_id}/instances/{instance_id}",
        ) => Fixture {
            // Deleting a deleted instance succeeds without effect.
            action: Action::ProvidersWrite,
            body: None,
            own: |w| {
                BTreeMap::from([
                    ("provider_id", w.a_provider.clone()),
                    ("instance_id", w.a_deleted_instance.clone()),
                ])
            },
            foreign: b_instance,
        },
        _ => return None,
    })
}

/// How a caller authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Access token of a session.
    Session,
    /// API key with every scope the role may hold.
    ApiKey,
    /// Instance token with every scope the role may hold (sent with its `Origin`).
    InstanceToken,
}

/// One caller: a role of tenant A with one kind of credential.
struct Caller {
    role: Role,
    kind: Kind,
    bearer: String,
}

impl Caller {
    /// Whether this caller may do `action` on its own tenant.
    fn may(&self, action: Action) -> bool {
        self.role.allows(action)
            && (self.kind == Kind::Session || ScopeSet::for_role(self.role).allows(action))
    }
}

struct World {
    /// Tenant A's users by role.
    a: Vec<(Role, Login)>,
    /// Every caller of the matrix.
    callers: Vec<Caller>,
    /// The origin instance tokens are bound to (the Hub's own, as for the embedded UI).
    origin: String,
    /// A viewer of A (target of the role-change fixture).
    a_viewer: i64,
    /// A member of B only.
    b_only_member: i64,
    /// A key of A rotated by the matrix.
    a_rotated_key: String,
    /// A key of A revoked by the matrix.
    a_revoked_key: String,
    /// A key of B.
    b_key: String,
    /// A provider of A (with instances).
    a_provider: String,
    /// A provider of A deleted by the matrix.
    a_deleted_provider: String,
    /// An instance of `a_provider`.
    a_instance: String,
    /// An instance of `a_provider` deleted by the matrix.
    a_deleted_instance: String,
    /// A provider of B.
    b_provider: String,
    /// An instance of `b_provider`.
    b_instance: String,
}

async fn world(app: &TestApp) -> World {
    app.chatwoot.seed_demo();
    // Tenant A's users exist only in A (the demo's Carlos is also an agent of B, so he is not
    // one of them): an administrator, a supervisor, an agent and a viewer.
    let admin_token = add_user(app, 100, &[(ACCOUNT_A, SimRole::Administrator)]);
    let admin = login(app, &admin_token).await;
    let mut a = vec![(Role::Admin, admin.clone())];
    for (id, role) in [
        (101, Role::Supervisor),
        (102, Role::Agent),
        (103, Role::Viewer),
    ] {
        let token = add_user(app, id, &[(ACCOUNT_A, SimRole::Agent)]);
        let user = login(app, &token).await;
        if role != Role::Agent {
            set_role(app, &admin, ACCOUNT_A, id, role.as_str()).await;
        }
        a.push((role, user));
    }
    // Tenant B: an administrator and a member that exist only there.
    let b_admin = add_user(app, 201, &[(ACCOUNT_B, SimRole::Administrator)]);
    let b_admin = login(app, &b_admin).await;
    let b_agent = add_user(app, 202, &[(ACCOUNT_B, SimRole::Agent)]);
    login(app, &b_agent).await;
    let (b_key, _) = new_key(app, &b_admin.access_token, ACCOUNT_B, &["members:read"]).await;
    let (a_rotated_key, _) = new_key(app, &admin.access_token, ACCOUNT_A, &["members:read"]).await;
    let (a_revoked_key, _) = new_key(app, &admin.access_token, ACCOUNT_A, &["members:read"]).await;

    // Tenant A has a subscription, so the billing routes have something to act on.
    let response = authed(
        app,
        Method::POST,
        &format!("/api/v1/accounts/{ACCOUNT_A}/billing/subscribe"),
        &admin.access_token,
    )
    .json(&subscription_body())
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    // Inboxes and providers: A is connected to Chatwoot with its administrator's token, both
    // tenants have providers and instances, and A's provider limits are lifted so that every
    // caller allowed to create may do so.
    set_limits(
        app,
        ACCOUNT_A,
        &[(Resource::Providers, None), (Resource::Instances, None)],
    )
    .await;
    let (status, body) = connect(app, &admin.access_token, ACCOUNT_A, &admin_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let provider_body = evolution_body(UNREACHABLE_PROVIDER);
    let a_provider = create_provider(app, &admin.access_token, ACCOUNT_A, &provider_body).await;
    let a_deleted_provider =
        create_provider(app, &admin.access_token, ACCOUNT_A, &provider_body).await;
    let instance = json!({"name": "idor"});
    let a_instance_id =
        create_instance(app, &admin.access_token, ACCOUNT_A, &a_provider, &instance).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let a_deleted_instance =
        create_instance(app, &admin.access_token, ACCOUNT_A, &a_provider, &instance).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let b_provider = create_provider(app, &b_admin.access_token, ACCOUNT_B, &provider_body).await;
    let b_instance_id = create_instance(
        app,
        &b_admin.access_token,
        ACCOUNT_B,
        &b_provider,
        &instance,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Machine credentials with every scope each role may hold. Only admins create keys: each
    // user is an admin while creating theirs, then gets their role back (keys act with the
    // creator's current role).
    let origin = app.address.clone();
    let mut callers = Vec::new();
    for (role, user) in &a {
        let scopes = ScopeSet::for_role(*role).names();
        if *role != Role::Admin {
            set_role(app, &admin, ACCOUNT_A, user.user_id, "admin").await;
        }
        let refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let (_, key) = new_key(app, &user.access_token, ACCOUNT_A, &refs).await;
        if *role != Role::Admin {
            set_role(app, &admin, ACCOUNT_A, user.user_id, role.as_str()).await;
        }
        let response = authed(
            app,
            Method::POST,
            "/api/v1/instance-tokens",
            &user.access_token,
        )
        .json(&json!({"account_id": ACCOUNT_A, "origin": origin, "ttl_minutes": 60}))
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{role}");
        let issued: Value = response.json().await.unwrap();
        assert_eq!(issued["scopes"], json!(scopes), "{role}");
        callers.push(Caller {
            role: *role,
            kind: Kind::Session,
            bearer: user.access_token.clone(),
        });
        callers.push(Caller {
            role: *role,
            kind: Kind::ApiKey,
            bearer: key,
        });
        callers.push(Caller {
            role: *role,
            kind: Kind::InstanceToken,
            bearer: issued["token"].as_str().unwrap().to_owned(),
        });
    }
    World {
        a,
        callers,
        origin,
        a_viewer: 103,
        b_only_member: 202,
        a_rotated_key,
        a_revoked_key,
        b_key,
        a_provider,
        a_deleted_provider,
        a_instance: a_instance_id,
        a_deleted_instance,
        b_provider,
        b_instance: b_instance_id,
    }
}

fn fill(path: &str, account: i64, ids: &BTreeMap<&'static str, String>) -> String {
    let mut path = path.replace("{account_id}", &account.to_string());
    for (name, value) in ids {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    path
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    origin: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = authed(app, method, path, token);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn no_role_reads_or_writes_another_tenant_and_own_access_follows_the_policy() {
    let app = TestApp::spawn().await;
    let world = world(&app).await;
    let spec = serde_json::to_value(whatpro_app::openapi()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.contains("{account_id}") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            routes.push((method.clone(), path.clone()));
        }
    }
    assert!(
        routes.len() >= 3,
        "the matrix found too few routes: {routes:?}"
    );

    let mut checked = 0;
    for (method, path) in &routes {
        let fixture = fixture(method, path).unwrap_or_else(|| {
            panic!("{method} {path} has no IDOR fixture: add one in tests/e2e/idor.rs")
        });
        let own_ids = (fixture.own)(&world);
        let foreign_ids = (fixture.foreign)(&world);
        // Random ids of the same shape as the own ones (a UUID for Hub-owned ids).
        let random_ids: BTreeMap<&'static str, String> = own_ids
            .iter()
            .map(|(k, v)| {
                let random = if uuid::Uuid::parse_str(v).is_ok() {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    "987654321".to_owned()
                };
                (*k, random)
            })
            .collect();
        for caller in &world.callers {
            let token = caller.bearer.as_str();
            let origin = (caller.kind == Kind::InstanceToken).then_some(world.origin.as_str());
            let body = fixture.body.as_ref();
            let label = format!("{} ({:?}) {method} {path}", caller.role, caller.kind);
            let may = caller.may(fixture.action);

            // Own tenant, own ids: exactly what the policy (and the scopes) say.
            let (status, json) = call(
                &app,
                method,
                &fill(path, ACCOUNT_A, &own_ids),
                token,
                origin,
                body,
            )
            .await;
            // Platform routes that name an account (`/admin/accounts/{account_id}/...`) take
            // user sessions only: machine credentials are refused outright.
            let denied = if caller.kind != Kind::Session && !path.starts_with("/api/v1/accounts/") {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::FORBIDDEN
            };
            if may {
                assert!(
                    status.is_success(),
                    "{label}: own access refused: {status} {json}"
                );
            } else {
                assert_eq!(status, denied, "{label}: {json}");
            }

            // Tenant B's account, with B's ids or ours, and an account that does not exist.
            for (account, ids) in [
                (ACCOUNT_B, &foreign_ids),
                (ACCOUNT_B, &own_ids),
                (424_242, &own_ids),
            ] {
                let (status, json) =
                    call(&app, method, &fill(path, account, ids), token, origin, body).await;
                assert!(
                    status == denied || status == StatusCode::NOT_FOUND,
                    "{label} on account {account}: {status} {json}"
                );
            }

            // Own account, but B's or random resource ids: never found.
            if !own_ids.is_empty() {
                for ids in [&foreign_ids, &random_ids] {
                    let (status, json) = call(
                        &app,
                        method,
                        &fill(path, ACCOUNT_A, ids),
                        token,
                        origin,
                        body,
                    )
                    .await;
                    let expected = if may { StatusCode::NOT_FOUND } else { denied };
                    assert_eq!(status, expected, "{label} with ids {ids:?}: {json}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes.len() * world.a.len() * 3);
    // The matrix really held keys and tokens of every role.
    for kind in [Kind::Session, Kind::ApiKey, Kind::InstanceToken] {
        assert_eq!(
            world.callers.iter().filter(|c| c.kind == kind).count(),
            Role::MEMBER_ROLES.len(),
            "{kind:?}"
        );
    }
}
