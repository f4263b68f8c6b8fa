//! Host face: the facts an access token carries and the file's state → CheckFileInfo, with
//! what a Docs-API storage can and cannot do in WOPI terms (locks and updates yes; relative
//! saves, renames and deletes have no Docs API counterpart).

use crate::clock::iso_time;
use crate::host_face::files::FileMeta;
use crate::host_face::token::AccessClaims;
use wopi::CheckFileInfo;

/// The gateway's host pages (see `host_face::opening::host_urls`): for the same session in
/// either mode (`HostEditUrl`, `HostViewUrl`), given only when the session may edit; and the
/// origin of the page framing the client (`PostMessageOrigin`), given when that page is the
/// gateway's `/open`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostUrls {
    /// The page loading the edit action.
    pub(crate) edit: Option<String>,
    /// The page loading the view action.
    pub(crate) view: Option<String>,
    /// `scheme://host[:port]` of the gateway's public URL.
    pub(crate) origin: Option<String>,
}

/// CheckFileInfo for the user of `c` on the file of `m`; `user_info` is the user's stored
/// PutUserInfo, `file_url` the file's short-lived `FileUrl`, `host` the host pages.
pub(crate) fn check_file_info(
    m: &FileMeta,
    c: &AccessClaims,
    user_info: Option<String>,
    file_url: String,
    host: HostUrls,
) -> CheckFileInfo {
    let mut info = CheckFileInfo {
        base_file_name: m.title.clone(),
        owner_id: m.owner_id.clone(),
        size: m.size,
        user_id: c.uid.clone(),
        version: m.version.clone(),
        supports_locks: Some(true),
        supports_get_lock: Some(true),
        supports_extended_lock_length: Some(true),
        supports_update: Some(true),
        supports_rename: Some(false),
        supports_delete_file: Some(false),
        supports_user_info: Some(true),
        user_can_rename: Some(false),
        user_friendly_name: (!c.un.is_empty()).then(|| c.un.clone()),
        is_anonymous_user: c.anon.then_some(true),
        user_info,
        last_modified_time: Some(iso_time(m.modified_ms)),
        sha256: Some(m.sha256.clone()),
        file_extension: Some(format!(".{}", m.file_type)),
        file_url: Some(file_url),
        ..Default::default()
    };
    if let Some(b) = &c.br {
        // Checked when the config was read; checked again, as a token from another version
        // of the gateway may carry them.
        let web = |u: &Option<String>| u.as_deref().and_then(crate::translate::opening::web_url);
        info.breadcrumb_brand_name.clone_from(&b.brand_name);
        info.breadcrumb_brand_url = web(&b.brand_url);
        info.breadcrumb_folder_name.clone_from(&b.folder_name);
        info.breadcrumb_folder_url = web(&b.folder_url);
    }
    if c.grant().saves() {
        info.host_edit_url = host.edit;
        info.host_view_url = host.view;
    }
    // The client posts its messages (`App_LoadingStatus`, `UI_Close`, ...) to this origin
    // only; the gateway's page relays what the Docs API has events for.
    info.post_message_origin = host.origin.filter(|_| c.hp);
    // The Docs API's close button calls the page's onRequestClose: WOPI's counterpart is a
    // close button that posts `UI_Close` (there is no close URL to give).
    info.close_post_message = c.cpm.then_some(true);
    c.grant().file_info(&mut info);
    info
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn breadcrumbs_and_host_pages_reach_a_writer_only_where_they_may() {
        let (meta, writer) = sample();
        let host = HostUrls {
            edit: Some("https://gw/open?session=E".into()),
            view: Some("https://gw/open?session=V".into()),
            origin: Some("https://gw".into()),
        };
        let branded = AccessClaims {
            br: Some(crate::translate::opening::Branding {
                brand_name: Some("Example Cloud".into()),
                brand_url: Some("https://cloud.example.com".into()),
                folder_name: Some("Reports".into()),
                // A token minted elsewhere: a script URL never reaches CheckFileInfo.
                folder_url: Some("javascript:alert(1)".into()),
            }),
            ..writer.clone()
        };
        let info = check_file_info(&meta, &branded, None, "u".into(), host.clone());
        assert_eq!(info.breadcrumb_brand_name.as_deref(), Some("Example Cloud"));
        assert_eq!(
            info.breadcrumb_brand_url.as_deref(),
            Some("https://cloud.example.com")
        );
        assert_eq!(info.breadcrumb_folder_name.as_deref(), Some("Reports"));
        assert_eq!(info.breadcrumb_folder_url, None);
        assert_eq!(info.host_edit_url, host.edit);
        assert_eq!(info.host_view_url, host.view);
        assert_eq!(info.close_url, None, "the Docs API has no close URL");
        // A viewer gets no host page, whatever is passed in.
        let viewer = AccessClaims {
            w: false,
            g: Some(crate::translate::permissions::Grant::legacy(false)),
            ..writer
        };
        let info = check_file_info(&meta, &viewer, None, "u".into(), host);
        assert_eq!((info.host_edit_url, info.host_view_url), (None, None));
    }

    #[test]
    fn the_host_page_origin_and_the_close_button_only_where_they_apply() {
        let (meta, writer) = sample();
        let host = HostUrls {
            origin: Some("https://gw.example.com".into()),
            ..HostUrls::default()
        };
        // A session of an integrator's own host page (POST /api/v1/sessions): the gateway
        // does not know that page's origin; no close button was asked for.
        let info = check_file_info(&meta, &writer, None, "u".into(), host.clone());
        assert_eq!(info.post_message_origin, None);
        assert_eq!(info.close_post_message, None);
        // The gateway's `/open` page, a config with a close button: a viewer too.
        for w in [true, false] {
            let c = AccessClaims {
                hp: true,
                cpm: true,
                w,
                g: Some(crate::translate::permissions::Grant::legacy(w)),
                ..writer.clone()
            };
            let info = check_file_info(&meta, &c, None, "u".into(), host.clone());
            assert_eq!(
                info.post_message_origin.as_deref(),
                Some("https://gw.example.com")
            );
            assert_eq!(info.close_post_message, Some(true));
            assert_eq!(info.close_url, None, "still no close URL");
        }
        let v = serde_json::to_value(check_file_info(
            &meta,
            &AccessClaims { hp: true, ..writer },
            None,
            "u".into(),
            host,
        ))
        .unwrap();
        assert_eq!(v["PostMessageOrigin"], "https://gw.example.com");
        assert!(v.get("ClosePostMessage").is_none(), "{v}");
    }

    fn sample() -> (FileMeta, AccessClaims) {
        let meta: FileMeta = serde_json::from_value(serde_json::json!({
            "file_id": "F1", "integrator": "cloud", "doc_url": "https://s/f", "doc_key": "k",
            "title": "Report.docx", "file_type": "docx", "owner_id": "u1", "callback_url": null,
            "version": "v1796.3", "content": "c1", "size": 1234, "sha256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
            "modified_ms": 1_700_000_000_123_u64, "staged": false, "session_modified": false,
            "undelivered": false, "editors": [], "last_editor": null
        }))
        .unwrap();
        let writer = AccessClaims {
            int: "cloud".into(),
            fid: "F1".into(),
            uid: "u1".into(),
            un: "Ada".into(),
            w: true,
            url: "https://s/f".into(),
            key: "k".into(),
            title: "Report.docx".into(),
            ft: "docx".into(),
            exp: 1_900_000_000,
            ..AccessClaims::default()
        };
        (meta, writer)
    }

    #[test]
    fn a_writer_and_an_anonymous_reader() {
        let (meta, writer) = sample();
        let reader = AccessClaims {
            uid: "anonymous-00".into(),
            un: "Anonymous".into(),
            anon: true,
            w: false,
            ..writer.clone()
        };
        let out = serde_json::json!({
            "writer": check_file_info(&meta, &writer, Some("{\"theme\":1}".into()), "http://gw/wopi/fileurl/F1?token=T".into(), HostUrls::default()),
            "reader": check_file_info(&meta, &reader, None, "http://gw/wopi/fileurl/F1?token=T2".into(), HostUrls::default()),
        });
        crate::translate::assert_golden("check_file_info", &out);
    }
}
