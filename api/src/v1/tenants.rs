//! Tenants: created by the platform, each with a first admin user and key.

use aura_engine::ids::{TenantId, UserId};
use aura_engine::machine::{CommandBody, SigningSeed, TenantState};
use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::created;
use super::keys::{KeyCreated, mint_key};
use crate::auth::{Member, PlatformScope, Role, TenantScope};
use crate::error;
use crate::json::Body;
use crate::problem::{Problem, ProblemKind};
use crate::server::AppState;
use crate::store::directory::User;
use crate::time::now;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1 to 128 characters from a-z, 0-9, '-', '_' and '.'.
    pub id: String,
    pub display_name: String,
    /// The tenant's first administrator, created in its directory with id
    /// `admin` unless given.
    #[serde(default)]
    pub admin: Option<FirstAdmin>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstAdmin {
    pub user_id: String,
    pub user_name: String,
    pub display_name: String,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Tenant {
    pub id: String,
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
    /// The tenant's Ed25519 public key (base64), which signs its
    /// credentials, tokens and audit checkpoints.
    pub public_key: String,
    pub namespaces: usize,
}

impl From<&TenantState> for Tenant {
    fn from(t: &TenantState) -> Tenant {
        Tenant {
            id: t.id().to_string(),
            display_name: t.display_name().to_owned(),
            created_at: t.created_at().to_rfc3339(),
            public_key: t.public_key().to_base64(),
            namespaces: t.namespaces().len(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: Tenant,
    /// The first admin's key. Its `key` is shown this once.
    pub admin_key: KeyCreated,
}

/// Creates a tenant with its first admin user and API key.
#[utoipa::path(post, operation_id = "tenants_create", path = "/v1/tenants", tag = "tenants",
    security(("api_key" = [])),
    request_body = CreateTenant,
    responses(
        (status = 201, description = "Created", body = TenantCreated),
        (status = 409, description = "The tenant exists", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    scope: PlatformScope,
    State(state): State<AppState>,
    Body(req): Body<CreateTenant>,
) -> Result<Response, Problem> {
    let tenant = TenantId::new(req.id).map_err(|e| Problem::invalid("/id", e.to_string()))?;
    let admin = req.admin.unwrap_or_else(|| FirstAdmin {
        user_id: "admin".into(),
        user_name: "admin".into(),
        display_name: "Administrator".into(),
        email: None,
    });
    let admin_id = UserId::new(admin.user_id)
        .map_err(|e| Problem::invalid("/admin/user_id", e.to_string()))?;
    super::directory::check_text("/admin/user_name", &admin.user_name)?;
    super::directory::check_text("/admin/display_name", &admin.display_name)?;
    if state.app.read_local(|s| s.tenant(&tenant).is_some()) {
        return Err(Problem::new(
            ProblemKind::Conflict,
            format!("tenant `{tenant}` already exists"),
        ));
    }
    // The directory rows first: if the engine then refuses, they are
    // removed again; the reverse order could leave a tenant nobody can
    // administer.
    let at = now();
    let user = state
        .app
        .store()
        .insert_user(User {
            tenant: tenant.to_string(),
            id: admin_id.to_string(),
            user_name: admin.user_name,
            display_name: admin.display_name,
            email: admin.email,
            active: true,
            created_at: at.as_millis(),
        })
        .await
        .map_err(error::store)?;
    // Undoes only what this request wrote: a concurrent creation of the
    // same tenant that won must keep its directory.
    let undo = async |state: &AppState, key: Option<&str>| {
        if let Some(k) = key
            && let Err(e) = state.app.store().delete_key(k).await
        {
            tracing::error!(error = %e, "cannot remove the key of a tenant that was not created");
        }
        if let Err(e) = state.app.store().delete_user(&user.tenant, &user.id).await {
            tracing::error!(error = %e, "cannot remove the admin of a tenant that was not created");
        }
    };
    let key = match mint_key(
        &state,
        &tenant,
        &admin_id,
        "first admin".into(),
        vec![Role::Admin],
        None,
    )
    .await
    {
        Ok(k) => k,
        Err(p) => {
            undo(&state, None).await;
            return Err(p);
        }
    };
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the OS random source works");
    let body = CommandBody::CreateTenant {
        display_name: req.display_name,
        signing_key_seed: SigningSeed(seed),
    };
    if let Err(p) = state.app.propose(&tenant, scope.caller.actor(), body).await {
        undo(&state, Some(&key.id)).await;
        return Err(p.into());
    }
    let view = state
        .app
        .read_local(|s| s.tenant(&tenant).map(Tenant::from))
        .ok_or_else(|| Problem::new(ProblemKind::Internal, "the tenant vanished"))?;
    Ok(created(
        format!("/v1/tenants/{tenant}"),
        &TenantCreated {
            tenant: view,
            admin_key: key,
        },
    ))
}

/// Lists all tenants.
#[utoipa::path(get, operation_id = "tenants_list", path = "/v1/tenants", tag = "tenants",
    security(("api_key" = [])),
    responses((status = 200, description = "Tenants", body = Vec<Tenant>)))]
pub async fn list(_: PlatformScope, State(state): State<AppState>) -> Json<Vec<Tenant>> {
    Json(
        state
            .app
            .read_local(|s| s.tenants().map(Tenant::from).collect()),
    )
}

/// Shows the caller's tenant.
#[utoipa::path(get, operation_id = "tenants_get", path = "/v1/tenants/{tenant}", tag = "tenants",
    security(("api_key" = [])),
    params(("tenant" = String, Path)),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    scope: TenantScope<Member>,
    State(state): State<AppState>,
) -> Result<Json<Tenant>, Problem> {
    Ok(Json(scope.read(&state.app, |t| Tenant::from(t))?))
}
