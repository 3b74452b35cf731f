//! An account's inboxes (contract README section 3) and the check that a token belongs to an
//! administrator of an account (section 2a), plus the inbox domain's [`ChatwootAccounts`] port
//! over them.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use whatpro_iam::{AccountStatus, ChatwootCredential, ChatwootProfile, ChatwootRole, TenantScope};
use whatpro_inbox::{ChatwootAccounts, ChatwootCallError, ChatwootInbox, ChatwootInboxId};
use whatpro_kernel::AccountId;

use crate::client::{Auth, ChatwootClient};
use crate::error::ChatwootError;

/// `GET /api/v1/accounts/{id}/inboxes` 200: `{"payload":[Inbox, ...]}`.
#[derive(Debug, Deserialize)]
struct InboxesBody {
    payload: Vec<Value>,
}

/// A numeric id, also when Chatwoot (or a proxy) renders it as a string.
fn id_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads one inbox leniently: `id` is required (a number, or a numeric string); `name` and
/// `channel_type` default to empty; every other key is ignored.
fn inbox_of(position: usize, value: &Value) -> Result<ChatwootInbox, ChatwootError> {
    let id = value.get("id").and_then(id_of).ok_or_else(|| {
        ChatwootError::Decode(format!(
            "inbox #{} of the payload has no numeric id",
            position + 1
        ))
    })?;
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_default()
    };
    Ok(ChatwootInbox {
        id: ChatwootInboxId::new(id),
        name: text("name"),
        channel_type: text("channel_type"),
    })
}

/// Parses an inboxes answer body.
///
/// # Errors
/// [`ChatwootError::Decode`] when the body is not `{"payload":[...]}` or an item has no id
/// (a partial list would mark the missing inboxes removed: better to fail the sync).
pub(crate) fn parse_inboxes(body: &[u8]) -> Result<Vec<ChatwootInbox>, ChatwootError> {
    let parsed: InboxesBody = crate::client::parse_json(body)?;
    parsed
        .payload
        .iter()
        .enumerate()
        .map(|(i, v)| inbox_of(i, v))
        .collect()
}

/// A token's user and their standing in one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountStanding {
    /// The user, with every membership.
    pub profile: ChatwootProfile,
    /// Their role in the account asked about, if they are a member.
    pub role: Option<ChatwootRole>,
    /// Whether that account is active.
    pub active: bool,
}

impl AccountStanding {
    /// Whether the user is an administrator of an active account.
    pub fn is_active_administrator(&self) -> bool {
        self.active && self.role == Some(ChatwootRole::Administrator)
    }
}

impl ChatwootClient {
    /// `GET /api/v1/accounts/{account}/inboxes` with an `api_access_token`: every inbox the
    /// token's user may see (all of them for an administrator). Retried once on timeouts and
    /// 502/503/504, like every GET.
    ///
    /// # Errors
    /// 401 → `Unauthorized`; other statuses → `Status`; unreadable → `Decode`; no answer →
    /// `Unavailable`.
    #[tracing::instrument(name = "chatwoot.inboxes.list", skip_all, fields(chatwoot.account_id = account.get()))]
    pub async fn list_inboxes(
        &self,
        token: &str,
        account: AccountId,
    ) -> Result<Vec<ChatwootInbox>, ChatwootError> {
        let path = format!("/api/v1/accounts/{}/inboxes", account.get());
        let body = self
            .send(reqwest::Method::GET, &path, Auth::ApiToken(token), None)
            .await?;
        parse_inboxes(&body)
    }

    /// Who `token` belongs to (`GET /api/v1/profile`) and their role in `account` (from
    /// `accounts[]`; custom roles count as agent).
    ///
    /// # Errors
    /// As [`ChatwootClient::profile`].
    #[tracing::instrument(name = "chatwoot.account_standing", skip_all, fields(chatwoot.account_id = account.get()))]
    pub async fn account_standing(
        &self,
        token: &str,
        account: AccountId,
    ) -> Result<AccountStanding, ChatwootError> {
        let profile = self
            .profile(&ChatwootCredential::AccessToken(token.to_owned()))
            .await?;
        let membership = profile.accounts.iter().find(|m| m.account_id == account);
        let role = membership.map(|m| m.role);
        let active = membership.is_some_and(|m| m.status == AccountStatus::Active);
        Ok(AccountStanding {
            profile,
            role,
            active,
        })
    }
}

impl From<ChatwootError> for ChatwootCallError {
    fn from(error: ChatwootError) -> Self {
        match error {
            ChatwootError::Unauthorized { message } => ChatwootCallError::Unauthorized(message),
            ChatwootError::Unavailable(reason) => {
                ChatwootCallError::Unavailable(format!("Chatwoot is unreachable: {reason}"))
            }
            other @ (ChatwootError::Config(_)
            | ChatwootError::Status { .. }
            | ChatwootError::Decode(_)) => ChatwootCallError::Upstream(other.to_string()),
        }
    }
}

#[async_trait]
impl ChatwootAccounts for ChatwootClient {
    async fn token_owner(
        &self,
        scope: &TenantScope,
        token: &str,
    ) -> Result<ChatwootProfile, ChatwootCallError> {
        Ok(self
            .account_standing(token, scope.account_id())
            .await?
            .profile)
    }

    async fn inboxes(
        &self,
        scope: &TenantScope,
        token: &str,
    ) -> Result<Vec<ChatwootInbox>, ChatwootCallError> {
        Ok(self.list_inboxes(token, scope.account_id()).await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn reads_the_shared_fixture() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/chatwoot/api/inboxes_index.json"
        );
        let body = std::fs::read(path).unwrap();
        let inboxes = parse_inboxes(&body).unwrap();
        assert!(!inboxes.is_empty());
        assert!(inboxes.iter().all(|i| !i.name.is_empty()));
        assert!(
            inboxes
                .iter()
                .any(|i| i.channel_type == "Channel::Whatsapp" || i.channel_type == "Channel::Api")
        );
    }

    #[test]
    fn is_lenient_about_everything_but_ids() {
        let inboxes = parse_inboxes(
            br#"{"payload":[{"id":1},{"id":"2","name":"B","channel_type":"Channel::Api","x":[1]}],"meta":{}}"#,
        )
        .unwrap();
        assert_eq!(inboxes[0].id, ChatwootInboxId::new(1));
        assert_eq!(inboxes[0].name, "");
        assert_eq!(inboxes[1].id, ChatwootInboxId::new(2));
        assert_eq!(inboxes[1].channel_type, "Channel::Api");
        assert!(parse_inboxes(br#"{"payload":[]}"#).unwrap().is_empty());
        for body in [
            &br#"{"payload":[{"name":"no id"}]}"#[..],
            br#"{"payload":[{"id":"x"}]}"#,
            br#"{"data":[]}"#,
            br#"[]"#,
            b"<html>",
        ] {
            assert!(
                matches!(parse_inboxes(body), Err(ChatwootError::Decode(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn maps_failures_for_the_inbox_domain() {
        assert_eq!(
            ChatwootCallError::from(ChatwootError::Unauthorized {
                message: Some("Invalid Access Token".into())
            }),
            ChatwootCallError::Unauthorized(Some("Invalid Access Token".into()))
        );
        assert!(matches!(
            ChatwootCallError::from(ChatwootError::Unavailable("timed out after 5000 ms".into())),
            ChatwootCallError::Unavailable(_)
        ));
        assert_eq!(
            ChatwootCallError::from(ChatwootError::Status {
                status: 404,
                message: Some("Resource could not be found".into())
            }),
            ChatwootCallError::Upstream(
                "Chatwoot answered 404 (Resource could not be found)".into()
            )
        );
        assert!(matches!(
            ChatwootCallError::from(ChatwootError::Decode("not JSON".into())),
            ChatwootCallError::Upstream(_)
        ));
    }
}
