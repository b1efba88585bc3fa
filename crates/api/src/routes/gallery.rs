//! The gallery: every handler definition anyone may add to a channel, built-ins first.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authenticate::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/gallery/handlers", get(handlers))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GalleryFieldView {
    name: String,
    /// `string`, `integer`, `number` or `boolean`.
    #[serde(rename = "type")]
    field_type: String,
    required: bool,
    /// Default value in text form.
    default: Option<String>,
    description: String,
    /// The value names one of the handler's output subjects.
    output_subject: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GalleryEntryView {
    /// The definition's identifier; use it (or the name) as `definition` in a channel.
    identifier: Uuid,
    name: String,
    description: String,
    /// The owning account (the system account for built-ins).
    account: Uuid,
    account_name: String,
    /// A native handler of the platform.
    builtin: bool,
    /// The version used when none is named.
    active_version: Option<String>,
    output_subjects: Vec<String>,
    configuration: Vec<GalleryFieldView>,
}

impl From<mh_fabric::GalleryEntry> for GalleryEntryView {
    fn from(entry: mh_fabric::GalleryEntry) -> Self {
        GalleryEntryView {
            identifier: entry.id,
            name: entry.name,
            description: entry.description,
            account: entry.account,
            account_name: entry.account_name,
            builtin: entry.builtin,
            active_version: entry.active_version,
            output_subjects: entry.output_subjects,
            configuration: entry
                .configuration
                .into_iter()
                .map(|field| GalleryFieldView {
                    name: field.name,
                    field_type: field.field_type.as_str().to_string(),
                    required: field.required,
                    default: field.default,
                    description: field.description,
                    output_subject: field.output_subject,
                })
                .collect(),
        }
    }
}

#[utoipa::path(get, path = "/gallery/handlers", tag = "gallery", security(("bearer" = [])),
    responses((status = 200, description = "The built-ins (Generate Alert, Forward to endpoint, Webhook), then every public definition with an active version", body = [GalleryEntryView])))]
pub async fn handlers(
    State(state): State<AppState>,
    _caller: Caller,
) -> ApiResult<axum::Json<Vec<GalleryEntryView>>> {
    let entries = state.fabric.gallery().await?;
    Ok(axum::Json(
        entries.into_iter().map(GalleryEntryView::from).collect(),
    ))
}
