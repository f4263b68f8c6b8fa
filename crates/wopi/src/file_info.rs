//! The CheckFileInfo JSON document (Microsoft's WOPI REST API docs, "CheckFileInfo").
//!
//! Serialised by the host face (optional fields skipped when absent) and parsed leniently by
//! the client face: real hosts send JSON `null`s, numeric `Version`s and sizes as strings.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A CheckFileInfo response. Field names are the WOPI property names in PascalCase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)]
pub struct CheckFileInfo {
    // Required.
    #[serde(default)]
    pub base_file_name: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub owner_id: String,
    #[serde(default, deserialize_with = "lenient_u64")]
    pub size: u64,
    #[serde(default, deserialize_with = "lenient_string")]
    pub user_id: String,
    #[serde(default, deserialize_with = "lenient_string")]
    pub version: String,

    // Host capabilities.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_locks: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_get_lock: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_extended_lock_length: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_update: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_rename: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_delete_file: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_user_info: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_containers: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_ecosystem: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_folders: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_cobalt: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_get_file_wopi_src: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supported_share_url_types: Option<Vec<String>>,

    // User permissions.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub user_can_write: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub read_only: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub user_can_not_write_relative: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub user_can_rename: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub restricted_web_view_only: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub user_can_attend: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub user_can_present: Option<bool>,

    // User metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_friendly_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub is_anonymous_user: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_info: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub license_check_for_edit_is_enabled: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub is_edu_user: Option<bool>,

    // URLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_sharing_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_version_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_embed_command_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_edit_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_view_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_embedded_view_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signout_url: Option<String>,

    // Breadcrumb.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breadcrumb_brand_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breadcrumb_brand_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breadcrumb_doc_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breadcrumb_folder_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breadcrumb_folder_url: Option<String>,

    // Misc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_extension: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_u64"
    )]
    pub file_name_max_length: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_string"
    )]
    pub last_modified_time: Option<String>,
    #[serde(rename = "SHA256", default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_content_id: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub disable_print: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub disable_translation: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub allow_external_marketplace: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub close_button_closes_window: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub temporarily_not_writable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_paste_restrictions: Option<String>,

    // Collabora/ONLYOFFICE extensions read by the client face.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub user_can_review: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub user_can_only_comment: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub supports_reviewing: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub hide_print_option: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub close_post_message: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub edit_mode_post_message: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub file_sharing_post_message: Option<bool>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_bool"
    )]
    pub file_version_post_message: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_message_origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_source: Option<String>,

    /// Properties this type does not name, kept as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl CheckFileInfo {
    /// The lower-case extension without a dot: `FileExtension`, else the tail of `BaseFileName`.
    pub fn extension(&self) -> String {
        let from_field = self
            .file_extension
            .as_deref()
            .map(|e| e.trim_start_matches('.'));
        let ext = match from_field {
            Some(e) if !e.is_empty() => e,
            _ => self
                .base_file_name
                .rsplit_once('.')
                .map(|(_, e)| e)
                .unwrap_or(""),
        };
        ext.to_ascii_lowercase()
    }

    /// True when the flag is present and true.
    pub fn flag(value: Option<bool>) -> bool {
        value == Some(true)
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(lenient_opt_string(d)?.unwrap_or_default())
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        other => Some(other.to_string()),
    })
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(lenient_opt_u64(d)?.unwrap_or_default())
}

fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a non-negative integer")),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| D::Error::custom("expected an integer")),
        _ => Err(D::Error::custom("expected an integer")),
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => Some(b),
        Value::String(s) => crate::parse_bool(&s),
        Value::Number(n) => Some(n.as_i64() != Some(0)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_pascal_case_and_skips_absent() {
        let info = CheckFileInfo {
            base_file_name: "a.docx".into(),
            owner_id: "o".into(),
            size: 3,
            user_id: "u".into(),
            version: "v1".into(),
            sha256: Some("x".into()),
            supports_locks: Some(true),
            ..Default::default()
        };
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["BaseFileName"], "a.docx");
        assert_eq!(json["SHA256"], "x");
        assert_eq!(json["SupportsLocks"], true);
        assert!(json.get("UserCanWrite").is_none());
        assert!(json.get("CloseUrl").is_none());
    }

    #[test]
    fn parses_real_world_shapes_leniently() {
        let info: CheckFileInfo = serde_json::from_str(
            r#"{"BaseFileName":"r.xlsx","OwnerId":7,"Size":"12","UserId":"u","Version":0,
                "UserCanWrite":"True","CloseUrl":null,"LastModifiedTime":"Mon, 01 Jan 2024 00:00:00 GMT",
                "SomethingNew":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(info.owner_id, "7");
        assert_eq!(info.size, 12);
        assert_eq!(info.version, "0");
        assert_eq!(info.user_can_write, Some(true));
        assert_eq!(info.close_url, None);
        assert_eq!(info.extension(), "xlsx");
        assert!(info.extra.contains_key("SomethingNew"));
    }
}
