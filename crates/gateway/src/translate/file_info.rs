//! Host face: the facts an access token carries and the file's state → CheckFileInfo, with
//! what a Docs-API storage can and cannot do in WOPI terms (locks and updates yes; relative
//! saves, renames and deletes have no Docs API counterpart).

use crate::clock::iso_time;
use crate::host_face::files::FileMeta;
use crate::host_face::token::AccessClaims;
use wopi::CheckFileInfo;

/// CheckFileInfo for the user of `c` on the file of `m`; `user_info` is the user's stored
/// PutUserInfo, `file_url` the file's short-lived `FileUrl`.
pub(crate) fn check_file_info(
    m: &FileMeta,
    c: &AccessClaims,
    user_info: Option<String>,
    file_url: String,
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
    c.grant().file_info(&mut info);
    info
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_writer_and_an_anonymous_reader() {
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
            anon: false,
            w: true,
            g: None,
            own: None,
            url: "https://s/f".into(),
            key: "k".into(),
            title: "Report.docx".into(),
            ft: "docx".into(),
            cb: None,
            exp: 1_900_000_000,
        };
        let reader = AccessClaims {
            uid: "anonymous-00".into(),
            un: "Anonymous".into(),
            anon: true,
            w: false,
            ..writer.clone()
        };
        let out = serde_json::json!({
            "writer": check_file_info(&meta, &writer, Some("{\"theme\":1}".into()), "http://gw/wopi/fileurl/F1?token=T".into()),
            "reader": check_file_info(&meta, &reader, None, "http://gw/wopi/fileurl/F1?token=T2".into()),
        });
        crate::translate::assert_golden("check_file_info", &out);
    }
}
