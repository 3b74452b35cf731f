//! The IDOR and role matrix: every account-scoped route (read from the generated OpenAPI
//! document, so a new route cannot escape) is called by each role of tenant A with A's ids,
//! B's account, a random account, and foreign and random resource ids. Foreign or random
//! targets must never succeed; own targets succeed exactly when the policy table allows.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use whatpro_chatwoot_sim::SimRole;
use whatpro_iam::{Action, Role};
use whatpro_testkit::TestApp;

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
        _ => return None,
    })
}

struct World {
    /// Tenant A's users by role.
    a: Vec<(Role, Login)>,
    /// A viewer of A (target of the role-change fixture).
    a_viewer: i64,
    /// A member of B only.
    b_only_member: i64,
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
    login(app, &b_admin).await;
    let b_agent = add_user(app, 202, &[(ACCOUNT_B, SimRole::Agent)]);
    login(app, &b_agent).await;
    World {
        a,
        a_viewer: 103,
        b_only_member: 202,
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
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = authed(app, method, path, token);
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
        let random_ids: BTreeMap<&'static str, String> = own_ids
            .keys()
            .map(|k| (*k, "987654321".to_owned()))
            .collect();
        for (role, user) in &world.a {
            let token = user.access_token.as_str();
            let body = fixture.body.as_ref();
            let label = format!("{role} {method} {path}");

            // Own tenant, own ids: exactly what the policy says.
            let (status, json) =
                call(&app, method, &fill(path, ACCOUNT_A, &own_ids), token, body).await;
            if role.allows(fixture.action) {
                assert!(
                    status.is_success(),
                    "{label}: own access refused: {status} {json}"
                );
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{label}: {json}");
            }

            // Tenant B's account, with B's ids or ours, and an account that does not exist.
            for (account, ids) in [
                (ACCOUNT_B, &foreign_ids),
                (ACCOUNT_B, &own_ids),
                (424_242, &own_ids),
            ] {
                let (status, json) =
                    call(&app, method, &fill(path, account, ids), token, body).await;
                assert!(
                    status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND,
                    "{label} on account {account}: {status} {json}"
                );
            }

            // Own account, but B's or random resource ids: never found.
            if !own_ids.is_empty() {
                for ids in [&foreign_ids, &random_ids] {
                    let (status, json) =
                        call(&app, method, &fill(path, ACCOUNT_A, ids), token, body).await;
                    let expected = if role.allows(fixture.action) {
                        StatusCode::NOT_FOUND
                    } else {
                        StatusCode::FORBIDDEN
                    };
                    assert_eq!(status, expected, "{label} with ids {ids:?}: {json}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes.len() * world.a.len());
}
