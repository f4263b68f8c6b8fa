//! Editor-config rules (ONLYOFFICE Docs API docs, "Config"): document keys and document types.

/// Longest document key Document Server documents.
pub const MAX_KEY_LEN: usize = 128;

/// Whether `key` fits Document Server's key rules: `[0-9A-Za-z._=-]{1,128}`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'-'))
}

/// The editor (`documentType`) for a lower-case extension, as api.js classifies it.
pub fn document_type(ext: &str) -> Option<&'static str> {
    const CELL: &[&str] = &[
        "xls", "xlsx", "ods", "csv", "tsv", "gsheet", "xlsm", "xlt", "xltm", "xltx", "fods", "ots",
        "xlsb", "sxc", "et", "ett", "numbers",
    ];
    const SLIDE: &[&str] = &[
        "pps", "ppsx", "ppt", "pptx", "odp", "gslides", "pot", "potm", "potx", "ppsm", "pptm",
        "fodp", "otp", "sxi", "dps", "dpt", "key", "odg",
    ];
    const PDF: &[&str] = &["pdf", "djvu", "xps", "oxps", "oform", "docxf"];
    const WORD: &[&str] = &[
        "doc", "docx", "odt", "gdoc", "txt", "rtf", "mht", "htm", "html", "mhtml", "epub", "docm",
        "dot", "dotm", "dotx", "fodt", "ott", "fb2", "xml", "sxw", "stw", "wps", "wpt", "pages",
        "hwp", "hwpx", "md", "hml",
    ];
    const DIAGRAM: &[&str] = &["vsdx", "vssx", "vstx", "vsdm", "vssm", "vstm"];
    for (ty, list) in [
        ("cell", CELL),
        ("slide", SLIDE),
        ("pdf", PDF),
        ("word", WORD),
        ("diagram", DIAGRAM),
    ] {
        if list.contains(&ext) {
            return Some(ty);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(is_valid_key("abc-DEF_1.2="));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("a!b"));
        assert!(!is_valid_key(&"a".repeat(129)));
    }

    #[test]
    fn types() {
        assert_eq!(document_type("docx"), Some("word"));
        assert_eq!(document_type("xlsx"), Some("cell"));
        assert_eq!(document_type("pptx"), Some("slide"));
        assert_eq!(document_type("pdf"), Some("pdf"));
        assert_eq!(document_type("exe"), None);
    }
}

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The editor config: what an integrator hands to `DocsAPI.DocEditor` (and the host face
/// reads), and what the client face builds. Fields the gateway does not interpret are kept
/// in `extra` and written back as they came.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditorConfig {
    /// `desktop`, `mobile` or `embedded`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub view_type: Option<String>,
    /// `word`, `cell`, `slide`, `pdf`, `diagram`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_type: Option<String>,
    /// The file.
    #[serde(default)]
    pub document: Document,
    /// The editor's settings.
    #[serde(default)]
    pub editor_config: EditorSettings,
    /// The signature over everything else (HS256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Anything else (`width`, `height`, `events`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `document`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Document {
    /// Extension, lower-case, without the dot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_type: Option<String>,
    /// Docs' cache and co-editing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The name shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Where Docs downloads the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// What the user may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Permissions>,
    /// The storage's own file identity (`fileKey`, `instanceId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_data: Option<ReferenceData>,
    /// Anything else (`info`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `document.referenceData`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceData {
    /// The file's id in its storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_key: Option<String>,
    /// The storage instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `document.permissions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permissions {
    /// May edit (absent: true, as Docs reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edit: Option<bool>,
    /// May review (track changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<bool>,
    /// May comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<bool>,
    /// May copy to the clipboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<bool>,
    /// May print.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub print: Option<bool>,
    /// May download.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download: Option<bool>,
    /// May chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<bool>,
    /// May fill forms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_forms: Option<bool>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `editorConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EditorSettings {
    /// Where Docs posts its callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// `edit` or `view`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Interface language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    /// Number and date formats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// Co-editing mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub co_editing: Option<CoEditing>,
    /// Interface customization (free-form: merged with profiles and host settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customization: Option<Map<String, Value>>,
    /// `{autostart, pluginsData}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<Value>,
    /// `[{title, image, url}]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<Vec<Value>>,
    /// Anything else.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `editorConfig.user`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The user's id (a string; integrators sometimes send a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Anything else (`group`, `image`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl User {
    /// The id as a string (numbers are written in decimal), when non-empty.
    pub fn id_string(&self) -> Option<String> {
        match &self.id {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// `editorConfig.coEditing`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CoEditing {
    /// `fast` or `strict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Whether the user may change the mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<bool>,
}

#[cfg(test)]
mod typed_tests {
    use super::*;

    #[test]
    fn an_integrator_config_round_trips_with_unknown_fields() {
        let v = serde_json::json!({
            "document": {"fileType": "docx", "key": "k1", "title": "a.docx", "url": "https://s/f",
                         "permissions": {"edit": false, "protect": true}, "referenceData": {"fileKey": "42"}},
            "documentType": "word", "type": "desktop", "width": "100%",
            "editorConfig": {"callbackUrl": "https://s/cb", "mode": "view",
                             "user": {"id": 7, "name": "Ada", "group": "g"}, "customization": {"about": false}},
            "token": "t"
        });
        let c: EditorConfig = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(c.document.key.as_deref(), Some("k1"));
        assert_eq!(c.document.permissions.as_ref().unwrap().edit, Some(false));
        assert_eq!(
            c.editor_config
                .user
                .as_ref()
                .unwrap()
                .id_string()
                .as_deref(),
            Some("7")
        );
        assert_eq!(c.extra["width"], "100%");
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            v,
            "nothing lost or added"
        );
    }
}
