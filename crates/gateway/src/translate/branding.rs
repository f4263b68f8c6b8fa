//! The breadcrumbs an integrator's config gives a WOPI client, as the access token carries
//! them: a type of its own, so that the token (host face) and the translations can both name
//! it without importing each other.

/// The breadcrumbs of CheckFileInfo, from the config's `customization`: `customer.name` /
/// `customer.www` (the brand) and `goback.text` / `goback.url` (the folder). URLs are kept
/// only when absolute http(s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) struct Branding {
    /// `BreadcrumbBrandName`
    #[serde(rename = "bn", default, skip_serializing_if = "Option::is_none")]
    pub(crate) brand_name: Option<String>,
    /// `BreadcrumbBrandUrl`
    #[serde(rename = "bu", default, skip_serializing_if = "Option::is_none")]
    pub(crate) brand_url: Option<String>,
    /// `BreadcrumbFolderName`
    #[serde(rename = "fn", default, skip_serializing_if = "Option::is_none")]
    pub(crate) folder_name: Option<String>,
    /// `BreadcrumbFolderUrl`
    #[serde(rename = "fu", default, skip_serializing_if = "Option::is_none")]
    pub(crate) folder_url: Option<String>,
}
