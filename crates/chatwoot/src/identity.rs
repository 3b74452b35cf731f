//! SSO verification: [`ChatwootIdentity`] over `GET /api/v1/profile` and
//! `GET /auth/validate_token` (contract README section 2).

use async_trait::async_trait;
use serde::Deserialize;
use whatpro_iam::{
    AccountStatus, ChatwootCredential, ChatwootIdentity, ChatwootMembership, ChatwootProfile,
    ChatwootRole, IdentityError,
};
use whatpro_kernel::{AccountId, UserId};

use crate::client::{Auth, ChatwootClient};
use crate::error::ChatwootError;

/// The user's profile (personal API token or devise headers).
const PROFILE: &str = "/api/v1/profile";
/// devise_token_auth's session check.
const VALIDATE_TOKEN: &str = "/auth/validate_token";

/// `api/v1/models/_user.json.jbuilder`: the fields the Hub reads.
#[derive(Debug, Deserialize)]
struct UserBody {
    id: i64,
    email: Option<String>,
    uid: Option<String>,
    name: Option<String>,
    available_name: Option<String>,
    accounts: Option<Vec<AccountBody>>,
}

/// One `accounts[]` item.
#[derive(Debug, Deserialize)]
struct AccountBody {
    id: i64,
    name: Option<String>,
    status: Option<String>,
    role: Option<String>,
}

/// `GET /auth/validate_token` 200: `{"payload":{"success":true,"data":{<user>}}}`.
#[derive(Debug, Deserialize)]
struct ValidateTokenBody {
    payload: ValidatePayload,
}

#[derive(Debug, Deserialize)]
struct ValidatePayload {
    success: Option<bool>,
    data: UserBody,
}

/// `"active"` is active; anything else (including a missing status) is suspended.
fn account_status(status: Option<&str>) -> AccountStatus {
    match status {
        Some("active") => AccountStatus::Active,
        _ => AccountStatus::Suspended,
    }
}

/// `"administrator"` is administrator; anything else (agent, custom roles) is agent.
fn chatwoot_role(role: Option<&str>) -> ChatwootRole {
    match role {
        Some("administrator") => ChatwootRole::Administrator,
        _ => ChatwootRole::Agent,
    }
}

impl UserBody {
    fn memberships(&self) -> Vec<ChatwootMembership> {
        self.accounts
            .iter()
            .flatten()
            .map(|a| ChatwootMembership {
                account_id: AccountId::new(a.id),
                account_name: a.name.clone().unwrap_or_default(),
                status: account_status(a.status.as_deref()),
                role: chatwoot_role(a.role.as_deref()),
            })
            .collect()
    }

    /// The profile of this user with `accounts`.
    fn into_profile(
        self,
        accounts: Vec<ChatwootMembership>,
    ) -> Result<ChatwootProfile, ChatwootError> {
        let email = [self.email, self.uid]
            .into_iter()
            .flatten()
            .find(|e| !e.trim().is_empty())
            .ok_or_else(|| ChatwootError::Decode("the user has no email".to_owned()))?;
        let name = [self.name, self.available_name]
            .into_iter()
            .flatten()
            .find(|n| !n.trim().is_empty())
            .unwrap_or_default();
        Ok(ChatwootProfile {
            user_id: UserId::new(self.id),
            email,
            name,
            accounts,
        })
    }
}

impl ChatwootClient {
    /// The profile of the credential's user: with an API token from `GET /api/v1/profile`;
    /// with a devise session from `GET /auth/validate_token` (the user), then
    /// `GET /api/v1/profile` with the same headers (the authoritative `accounts[]`).
    ///
    /// Account status other than `active` is read as suspended; roles other than
    /// `administrator` (custom roles included) as agent.
    ///
    /// # Errors
    /// As [`ChatwootError`]: 401 → `Unauthorized`, no answer → `Unavailable`, other statuses
    /// → `Status`, unreadable bodies (or a profile of another user) → `Decode`.
    #[tracing::instrument(name = "chatwoot.profile", skip_all, fields(chatwoot.credential = kind(credential)))]
    pub async fn profile(
        &self,
        credential: &ChatwootCredential,
    ) -> Result<ChatwootProfile, ChatwootError> {
        let auth = Auth::from(credential);
        match credential {
            ChatwootCredential::AccessToken(_) => {
                let user: UserBody = self.get_json(PROFILE, auth).await?;
                let accounts = user.memberships();
                user.into_profile(accounts)
            }
            ChatwootCredential::Session { .. } => {
                let validated: ValidateTokenBody = self.get_json(VALIDATE_TOKEN, auth).await?;
                if validated.payload.success == Some(false) {
                    return Err(ChatwootError::Decode(
                        "validate_token answered 200 without success".to_owned(),
                    ));
                }
                let profile: UserBody = self.get_json(PROFILE, auth).await?;
                if profile.id != validated.payload.data.id {
                    return Err(ChatwootError::Decode(
                        "the profile belongs to another user than the session".to_owned(),
                    ));
                }
                validated.payload.data.into_profile(profile.memberships())
            }
        }
    }
}

fn kind(credential: &ChatwootCredential) -> &'static str {
    match credential {
        ChatwootCredential::AccessToken(_) => "api_access_token",
        ChatwootCredential::Session { .. } => "session",
    }
}

#[async_trait]
impl ChatwootIdentity for ChatwootClient {
    async fn verify(
        &self,
        credential: &ChatwootCredential,
    ) -> Result<ChatwootProfile, IdentityError> {
        self.profile(credential).await.map_err(IdentityError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::parse_json;

    fn parse(body: &str) -> Result<ChatwootProfile, ChatwootError> {
        let user: UserBody = parse_json(body.as_bytes())?;
        let accounts = user.memberships();
        user.into_profile(accounts)
    }

    #[test]
    fn maps_statuses_and_roles() {
        let p = parse(
            r#"{"id":5,"email":"c@x.example","name":"Carlos","access_token":"secret","accounts":[
                {"id":1,"name":"A","status":"active","role":"administrator","permissions":["administrator"]},
                {"id":2,"name":"B","status":"suspended","role":"agent"},
                {"id":3,"name":"C","status":"archived","role":"agent"},
                {"id":4,"name":"D","role":"custom_role_manager"},
                {"id":5,"name":null,"status":"active","role":null}
            ]}"#,
        )
        .unwrap();
        assert_eq!(p.user_id, UserId::new(5));
        assert_eq!(p.email, "c@x.example");
        assert_eq!(p.name, "Carlos");
        let got: Vec<_> = p
            .accounts
            .iter()
            .map(|m| {
                (
                    m.account_id.get(),
                    m.account_name.as_str(),
                    m.status,
                    m.role,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "A", AccountStatus::Active, ChatwootRole::Administrator),
                (2, "B", AccountStatus::Suspended, ChatwootRole::Agent),
                (3, "C", AccountStatus::Suspended, ChatwootRole::Agent),
                (4, "D", AccountStatus::Suspended, ChatwootRole::Agent),
                (5, "", AccountStatus::Active, ChatwootRole::Agent),
            ]
        );
    }

    #[test]
    fn falls_back_to_uid_and_available_name() {
        let p =
            parse(r#"{"id":7,"email":"","uid":"u@x.example","name":null,"available_name":"U"}"#)
                .unwrap();
        assert_eq!(p.email, "u@x.example");
        assert_eq!(p.name, "U");
        assert!(p.accounts.is_empty());
    }

    #[test]
    fn rejects_unusable_bodies() {
        for body in [
            r#"{"email":"a@x.example"}"#,
            r#"{"id":"5","email":"a@x.example"}"#,
            r#"{"id":5}"#,
            r#"{"id":5,"email":"a@x.example","accounts":[{"name":"no id"}]}"#,
            "[]",
            "<html></html>",
        ] {
            assert!(
                matches!(parse(body), Err(ChatwootError::Decode(_))),
                "{body}"
            );
        }
    }

    #[test]
    fn parses_validate_token_payload() {
        let body: ValidateTokenBody = parse_json(
            br#"{"payload":{"success":true,"data":{"id":5,"email":"c@x.example","name":"C","accounts":[]}}}"#,
        )
        .unwrap();
        assert_eq!(body.payload.success, Some(true));
        assert_eq!(body.payload.data.id, 5);
    }
}
