//! Verbatim copies of the shared Chatwoot example payloads (`/work/shared/chatwoot/`), embedded
//! at compile time. The simulator builds its responses from these, so a response has the
//! same keys as the example it mirrors. Tests check that the copies are byte-identical to
//! the shared originals.

use std::sync::LazyLock;

use serde_json::Value;

/// `api/profile.json`: `GET /api/v1/profile`.
pub const PROFILE: &str = include_str!("../fixtures/api/profile.json");
/// `api/auth_sign_in.json`: `POST /auth/sign_in` request, headers, 200 and 401 bodies.
pub const AUTH_SIGN_IN: &str = include_str!("../fixtures/api/auth_sign_in.json");
/// `api/auth_validate_token.json`: `GET /auth/validate_token` 200 and 401 bodies.
pub const AUTH_VALIDATE_TOKEN: &str = include_str!("../fixtures/api/auth_validate_token.json");
/// `api/inboxes_index.json`: `GET /api/v1/accounts/{id}/inboxes`.
pub const INBOXES_INDEX: &str = include_str!("../fixtures/api/inboxes_index.json");
/// `api/agents_index.json`: `GET /api/v1/accounts/{id}/agents`.
pub const AGENTS_INDEX: &str = include_str!("../fixtures/api/agents_index.json");
/// `api/teams_index.json`: `GET /api/v1/accounts/{id}/teams`.
pub const TEAMS_INDEX: &str = include_str!("../fixtures/api/teams_index.json");
/// `api/webhooks_index.json`: `GET /api/v1/accounts/{id}/webhooks`.
pub const WEBHOOKS_INDEX: &str = include_str!("../fixtures/api/webhooks_index.json");
/// `api/dashboard_apps_index.json`: `GET /api/v1/accounts/{id}/dashboard_apps`.
pub const DASHBOARD_APPS_INDEX: &str = include_str!("../fixtures/api/dashboard_apps_index.json");
/// `api/errors.json`: every error status and body the simulator answers with.
pub const ERRORS: &str = include_str!("../fixtures/api/errors.json");

/// Webhook example payloads (`webhooks/<event>.json`), keyed by event name.
pub const WEBHOOK_EXAMPLES: &[(&str, &str)] = &[
    (
        "conversation_created",
        include_str!("../fixtures/webhooks/conversation_created.json"),
    ),
    (
        "conversation_updated",
        include_str!("../fixtures/webhooks/conversation_updated.json"),
    ),
    (
        "conversation_status_changed",
        include_str!("../fixtures/webhooks/conversation_status_changed.json"),
    ),
    (
        "message_created",
        include_str!("../fixtures/webhooks/message_created.json"),
    ),
    (
        "message_updated",
        include_str!("../fixtures/webhooks/message_updated.json"),
    ),
    (
        "contact_created",
        include_str!("../fixtures/webhooks/contact_created.json"),
    ),
    (
        "contact_updated",
        include_str!("../fixtures/webhooks/contact_updated.json"),
    ),
    (
        "webwidget_triggered",
        include_str!("../fixtures/webhooks/webwidget_triggered.json"),
    ),
    (
        "conversation_typing_on",
        include_str!("../fixtures/webhooks/conversation_typing_on.json"),
    ),
    (
        "conversation_typing_off",
        include_str!("../fixtures/webhooks/conversation_typing_off.json"),
    ),
    (
        "inbox_created",
        include_str!("../fixtures/webhooks/inbox_created.json"),
    ),
    (
        "inbox_updated",
        include_str!("../fixtures/webhooks/inbox_updated.json"),
    ),
];

/// The embedded example payload for a webhook `event`, parsed; `None` for an unknown event.
pub fn webhook_example(event: &str) -> Option<Value> {
    WEBHOOK_EXAMPLES
        .iter()
        .find(|(name, _)| *name == event)
        .map(|(_, text)| parse(text))
}

fn parse(text: &str) -> Value {
    // The fixtures are valid JSON (checked by the tests); `Null` only guards against a bad copy.
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub(crate) static PROFILE_JSON: LazyLock<Value> = LazyLock::new(|| parse(PROFILE));
pub(crate) static SIGN_IN_JSON: LazyLock<Value> = LazyLock::new(|| parse(AUTH_SIGN_IN));
pub(crate) static VALIDATE_TOKEN_JSON: LazyLock<Value> =
    LazyLock::new(|| parse(AUTH_VALIDATE_TOKEN));
pub(crate) static INBOXES_JSON: LazyLock<Value> = LazyLock::new(|| parse(INBOXES_INDEX));
pub(crate) static AGENTS_JSON: LazyLock<Value> = LazyLock::new(|| parse(AGENTS_INDEX));
pub(crate) static TEAMS_JSON: LazyLock<Value> = LazyLock::new(|| parse(TEAMS_INDEX));
pub(crate) static ERRORS_JSON: LazyLock<Value> = LazyLock::new(|| parse(ERRORS));
