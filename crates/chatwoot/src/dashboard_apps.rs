//! Chatwoot's Dashboard Apps API (contract README section 5a): list and create an account's
//! iframe tabs, and the [`ChatwootDashboardApps`] port of `whatpro-tenancy` over them.

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use whatpro_iam::{ChatwootCredential, TenantScope};
use whatpro_kernel::AccountId;
use whatpro_tenancy::{ChatwootDashboardApps, DashboardApp, DashboardAppError, NewDashboardApp};

use crate::client::{Auth, ChatwootClient, parse_json};
use crate::error::ChatwootError;

/// `app/views/api/v1/models/_dashboard_app.json.jbuilder`.
#[derive(Debug, Deserialize)]
struct DashboardAppBody {
    id: i64,
    title: Option<String>,
    content: Option<Value>,
    created_at: Option<Value>,
}

impl From<DashboardAppBody> for DashboardApp {
    fn from(body: DashboardAppBody) -> Self {
        DashboardApp {
            id: body.id,
            title: body.title.unwrap_or_default(),
            content: body.content.unwrap_or(Value::Null),
            created_at: body.created_at.unwrap_or(Value::Null),
        }
    }
}

fn path(account: AccountId) -> String {
    format!("/api/v1/accounts/{}/dashboard_apps", account.get())
}

impl ChatwootClient {
    /// `GET /api/v1/accounts/{account}/dashboard_apps`: the account's dashboard apps.
    ///
    /// # Errors
    /// As [`ChatwootError`]: a refused credential (also a non-member or a suspended account)
    /// is `Unauthorized`.
    #[tracing::instrument(name = "chatwoot.dashboard_apps.list", skip_all, fields(chatwoot.account_id = account.get()))]
    pub async fn dashboard_apps(
        &self,
        credential: &ChatwootCredential,
        account: AccountId,
    ) -> Result<Vec<DashboardApp>, ChatwootError> {
        let apps: Vec<DashboardAppBody> = self
            .get_json(&path(account), Auth::from(credential))
            .await?;
        Ok(apps.into_iter().map(DashboardApp::from).collect())
    }

    /// `POST /api/v1/accounts/{account}/dashboard_apps` with
    /// `{"dashboard_app":{"title", "content":[{"type":"frame","url"}]}}` (administrators
    /// only). Not retried: it is not idempotent.
    ///
    /// # Errors
    /// As [`ChatwootError`]: an agent's credential is `Unauthorized` (Chatwoot refuses policy
    /// violations with 401); an invalid URL is `Status { status: 422, .. }`.
    #[tracing::instrument(name = "chatwoot.dashboard_apps.create", skip_all, fields(chatwoot.account_id = account.get()))]
    pub async fn create_dashboard_app(
        &self,
        credential: &ChatwootCredential,
        account: AccountId,
        app: &NewDashboardApp,
    ) -> Result<DashboardApp, ChatwootError> {
        let body = json!({
            "dashboard_app": {
                "title": app.title,
                "content": [{ "type": "frame", "url": app.frame_url }],
            }
        });
        let answer = self
            .send(
                Method::POST,
                &path(account),
                Auth::from(credential),
                Some(&body),
            )
            .await?;
        let created: DashboardAppBody = parse_json(&answer)?;
        Ok(created.into())
    }
}

impl From<ChatwootError> for DashboardAppError {
    fn from(error: ChatwootError) -> Self {
        match error {
            ChatwootError::Unauthorized { message } => {
                DashboardAppError::CredentialsInvalid(message)
            }
            ChatwootError::Unavailable(reason) => DashboardAppError::Unavailable(reason),
            other @ (ChatwootError::Config(_)
            | ChatwootError::Status { .. }
            | ChatwootError::Decode(_)) => DashboardAppError::Upstream(other.to_string()),
        }
    }
}

#[async_trait]
impl ChatwootDashboardApps for ChatwootClient {
    async fn list(
        &self,
        scope: &TenantScope,
        credential: &ChatwootCredential,
    ) -> Result<Vec<DashboardApp>, DashboardAppError> {
        Ok(self.dashboard_apps(credential, scope.account_id()).await?)
    }

    async fn create(
        &self,
        scope: &TenantScope,
        credential: &ChatwootCredential,
        app: &NewDashboardApp,
    ) -> Result<DashboardApp, DashboardAppError> {
        Ok(self
            .create_dashboard_app(credential, scope.account_id(), app)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn reads_the_fixture_shape() {
        let apps: Vec<DashboardAppBody> = parse_json(
            br#"[{"id":1,"title":"WhatPro Kanban","content":[{"type":"frame","url":"https://hub.whatpro.example/embed/kanban"}],"created_at":"2026-01-19T14:10:00.000Z"}]"#,
        )
        .unwrap();
        let app = DashboardApp::from(apps.into_iter().next().unwrap());
        assert_eq!(app.id, 1);
        assert_eq!(app.title, "WhatPro Kanban");
        assert!(app.frames("https://hub.whatpro.example/embed/kanban"));
        assert_eq!(app.created_at, json!("2026-01-19T14:10:00.000Z"));
    }

    #[test]
    fn maps_failures() {
        assert_eq!(
            DashboardAppError::from(ChatwootError::Unauthorized {
                message: Some("You are not authorized to do this action".into())
            }),
            DashboardAppError::CredentialsInvalid(Some(
                "You are not authorized to do this action".into()
            ))
        );
        assert!(matches!(
            DashboardAppError::from(ChatwootError::Unavailable("x".into())),
            DashboardAppError::Unavailable(_)
        ));
        assert!(matches!(
            DashboardAppError::from(ChatwootError::Status {
                status: 422,
                message: None
            }),
            DashboardAppError::Upstream(_)
        ));
    }
}
