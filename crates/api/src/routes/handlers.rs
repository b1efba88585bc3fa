//! Handler definitions, package uploads, reviews and activation.
//!
//! An upload is checked completely (ownership, version order, archive, manifest, component)
//! before anything is stored, so a rejected upload leaves nothing behind. Versions only go up and
//! are never overwritten; the store settles concurrent uploads of one version.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use mh_blobs::Digest;
use mh_package::{Manifest, Version};
use mh_store::{
    HandlerDefinition, HandlerVersion, Review, StoreError, VersionInsert, VersionStatus,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authenticate::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Body, Json};
use crate::state::AppState;

const MAX_NAME: usize = 100;
const MAX_DESCRIPTION: usize = 4000;

/// The routes of this module; the upload route gets its own (larger) body limit.
pub fn routes(upload_limit: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/handlers/definitions",
            post(create_definition).get(list_definitions),
        )
        .route("/handlers/definitions/{definitionid}", get(show_definition))
        .route("/handlers/{definitionid}", patch(update_definition))
        .route(
            "/handlers/definitions/{definitionid}/activate",
            post(activate),
        )
        .route(
            "/handlers/definitions/{definitionid}/{version}",
            get(show_version),
        )
        .route(
            "/handlers/definitions/{definitionid}/{version}/package",
            post(upload_package)
                .layer(DefaultBodyLimit::max(upload_limit))
                .get(download_package),
        )
        .route(
            "/handlers/definitions/{definitionid}/{version}/review",
            post(review),
        )
        .route("/reviews", get(pending_reviews))
}

#[derive(Deserialize, ToSchema)]
pub struct NewDefinition {
    /// Unique among the account's definitions; 1 to 100 characters.
    name: String,
    #[serde(default)]
    description: String,
    /// Whether every account may see and use the definition; false unless set.
    #[serde(default)]
    public: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct DefinitionUpdate {
    /// Whether every account may see and use the definition. Required.
    #[schema(value_type = bool, required = true)]
    public: Option<bool>,
}

/// One configuration field of a version, as the original platform listed it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationFieldView {
    /// The handler version the field belongs to.
    version: String,
    name: String,
    /// `string`, `integer`, `number` or `boolean`.
    field_type: String,
    /// The value names one of the handler's output subjects.
    is_output_subject: bool,
    required: bool,
    /// Default value in text form, as configuration values are kept.
    default: Option<String>,
    description: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewView {
    /// Reviewing account; null when the server accepted on upload (`--review auto`).
    reviewer: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    reviewed_at: OffsetDateTime,
    comment: String,
}

/// One uploaded version of a definition.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    /// The definition's identifier.
    identifier: Uuid,
    /// The definition's name.
    name: String,
    description: String,
    version: String,
    /// `wasm-component`.
    runtime: String,
    /// Version of the messagehandler:handler world the component implements.
    runtime_version: String,
    /// Identifier of the owning account.
    owner: Uuid,
    /// Where the package zip can be downloaded (owner and reviewers).
    package: String,
    /// `Pending`, `Accepted` or `Rejected`.
    status: String,
    configuration: Vec<ConfigurationFieldView>,
    output_subjects: Vec<String>,
    /// SHA-256 of the package zip, hex.
    package_sha256: String,
    package_size: u64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    uploaded_at: OffsetDateTime,
    /// The reviewer's decision; null while pending.
    review: Option<ReviewView>,
    /// Whether this is the definition's active version.
    active: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionView {
    identifier: Uuid,
    name: String,
    description: String,
    owner: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// The version used when the handler is added to a channel without one.
    active_version: Option<String>,
    /// Whether every account may see and use the definition.
    public: bool,
    /// Every uploaded version, lowest first.
    versions: Vec<VersionView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Accept,
    Reject,
}

#[derive(Deserialize, ToSchema)]
pub struct ReviewRequest {
    /// `accept` or `reject`.
    decision: Decision,
    #[serde(default)]
    comment: String,
}

#[derive(Deserialize, ToSchema)]
pub struct ActivateRequest {
    /// An `Accepted` version of the definition.
    version: String,
}

fn version_view(
    definition: &HandlerDefinition,
    version: &HandlerVersion,
) -> ApiResult<VersionView> {
    let manifest: Manifest = serde_json::from_str(&version.manifest).map_err(|e| {
        ApiError::from(StoreError::Corrupt(format!(
            "manifest of {} {}: {e}",
            definition.id, version.version
        )))
    })?;
    let configuration = manifest
        .configuration
        .into_iter()
        .map(|field| ConfigurationFieldView {
            version: version.version.clone(),
            name: field.name,
            field_type: field.field_type.as_str().to_string(),
            is_output_subject: field.output_subject,
            required: field.required,
            default: field.default,
            description: field.description,
        })
        .collect();
    Ok(VersionView {
        identifier: definition.id,
        name: definition.name.clone(),
        description: definition.description.clone(),
        version: version.version.clone(),
        runtime: manifest.runtime,
        runtime_version: manifest.runtime_version,
        owner: definition.account_id,
        package: format!(
            "/handlers/definitions/{}/{}/package",
            definition.id, version.version
        ),
        status: version.status.as_str().to_string(),
        configuration,
        output_subjects: manifest.output_subjects,
        package_sha256: version.package_digest.clone(),
        package_size: version.package_size,
        uploaded_at: version.uploaded_at,
        review: version.review.as_ref().map(|review| ReviewView {
            reviewer: review.reviewer,
            reviewed_at: review.at,
            comment: review.comment.clone(),
        }),
        active: definition.active_version.as_deref() == Some(version.version.as_str()),
    })
}

async fn definition_view(
    state: &AppState,
    definition: &HandlerDefinition,
) -> ApiResult<DefinitionView> {
    let versions = state
        .store
        .versions_of(definition.id)
        .await?
        .iter()
        .map(|version| version_view(definition, version))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(DefinitionView {
        identifier: definition.id,
        name: definition.name.clone(),
        description: definition.description.clone(),
        owner: definition.account_id,
        created_at: definition.created_at,
        active_version: definition.active_version.clone(),
        public: definition.public,
        versions,
    })
}

fn definition_not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("no handler definition {id}"))
}

/// Any definition, whoever owns it; a malformed identifier cannot name one.
async fn find_definition(state: &AppState, id: &str) -> ApiResult<HandlerDefinition> {
    let uuid = Uuid::parse_str(id).map_err(|_| definition_not_found(id))?;
    state
        .store
        .definition(uuid)
        .await?
        .ok_or_else(|| definition_not_found(id))
}

/// The caller's definition; someone else's answers 404 like a missing one.
async fn owned_definition(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<HandlerDefinition> {
    let definition = find_definition(state, id).await?;
    if definition.account_id != caller.account {
        return Err(definition_not_found(id));
    }
    Ok(definition)
}

fn parse_version(text: &str) -> ApiResult<Version> {
    text.parse::<Version>()
        .map_err(|e| ApiError::bad_request("invalid_version", e.to_string()))
}

async fn find_version(
    state: &AppState,
    definition: &HandlerDefinition,
    text: &str,
) -> ApiResult<HandlerVersion> {
    let version = parse_version(text)?;
    state
        .store
        .version(definition.id, &version.sort_key())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "handler definition {} has no version {text}",
                definition.id
            ))
        })
}

async fn require_reviewer(state: &AppState, caller: &Caller) -> ApiResult<()> {
    let reviewer = state
        .store
        .account(caller.account)
        .await?
        .is_some_and(|account| account.reviewer);
    if !reviewer {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only reviewer accounts can review handler versions",
        ));
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/handlers/definitions",
    tag = "handlers",
    security(("bearer" = [])),
    request_body = NewDefinition,
    responses(
        (status = 201, description = "The new definition, without versions", body = DefinitionView),
        (status = 400, description = "Invalid name or description", body = ErrorBody),
        (status = 409, description = "The account already has a definition with this name", body = ErrorBody),
    )
)]
pub async fn create_definition(
    State(state): State<AppState>,
    caller: Caller,
    Json(request): Json<NewDefinition>,
) -> ApiResult<(StatusCode, axum::Json<DefinitionView>)> {
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("a definition name must be 1 to {MAX_NAME} characters"),
        ));
    }
    if request.description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::bad_request(
            "invalid_description",
            format!("a description must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    let definition = HandlerDefinition {
        id: Uuid::new_v4(),
        account_id: caller.account,
        name: name.to_string(),
        description: request.description,
        active_version: None,
        public: request.public,
        created_at: OffsetDateTime::now_utc(),
    };
    state.store.create_definition(&definition).await?;
    let view = definition_view(&state, &definition).await?;
    Ok((StatusCode::CREATED, axum::Json(view)))
}

#[utoipa::path(
    get,
    path = "/handlers/definitions",
    tag = "handlers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One entry per uploaded version of the caller's definitions", body = [VersionView]),
    )
)]
pub async fn list_definitions(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<VersionView>>> {
    let mut views = Vec::new();
    for definition in state.store.definitions_of(caller.account).await? {
        for version in state.store.versions_of(definition.id).await? {
            views.push(version_view(&definition, &version)?);
        }
    }
    Ok(axum::Json(views))
}

#[utoipa::path(
    get,
    path = "/handlers/definitions/{definitionid}",
    tag = "handlers",
    security(("bearer" = [])),
    params(("definitionid" = String, Path, description = "Definition identifier")),
    responses(
        (status = 200, description = "The definition with all its versions", body = DefinitionView),
        (status = 404, description = "No such definition of the caller", body = ErrorBody),
    )
)]
pub async fn show_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DefinitionView>> {
    let definition = owned_definition(&state, &caller, &id).await?;
    Ok(axum::Json(definition_view(&state, &definition).await?))
}

#[utoipa::path(
    patch,
    path = "/handlers/{definitionid}",
    tag = "handlers",
    security(("bearer" = [])),
    params(("definitionid" = String, Path, description = "Definition identifier")),
    request_body = DefinitionUpdate,
    responses(
        (status = 200, description = "The definition with its new setting", body = DefinitionView),
        (status = 400, description = "The body does not set `public`", body = ErrorBody),
        (status = 404, description = "No such definition of the caller", body = ErrorBody),
    )
)]
pub async fn update_definition(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<DefinitionUpdate>,
) -> ApiResult<axum::Json<DefinitionView>> {
    let definition = owned_definition(&state, &caller, &id).await?;
    let Some(public) = request.public else {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must set \"public\" to true or false",
        ));
    };
    if !state
        .store
        .set_definition_public(definition.id, public)
        .await?
    {
        return Err(definition_not_found(&id));
    }
    let definition = owned_definition(&state, &caller, &id).await?;
    Ok(axum::Json(definition_view(&state, &definition).await?))
}

#[utoipa::path(
    get,
    path = "/handlers/definitions/{definitionid}/{version}",
    tag = "handlers",
    security(("bearer" = [])),
    params(
        ("definitionid" = String, Path, description = "Definition identifier"),
        ("version" = String, Path, description = "Version, e.g. 1.0.0.0"),
    ),
    responses(
        (status = 200, description = "The version", body = VersionView),
        (status = 400, description = "Malformed version", body = ErrorBody),
        (status = 404, description = "No such definition of the caller, or no such version", body = ErrorBody),
    )
)]
pub async fn show_version(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<axum::Json<VersionView>> {
    let definition = owned_definition(&state, &caller, &id).await?;
    let version = find_version(&state, &definition, &version).await?;
    Ok(axum::Json(version_view(&definition, &version)?))
}

fn is_zip(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/zip"))
}

fn version_conflict(outcome: VersionInsert, version: &Version) -> ApiError {
    match outcome {
        VersionInsert::NotIncreasing { highest } => ApiError::new(
            StatusCode::CONFLICT,
            "version_not_increasing",
            format!("version {version} is not higher than the current highest version {highest}; versions only go up"),
        ),
        _ => ApiError::new(
            StatusCode::CONFLICT,
            "version_exists",
            format!("version {version} was already uploaded; an uploaded version is never overwritten, upload a higher one"),
        ),
    }
}

#[utoipa::path(
    post,
    path = "/handlers/definitions/{definitionid}/{version}/package",
    tag = "handlers",
    security(("bearer" = [])),
    params(
        ("definitionid" = String, Path, description = "Definition identifier"),
        ("version" = String, Path, description = "New version: 1 to 4 dot-separated numbers, higher than every uploaded one"),
    ),
    request_body(content = Vec<u8>, content_type = "application/zip", description = "The package: handler.toml and the component it names"),
    responses(
        (status = 200, description = "The new version, Pending (Accepted with --review auto)", body = VersionView),
        (status = 400, description = "Malformed version, or an unreadable or unsafe zip", body = ErrorBody),
        (status = 404, description = "No such definition of the caller", body = ErrorBody),
        (status = 409, description = "version_exists or version_not_increasing", body = ErrorBody),
        (status = 413, description = "Larger than the upload limit", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/zip", body = ErrorBody),
        (status = 422, description = "Invalid manifest or component", body = ErrorBody),
    )
)]
pub async fn upload_package(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version_text)): Path<(String, String)>,
    request: Request,
) -> ApiResult<axum::Json<VersionView>> {
    let definition = owned_definition(&state, &caller, &id).await?;
    let version = parse_version(&version_text)?;
    if !is_zip(&request) {
        return Err(ApiError::unsupported_media_type(
            "a package upload must be sent with Content-Type: application/zip",
        ));
    }
    // Refuse a version that cannot win before reading and validating the body.
    if let Some(highest) = state.store.highest_version(definition.id).await? {
        let key = version.sort_key();
        if highest.version_key == key {
            return Err(version_conflict(VersionInsert::Exists, &version));
        }
        if highest.version_key > key {
            let highest = highest.version;
            return Err(version_conflict(
                VersionInsert::NotIncreasing { highest },
                &version,
            ));
        }
    }
    let Body(bytes) = Body::from_request(request, &state).await?;

    let limits = state.config.package_limits;
    let validator = Arc::clone(&state.validator);
    let checked = bytes.clone();
    let package = tokio::task::spawn_blocking(move || {
        mh_package::validate_package(&checked, &limits, &validator)
    })
    .await
    .map_err(|e| ApiError::internal(format!("package validation stopped: {e}")))??;
    let manifest = serde_json::to_string(&package.manifest)
        .map_err(|e| ApiError::internal(format!("cannot encode the manifest: {e}")))?;

    let size = bytes.len() as u64;
    let digest = state.blobs.put(bytes.to_vec()).await?;
    let now = OffsetDateTime::now_utc();
    let (status, review) = if state.config.auto_review {
        let review = Review {
            reviewer: None,
            at: now,
            comment: "accepted on upload (the server runs with --review auto)".into(),
        };
        (VersionStatus::Accepted, Some(review))
    } else {
        (VersionStatus::Pending, None)
    };
    let record = HandlerVersion {
        definition_id: definition.id,
        version: version.to_string(),
        version_key: version.sort_key(),
        status,
        package_digest: digest.to_hex(),
        package_size: size,
        manifest,
        uploaded_by: caller.client_id,
        uploaded_at: now,
        review,
    };
    match state.store.insert_version(&record).await? {
        VersionInsert::Inserted => {
            tracing::info!(definition = %definition.id, version = %record.version, sha256 = %record.package_digest, "package uploaded");
            Ok(axum::Json(version_view(&definition, &record)?))
        }
        lost => {
            // A concurrent upload won. The blob goes unless another version uses the same bytes.
            if !state.store.package_in_use(&record.package_digest).await? {
                state.blobs.delete(&digest).await?;
            }
            Err(version_conflict(lost, &version))
        }
    }
}

#[utoipa::path(
    get,
    path = "/handlers/definitions/{definitionid}/{version}/package",
    tag = "handlers",
    security(("bearer" = [])),
    params(
        ("definitionid" = String, Path, description = "Definition identifier"),
        ("version" = String, Path, description = "Version"),
    ),
    responses(
        (status = 200, description = "The package zip", content_type = "application/zip", body = Vec<u8>),
        (status = 404, description = "No such version visible to the caller (owner and reviewers only)", body = ErrorBody),
    )
)]
pub async fn download_package(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    let definition = find_definition(&state, &id).await?;
    if definition.account_id != caller.account && require_reviewer(&state, &caller).await.is_err() {
        return Err(definition_not_found(&id));
    }
    let version = find_version(&state, &definition, &version).await?;
    let digest: Digest = version.package_digest.parse().map_err(|_| {
        ApiError::from(StoreError::Corrupt(format!(
            "package digest {:?}",
            version.package_digest
        )))
    })?;
    let bytes = state.blobs.get(&digest).await?.ok_or_else(|| {
        ApiError::internal(format!(
            "the package {digest} of version {} is missing from blob storage",
            version.version
        ))
    })?;
    let disposition = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}-{}.zip\"",
        definition.id, version.version
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/zip"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/reviews",
    tag = "reviews",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending versions across all accounts, oldest upload first", body = [VersionView]),
        (status = 403, description = "The caller is not a reviewer account", body = ErrorBody),
    )
)]
pub async fn pending_reviews(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<VersionView>>> {
    require_reviewer(&state, &caller).await?;
    let mut views = Vec::new();
    for version in state.store.pending_versions().await? {
        let definition = state
            .store
            .definition(version.definition_id)
            .await?
            .ok_or(StoreError::NotFound("handler definition"))?;
        views.push(version_view(&definition, &version)?);
    }
    Ok(axum::Json(views))
}

#[utoipa::path(
    post,
    path = "/handlers/definitions/{definitionid}/{version}/review",
    tag = "reviews",
    security(("bearer" = [])),
    params(
        ("definitionid" = String, Path, description = "Definition identifier"),
        ("version" = String, Path, description = "Version"),
    ),
    request_body = ReviewRequest,
    responses(
        (status = 200, description = "The version, Accepted or Rejected, with the recorded review", body = VersionView),
        (status = 403, description = "Not a reviewer, or the caller's own account's package", body = ErrorBody),
        (status = 404, description = "No such definition or version", body = ErrorBody),
        (status = 409, description = "The version was already reviewed; decisions are final", body = ErrorBody),
    )
)]
pub async fn review(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
    Json(request): Json<ReviewRequest>,
) -> ApiResult<axum::Json<VersionView>> {
    require_reviewer(&state, &caller).await?;
    let definition = find_definition(&state, &id).await?;
    if definition.account_id == caller.account {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a reviewer cannot review a package of their own account",
        ));
    }
    let mut version = find_version(&state, &definition, &version).await?;
    let already_reviewed = |version: &HandlerVersion| {
        ApiError::new(
            StatusCode::CONFLICT,
            "already_reviewed",
            format!(
                "version {} is already {}; review decisions are final",
                version.version,
                version.status.as_str()
            ),
        )
    };
    if version.status != VersionStatus::Pending {
        return Err(already_reviewed(&version));
    }
    let status = match request.decision {
        Decision::Accept => VersionStatus::Accepted,
        Decision::Reject => VersionStatus::Rejected,
    };
    let review = Review {
        reviewer: Some(caller.account),
        at: OffsetDateTime::now_utc(),
        comment: request.comment,
    };
    if !state
        .store
        .review_version(definition.id, &version.version_key, status, &review)
        .await?
    {
        // Another reviewer decided in the meantime: show what they decided.
        let current = find_version(&state, &definition, &version.version).await?;
        return Err(already_reviewed(&current));
    }
    version.status = status;
    version.review = Some(review);
    Ok(axum::Json(version_view(&definition, &version)?))
}

#[utoipa::path(
    post,
    path = "/handlers/definitions/{definitionid}/activate",
    tag = "handlers",
    security(("bearer" = [])),
    params(("definitionid" = String, Path, description = "Definition identifier")),
    request_body = ActivateRequest,
    responses(
        (status = 200, description = "The definition with its new active version", body = DefinitionView),
        (status = 404, description = "No such definition of the caller, or no such version", body = ErrorBody),
        (status = 409, description = "The version is not Accepted", body = ErrorBody),
    )
)]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(request): Json<ActivateRequest>,
) -> ApiResult<axum::Json<DefinitionView>> {
    let definition = owned_definition(&state, &caller, &id).await?;
    let version = find_version(&state, &definition, &request.version).await?;
    let not_accepted = |status: VersionStatus| {
        ApiError::new(
            StatusCode::CONFLICT,
            "version_not_accepted",
            format!(
                "version {} is {}; only Accepted versions can be activated",
                version.version,
                status.as_str()
            ),
        )
    };
    if version.status != VersionStatus::Accepted {
        return Err(not_accepted(version.status));
    }
    if !state
        .store
        .activate_version(definition.id, &version.version_key)
        .await?
    {
        return Err(not_accepted(version.status));
    }
    let definition = owned_definition(&state, &caller, &id).await?;
    Ok(axum::Json(definition_view(&state, &definition).await?))
}
