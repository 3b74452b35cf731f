//! Account members, the audit log and the super_admin account list.

use actix_web::{HttpRequest, get, patch, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use whatpro_iam::{Action, Role};
use whatpro_kernel::{AccountId, Cursor, Limit, UserId};
use whatpro_tenancy::{AccountSummary, AuditEntry, AuditQuery, Member, RoleChange, TenancyError};

use super::auth::{Authed, Caller, ClientInfo, policy};
use super::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageParams {
    /// Page size (default 50, at most 200).
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// `?action=&limit=&cursor=`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditParams {
    /// Only this action, e.g. `auth.login`.
    pub action: Option<String>,
    /// Page size (default 50, at most 200).
    pub limit: Option<u32>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A list page.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListPage<T> {
    /// Items.
    pub data: Vec<T>,
    /// Where the next page starts; null on the last page.
    pub next_cursor: Option<String>,
}

/// A member of the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// Chatwoot user id.
    pub user_id: i64,
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Hub role: admin, supervisor, agent or viewer.
    pub role: String,
    /// Chatwoot role: administrator or agent.
    pub chatwoot_role: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<Member> for MemberView {
    fn from(m: Member) -> Self {
        let ts = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        Self {
            user_id: m.user_id.get(),
            email: m.email,
            name: m.name,
            role: m.role.to_string(),
            chatwoot_role: m.chatwoot_role.as_str().to_owned(),
            created_at: ts(m.created_at),
            updated_at: ts(m.updated_at),
        }
    }
}

/// `PATCH .../members/{user_id}`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RoleBody {
    /// admin, supervisor, agent or viewer.
    pub role: String,
}

/// Who did an audited thing.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditActorView {
    /// user, api_key or system.
    #[serde(rename = "type")]
    pub kind: String,
    /// The user id or key id; null for system.
    #[schema(value_type = Option<Object>)]
    pub id: Option<serde_json::Value>,
}

/// An audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Id.
    pub id: Uuid,
    /// Dotted action, e.g. `auth.login`.
    pub action: String,
    /// Who.
    pub actor: AuditActorView,
    /// What.
    pub target: Option<String>,
    /// Extra facts.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The request that did it.
    pub request_id: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        use whatpro_tenancy::AuditActor;
        let actor = match e.actor {
            AuditActor::User(id) => AuditActorView {
                kind: "user".into(),
                id: Some(id.into()),
            },
            AuditActor::ApiKey(id) => AuditActorView {
                kind: "api_key".into(),
                id: Some(id.to_string().into()),
            },
            AuditActor::System => AuditActorView {
                kind: "system".into(),
                id: None,
            },
        };
        Self {
            id: e.id,
            action: e.action,
            actor,
            target: e.target,
            metadata: e.metadata,
            request_id: e.request_id,
            created_at: e
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }
    }
}

/// An account, for super_admins.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSummaryView {
    /// Chatwoot account id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// active or suspended.
    pub status: String,
    /// Members the Hub knows.
    pub members: i64,
    /// RFC 3339.
    pub created_at: String,
}

impl From<AccountSummary> for AccountSummaryView {
    fn from(a: AccountSummary) -> Self {
        Self {
            id: a.id.get(),
            name: a.name,
            status: a.status.as_str().to_owned(),
            members: a.members,
            created_at: a
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        }
    }
}

fn invalid_cursor() -> ApiError {
    ApiError::bad_request("invalid_cursor", "the cursor is not one this server issued")
}

fn decode_cursor<T: std::str::FromStr>(cursor: Option<&str>) -> Result<Option<T>, ApiError> {
    cursor
        .map(|c| {
            Cursor::decode(c)
                .ok()
                .and_then(|key| key.parse().ok())
                .ok_or_else(invalid_cursor)
        })
        .transpose()
}

/// Members of the account, ordered by user id.
#[utoipa::path(
    tag = "members",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), PageParams),
    responses((status = 200, body = ListPage<MemberView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/members")]
pub async fn list_members(
    auth: Authed<policy::MembersRead>,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<ListPage<MemberView>>, ApiError> {
    let after = decode_cursor::<i64>(params.cursor.as_deref())?.map(UserId::new);
    let page = state
        .tenancy
        .list_members(&auth.scope, after, Limit::clamped(params.limit))
        .await?;
    Ok(web::Json(ListPage {
        next_cursor: page
            .next_after
            .map(|id| Cursor::encode(&id.get().to_string()).as_str().to_owned()),
        data: page.members.into_iter().map(MemberView::from).collect(),
    }))
}

/// Changes a member's Hub role (admins; never super_admin; never the last admin).
#[utoipa::path(
    tag = "members",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), ("user_id" = i64, Path, description = "Chatwoot user id")),
    request_body = RoleBody,
    responses(
        (status = 200, body = MemberView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody, description = "`member_not_found`"),
        (status = 409, body = ErrorBody, description = "`last_admin`"), (status = 422, body = ErrorBody, description = "`invalid_role`"),
    ),
    security(("bearer" = []))
)]
#[patch("/api/v1/accounts/{account_id}/members/{user_id}")]
pub async fn change_role(
    req: HttpRequest,
    auth: Authed<policy::MembersWrite>,
    state: web::Data<AppState>,
    path: web::Path<(i64, i64)>,
    body: web::Json<RoleBody>,
) -> Result<web::Json<MemberView>, ApiError> {
    let (_, user_id) = path.into_inner();
    let role: Role = body
        .role
        .parse()
        .map_err(|e: whatpro_iam::RoleParseError| TenancyError::InvalidRole(e.to_string()))?;
    let client = ClientInfo::of(&req, state.config.trust_forwarded_for);
    let change = RoleChange {
        user_id: UserId::new(user_id),
        role,
        audit: client.audit,
    };
    let member = state.tenancy.change_role(&auth.scope, change).await?;
    Ok(web::Json(member.into()))
}

/// The account's audit log, newest first.
#[utoipa::path(
    tag = "audit",
    params(("account_id" = i64, Path, description = "Chatwoot account id"), AuditParams),
    responses((status = 200, body = ListPage<AuditView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/v1/accounts/{account_id}/audit")]
pub async fn list_audit(
    auth: Authed<policy::AuditRead>,
    state: web::Data<AppState>,
    params: web::Query<AuditParams>,
) -> Result<web::Json<ListPage<AuditView>>, ApiError> {
    let before = decode_cursor::<Uuid>(params.cursor.as_deref())?;
    let query = AuditQuery {
        action: params.action.clone(),
        limit: Limit::clamped(params.limit),
        before,
    };
    let (entries, more) = state.tenancy.list_audit(&auth.scope, query).await?;
    let next_cursor = if more {
        entries
            .last()
            .map(|e| Cursor::encode(&e.id.to_string()).as_str().to_owned())
    } else {
        None
    };
    Ok(web::Json(ListPage {
        data: entries.into_iter().map(AuditView::from).collect(),
        next_cursor,
    }))
}

/// Every account the Hub knows (super_admin).
#[utoipa::path(
    tag = "admin",
    params(PageParams),
    responses((status = 200, body = ListPage<AccountSummaryView>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
#[get("/api/v1/admin/accounts")]
pub async fn list_accounts(
    caller: Caller,
    state: web::Data<AppState>,
    params: web::Query<PageParams>,
) -> Result<web::Json<ListPage<AccountSummaryView>>, ApiError> {
    let scope = state.iam.platform_scope(&caller.0, Action::PlatformRead)?;
    let after = decode_cursor::<i64>(params.cursor.as_deref())?.map(AccountId::new);
    let (accounts, more) = state
        .tenancy
        .list_accounts(&scope, after, Limit::clamped(params.limit))
        .await?;
    let next_cursor = if more {
        accounts
            .last()
            .map(|a| Cursor::encode(&a.id.get().to_string()).as_str().to_owned())
    } else {
        None
    };
    Ok(web::Json(ListPage {
        data: accounts.into_iter().map(AccountSummaryView::from).collect(),
        next_cursor,
    }))
}
