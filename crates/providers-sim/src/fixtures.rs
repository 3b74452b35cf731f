//! Verbatim copies of the shared provider example payloads (`/work/shared/providers/`),
//! embedded at compile time. Responses are built from these, overwriting names and values but
//! keeping every field. Tests check that the copies are byte-identical to the shared originals.

use std::sync::LazyLock;

use serde_json::Value;

/// `evolution/chatwoot-set-request.json`.
pub const EVOLUTION_CHATWOOT_SET_REQUEST: &str =
    include_str!("../fixtures/evolution/chatwoot-set-request.json");
/// `evolution/chatwoot-set-response.json`.
pub const EVOLUTION_CHATWOOT_SET_RESPONSE: &str =
    include_str!("../fixtures/evolution/chatwoot-set-response.json");
/// `evolution/connect-qrcode-response.json`.
pub const EVOLUTION_CONNECT_QRCODE_RESPONSE: &str =
    include_str!("../fixtures/evolution/connect-qrcode-response.json");
/// `evolution/connection-state-close.json`.
pub const EVOLUTION_CONNECTION_STATE_CLOSE: &str =
    include_str!("../fixtures/evolution/connection-state-close.json");
/// `evolution/connection-state-connecting.json`.
pub const EVOLUTION_CONNECTION_STATE_CONNECTING: &str =
    include_str!("../fixtures/evolution/connection-state-connecting.json");
/// `evolution/connection-state-open.json`.
pub const EVOLUTION_CONNECTION_STATE_OPEN: &str =
    include_str!("../fixtures/evolution/connection-state-open.json");
/// `evolution/delete-response.json`.
pub const EVOLUTION_DELETE_RESPONSE: &str =
    include_str!("../fixtures/evolution/delete-response.json");
/// `evolution/error-400.json`.
pub const EVOLUTION_ERROR_400: &str = include_str!("../fixtures/evolution/error-400.json");
/// `evolution/error-401.json`.
pub const EVOLUTION_ERROR_401: &str = include_str!("../fixtures/evolution/error-401.json");
/// `evolution/error-403-name-in-use.json`.
pub const EVOLUTION_ERROR_403_NAME_IN_USE: &str =
    include_str!("../fixtures/evolution/error-403-name-in-use.json");
/// `evolution/error-404-instance.json`.
pub const EVOLUTION_ERROR_404_INSTANCE: &str =
    include_str!("../fixtures/evolution/error-404-instance.json");
/// `evolution/fetch-instances-response.json`.
pub const EVOLUTION_FETCH_INSTANCES_RESPONSE: &str =
    include_str!("../fixtures/evolution/fetch-instances-response.json");
/// `evolution/instance-create-request.json`.
pub const EVOLUTION_INSTANCE_CREATE_REQUEST: &str =
    include_str!("../fixtures/evolution/instance-create-request.json");
/// `evolution/instance-create-response.json`.
pub const EVOLUTION_INSTANCE_CREATE_RESPONSE: &str =
    include_str!("../fixtures/evolution/instance-create-response.json");
/// `evolution/instance-create-with-chatwoot-request.json`.
pub const EVOLUTION_INSTANCE_CREATE_WITH_CHATWOOT_REQUEST: &str =
    include_str!("../fixtures/evolution/instance-create-with-chatwoot-request.json");
/// `evolution/logout-response.json`.
pub const EVOLUTION_LOGOUT_RESPONSE: &str =
    include_str!("../fixtures/evolution/logout-response.json");
/// `evolution/root-info-response.json`.
pub const EVOLUTION_ROOT_INFO_RESPONSE: &str =
    include_str!("../fixtures/evolution/root-info-response.json");
/// `evolution/send-text-request.json`.
pub const EVOLUTION_SEND_TEXT_REQUEST: &str =
    include_str!("../fixtures/evolution/send-text-request.json");
/// `evolution/send-text-response.json`.
pub const EVOLUTION_SEND_TEXT_RESPONSE: &str =
    include_str!("../fixtures/evolution/send-text-response.json");
/// `evolution/webhook-connection-update-close.json`.
pub const EVOLUTION_WEBHOOK_CONNECTION_UPDATE_CLOSE: &str =
    include_str!("../fixtures/evolution/webhook-connection-update-close.json");
/// `evolution/webhook-connection-update-open.json`.
pub const EVOLUTION_WEBHOOK_CONNECTION_UPDATE_OPEN: &str =
    include_str!("../fixtures/evolution/webhook-connection-update-open.json");
/// `evolution/webhook-connection-update-refused.json`.
pub const EVOLUTION_WEBHOOK_CONNECTION_UPDATE_REFUSED: &str =
    include_str!("../fixtures/evolution/webhook-connection-update-refused.json");
/// `evolution/webhook-logout-instance.json`.
pub const EVOLUTION_WEBHOOK_LOGOUT_INSTANCE: &str =
    include_str!("../fixtures/evolution/webhook-logout-instance.json");
/// `evolution/webhook-messages-upsert.json`.
pub const EVOLUTION_WEBHOOK_MESSAGES_UPSERT: &str =
    include_str!("../fixtures/evolution/webhook-messages-upsert.json");
/// `evolution/webhook-qrcode-updated.json`.
pub const EVOLUTION_WEBHOOK_QRCODE_UPDATED: &str =
    include_str!("../fixtures/evolution/webhook-qrcode-updated.json");
/// `evolution/webhook-set-request.json`.
pub const EVOLUTION_WEBHOOK_SET_REQUEST: &str =
    include_str!("../fixtures/evolution/webhook-set-request.json");
/// `evolution/webhook-set-response.json`.
pub const EVOLUTION_WEBHOOK_SET_RESPONSE: &str =
    include_str!("../fixtures/evolution/webhook-set-response.json");
/// `zapi/status-connected.json`.
pub const ZAPI_STATUS_CONNECTED: &str = include_str!("../fixtures/zapi/status-connected.json");
/// `zapi/status-disconnected.json`.
pub const ZAPI_STATUS_DISCONNECTED: &str =
    include_str!("../fixtures/zapi/status-disconnected.json");
/// `wppconnect/check-connection-connected.json`.
pub const WPPCONNECT_CHECK_CONNECTION_CONNECTED: &str =
    include_str!("../fixtures/wppconnect/check-connection-connected.json");
/// `wppconnect/check-connection-disconnected.json`.
pub const WPPCONNECT_CHECK_CONNECTION_DISCONNECTED: &str =
    include_str!("../fixtures/wppconnect/check-connection-disconnected.json");
/// `wppconnect/error-401-missing-token.json`.
pub const WPPCONNECT_ERROR_401_MISSING_TOKEN: &str =
    include_str!("../fixtures/wppconnect/error-401-missing-token.json");
/// `wppconnect/error-401.json`.
pub const WPPCONNECT_ERROR_401: &str = include_str!("../fixtures/wppconnect/error-401.json");
/// `wppconnect/generate-token-response.json`.
pub const WPPCONNECT_GENERATE_TOKEN_RESPONSE: &str =
    include_str!("../fixtures/wppconnect/generate-token-response.json");
/// `wppconnect/generate-token-wrong-secret.json`.
pub const WPPCONNECT_GENERATE_TOKEN_WRONG_SECRET: &str =
    include_str!("../fixtures/wppconnect/generate-token-wrong-secret.json");
/// `wppconnect/status-session-closed.json`.
pub const WPPCONNECT_STATUS_SESSION_CLOSED: &str =
    include_str!("../fixtures/wppconnect/status-session-closed.json");
/// `wppconnect/status-session-connected.json`.
pub const WPPCONNECT_STATUS_SESSION_CONNECTED: &str =
    include_str!("../fixtures/wppconnect/status-session-connected.json");
/// `wppconnect/status-session-qrcode.json`.
pub const WPPCONNECT_STATUS_SESSION_QRCODE: &str =
    include_str!("../fixtures/wppconnect/status-session-qrcode.json");
/// `uazapi/error-401.json`.
pub const UAZAPI_ERROR_401: &str = include_str!("../fixtures/uazapi/error-401.json");
/// `uazapi/instance-status-connected.json`.
pub const UAZAPI_INSTANCE_STATUS_CONNECTED: &str =
    include_str!("../fixtures/uazapi/instance-status-connected.json");
/// `uazapi/instance-status-disconnected.json`.
pub const UAZAPI_INSTANCE_STATUS_DISCONNECTED: &str =
    include_str!("../fixtures/uazapi/instance-status-disconnected.json");
/// `whatsapp-cloud/error-401-token.json`.
pub const WHATSAPP_CLOUD_ERROR_401_TOKEN: &str =
    include_str!("../fixtures/whatsapp-cloud/error-401-token.json");
/// `whatsapp-cloud/phone-number-response.json`.
pub const WHATSAPP_CLOUD_PHONE_NUMBER_RESPONSE: &str =
    include_str!("../fixtures/whatsapp-cloud/phone-number-response.json");
/// `whatsapp-cloud/webhook-message.json`.
pub const WHATSAPP_CLOUD_WEBHOOK_MESSAGE: &str =
    include_str!("../fixtures/whatsapp-cloud/webhook-message.json");

/// Every embedded fixture as `(path under fixtures/, text)`.
pub const ALL: &[(&str, &str)] = &[
    (
        "evolution/chatwoot-set-request.json",
        EVOLUTION_CHATWOOT_SET_REQUEST,
    ),
    (
        "evolution/chatwoot-set-response.json",
        EVOLUTION_CHATWOOT_SET_RESPONSE,
    ),
    (
        "evolution/connect-qrcode-response.json",
        EVOLUTION_CONNECT_QRCODE_RESPONSE,
    ),
    (
        "evolution/connection-state-close.json",
        EVOLUTION_CONNECTION_STATE_CLOSE,
    ),
    (
        "evolution/connection-state-connecting.json",
        EVOLUTION_CONNECTION_STATE_CONNECTING,
    ),
    (
        "evolution/connection-state-open.json",
        EVOLUTION_CONNECTION_STATE_OPEN,
    ),
    ("evolution/delete-response.json", EVOLUTION_DELETE_RESPONSE),
    ("evolution/error-400.json", EVOLUTION_ERROR_400),
    ("evolution/error-401.json", EVOLUTION_ERROR_401),
    (
        "evolution/error-403-name-in-use.json",
        EVOLUTION_ERROR_403_NAME_IN_USE,
    ),
    (
        "evolution/error-404-instance.json",
        EVOLUTION_ERROR_404_INSTANCE,
    ),
    (
        "evolution/fetch-instances-response.json",
        EVOLUTION_FETCH_INSTANCES_RESPONSE,
    ),
    (
        "evolution/instance-create-request.json",
        EVOLUTION_INSTANCE_CREATE_REQUEST,
    ),
    (
        "evolution/instance-create-response.json",
        EVOLUTION_INSTANCE_CREATE_RESPONSE,
    ),
    (
        "evolution/instance-create-with-chatwoot-request.json",
        EVOLUTION_INSTANCE_CREATE_WITH_CHATWOOT_REQUEST,
    ),
    ("evolution/logout-response.json", EVOLUTION_LOGOUT_RESPONSE),
    (
        "evolution/root-info-response.json",
        EVOLUTION_ROOT_INFO_RESPONSE,
    ),
    (
        "evolution/send-text-request.json",
        EVOLUTION_SEND_TEXT_REQUEST,
    ),
    (
        "evolution/send-text-response.json",
        EVOLUTION_SEND_TEXT_RESPONSE,
    ),
    (
        "evolution/webhook-connection-update-close.json",
        EVOLUTION_WEBHOOK_CONNECTION_UPDATE_CLOSE,
    ),
    (
        "evolution/webhook-connection-update-open.json",
        EVOLUTION_WEBHOOK_CONNECTION_UPDATE_OPEN,
    ),
    (
        "evolution/webhook-connection-update-refused.json",
        EVOLUTION_WEBHOOK_CONNECTION_UPDATE_REFUSED,
    ),
    (
        "evolution/webhook-logout-instance.json",
        EVOLUTION_WEBHOOK_LOGOUT_INSTANCE,
    ),
    (
        "evolution/webhook-messages-upsert.json",
        EVOLUTION_WEBHOOK_MESSAGES_UPSERT,
    ),
    (
        "evolution/webhook-qrcode-updated.json",
        EVOLUTION_WEBHOOK_QRCODE_UPDATED,
    ),
    (
        "evolution/webhook-set-request.json",
        EVOLUTION_WEBHOOK_SET_REQUEST,
    ),
    (
        "evolution/webhook-set-response.json",
        EVOLUTION_WEBHOOK_SET_RESPONSE,
    ),
    ("zapi/status-connected.json", ZAPI_STATUS_CONNECTED),
    ("zapi/status-disconnected.json", ZAPI_STATUS_DISCONNECTED),
    (
        "wppconnect/check-connection-connected.json",
        WPPCONNECT_CHECK_CONNECTION_CONNECTED,
    ),
    (
        "wppconnect/check-connection-disconnected.json",
        WPPCONNECT_CHECK_CONNECTION_DISCONNECTED,
    ),
    (
        "wppconnect/error-401-missing-token.json",
        WPPCONNECT_ERROR_401_MISSING_TOKEN,
    ),
    ("wppconnect/error-401.json", WPPCONNECT_ERROR_401),
    (
        "wppconnect/generate-token-response.json",
        WPPCONNECT_GENERATE_TOKEN_RESPONSE,
    ),
    (
        "wppconnect/generate-token-wrong-secret.json",
        WPPCONNECT_GENERATE_TOKEN_WRONG_SECRET,
    ),
    (
        "wppconnect/status-session-closed.json",
        WPPCONNECT_STATUS_SESSION_CLOSED,
    ),
    (
        "wppconnect/status-session-connected.json",
        WPPCONNECT_STATUS_SESSION_CONNECTED,
    ),
    (
        "wppconnect/status-session-qrcode.json",
        WPPCONNECT_STATUS_SESSION_QRCODE,
    ),
    ("uazapi/error-401.json", UAZAPI_ERROR_401),
    (
        "uazapi/instance-status-connected.json",
        UAZAPI_INSTANCE_STATUS_CONNECTED,
    ),
    (
        "uazapi/instance-status-disconnected.json",
        UAZAPI_INSTANCE_STATUS_DISCONNECTED,
    ),
    (
        "whatsapp-cloud/error-401-token.json",
        WHATSAPP_CLOUD_ERROR_401_TOKEN,
    ),
    (
        "whatsapp-cloud/phone-number-response.json",
        WHATSAPP_CLOUD_PHONE_NUMBER_RESPONSE,
    ),
    (
        "whatsapp-cloud/webhook-message.json",
        WHATSAPP_CLOUD_WEBHOOK_MESSAGE,
    ),
];

fn parse(text: &str) -> Value {
    // The fixtures are valid JSON (checked by the tests); `Null` only guards against a bad copy.
    serde_json::from_str(text).unwrap_or(Value::Null)
}

macro_rules! parsed {
    ($($name:ident = $text:ident;)*) => {
        $(pub(crate) static $name: LazyLock<Value> = LazyLock::new(|| parse($text));)*
    };
}

parsed! {
    EVO_STATE_OPEN = EVOLUTION_CONNECTION_STATE_OPEN;
    EVO_STATE_CONNECTING = EVOLUTION_CONNECTION_STATE_CONNECTING;
    EVO_STATE_CLOSE = EVOLUTION_CONNECTION_STATE_CLOSE;
    EVO_ERROR_400 = EVOLUTION_ERROR_400;
    EVO_ERROR_401 = EVOLUTION_ERROR_401;
    EVO_ERROR_403 = EVOLUTION_ERROR_403_NAME_IN_USE;
    EVO_ERROR_404 = EVOLUTION_ERROR_404_INSTANCE;
    EVO_FETCH = EVOLUTION_FETCH_INSTANCES_RESPONSE;
    EVO_CREATE = EVOLUTION_INSTANCE_CREATE_RESPONSE;
    EVO_ROOT = EVOLUTION_ROOT_INFO_RESPONSE;
    EVO_SEND_TEXT = EVOLUTION_SEND_TEXT_RESPONSE;
    EVO_WEBHOOK_OPEN = EVOLUTION_WEBHOOK_CONNECTION_UPDATE_OPEN;
    EVO_WEBHOOK_CLOSE = EVOLUTION_WEBHOOK_CONNECTION_UPDATE_CLOSE;
    EVO_WEBHOOK_REFUSED = EVOLUTION_WEBHOOK_CONNECTION_UPDATE_REFUSED;
    EVO_WEBHOOK_UPSERT = EVOLUTION_WEBHOOK_MESSAGES_UPSERT;
    EVO_WEBHOOK_QRCODE = EVOLUTION_WEBHOOK_QRCODE_UPDATED;
    ZAPI_CONNECTED = ZAPI_STATUS_CONNECTED;
    ZAPI_DISCONNECTED = ZAPI_STATUS_DISCONNECTED;
    WPP_CHECK_CONNECTED = WPPCONNECT_CHECK_CONNECTION_CONNECTED;
    WPP_CHECK_DISCONNECTED = WPPCONNECT_CHECK_CONNECTION_DISCONNECTED;
    WPP_ERROR_401_MISSING = WPPCONNECT_ERROR_401_MISSING_TOKEN;
    WPP_ERROR_401 = WPPCONNECT_ERROR_401;
    WPP_TOKEN = WPPCONNECT_GENERATE_TOKEN_RESPONSE;
    WPP_WRONG_SECRET = WPPCONNECT_GENERATE_TOKEN_WRONG_SECRET;
    WPP_CLOSED = WPPCONNECT_STATUS_SESSION_CLOSED;
    WPP_CONNECTED = WPPCONNECT_STATUS_SESSION_CONNECTED;
    WPP_QRCODE = WPPCONNECT_STATUS_SESSION_QRCODE;
    UAZ_ERROR_401 = UAZAPI_ERROR_401;
    UAZ_CONNECTED = UAZAPI_INSTANCE_STATUS_CONNECTED;
    UAZ_DISCONNECTED = UAZAPI_INSTANCE_STATUS_DISCONNECTED;
    CLOUD_ERROR_401 = WHATSAPP_CLOUD_ERROR_401_TOKEN;
    CLOUD_PHONE = WHATSAPP_CLOUD_PHONE_NUMBER_RESPONSE;
}
