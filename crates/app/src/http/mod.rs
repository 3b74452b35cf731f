//! The HTTP surface: the middleware stack, the route table and the OpenAPI document.

pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod embed;
pub mod entitlements;
pub mod error;
pub mod extract;
pub mod iam;
pub mod inbox;
pub mod instance_tokens;
pub mod observe;
pub mod ops;
pub mod platform;
pub mod providers;
pub mod request_id;
pub mod security;
pub mod tenancy;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, web};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
/// Route registration handle used by [`build_app_with`].
pub use utoipa_actix_web::service_config::ServiceConfig;

use crate::state::AppState;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "WhatPro Hub API",
        description = "Multi-tenant companion service for Chatwoot. Every error uses the ErrorBody schema."
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the `bearer` security scheme (PASETO access tokens).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("PASETO v4.local")
                    .build(),
            ),
        );
    }
}

/// Every documented route.
fn routes(cfg: &mut ServiceConfig) {
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(iam::sso)
        .service(iam::refresh)
        .service(iam::logout)
        .service(iam::me)
        .service(iam::list_sessions)
        .service(iam::revoke_session)
        .service(iam::revoke_other_sessions)
        .service(tenancy::list_members)
        .service(tenancy::change_role)
        .service(tenancy::list_audit)
        .service(tenancy::list_accounts)
        .service(api_keys::create_api_key)
        .service(api_keys::list_api_keys)
        .service(api_keys::rotate_api_key)
        .service(api_keys::revoke_api_key)
        .service(instance_tokens::issue_instance_token)
        .service(instance_tokens::validate_instance_token)
        .service(instance_tokens::revoke_instance_token)
        .service(embed::dashboard_script)
        .service(embed::app_page)
        .service(embed::app_script)
        .service(embed::app_style)
        .service(platform::config)
        .service(platform::events)
        .service(platform::register_dashboard_app)
        .service(inbox::put_connection)
        .service(inbox::get_connection)
        .service(inbox::delete_connection)
        .service(inbox::list_inboxes)
        .service(inbox::sync_inboxes)
        .service(inbox::list_sync_runs)
        .service(providers::create_provider)
        .service(providers::list_providers)
        .service(providers::get_provider)
        .service(providers::update_provider)
        .service(providers::delete_provider)
        .service(providers::create_instance)
        .service(providers::list_instances)
        .service(providers::get_instance)
        .service(providers::update_instance)
        .service(providers::delete_instance)
        .service(providers::health_history)
        .service(providers::probe_instance)
        .service(providers::provider_webhook)
        .service(entitlements::list_plans)
        .service(entitlements::save_plan)
        .service(entitlements::set_account_entitlements)
        .service(entitlements::get_entitlements)
        .service(entitlements::get_features)
        .service(entitlements::get_usage)
        .service(entitlements::get_active_users)
        .service(entitlements::admin_usage)
        .service(entitlements::update_settings)
        .service(billing::get_billing)
        .service(billing::subscribe)
        .service(billing::change_plan)
        .service(billing::cancel)
        .service(billing::asaas_webhook);
}

/// The OpenAPI document generated from the handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts()
        .1
}

/// The OpenAPI document as the pretty JSON committed in `docs/openapi.json`.
pub fn openapi_json() -> String {
    let mut text = openapi().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// The whole application: routes, extractor configuration and the middleware stack. `main`
/// and the tests use this same function.
pub fn build_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    build_app_with(state, |_| {})
}

/// [`build_app`] plus extra routes: tests use it to mount probe handlers behind the very same
/// middleware and extractor configuration (`build_app` is this with no extra routes).
pub fn build_app_with(
    state: AppState,
    extra_routes: impl FnOnce(&mut ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.config.body_limit;
    let policy = security::SecurityPolicy::from_config(&state.config);
    let embed_assets = embed::EmbedAssets::from_config(&state.config);
    let (app, api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .configure(extra_routes)
        .split_for_parts();
    let spec_json = api.to_pretty_json().unwrap_or_default();
    let docs_html = utoipa_scalar::Scalar::new(api)
        .title("WhatPro Hub API")
        .to_html();

    app.app_data(web::Data::new(state))
        .app_data(web::Data::new(policy))
        .app_data(web::Data::new(embed_assets))
        .app_data(extract::json_config(limit))
        .app_data(extract::payload_config(limit))
        .app_data(extract::path_config())
        .app_data(extract::query_config())
        .route(
            OPENAPI_PATH,
            web::get().to(move || {
                let body = spec_json.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }),
        )
        .route(
            "/docs",
            web::get().to(move || {
                let body = docs_html.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(body)
                }
            }),
        )
        .default_service(web::to(extract::fallback))
        .wrap(from_fn(extract::reject_oversized))
        .wrap(from_fn(security::cors))
        .wrap(from_fn(observe::normalize_errors))
        .wrap(from_fn(security::headers))
        .wrap(from_fn(observe::access_log))
        .wrap(from_fn(request_id::assign))
}
