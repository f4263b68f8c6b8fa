//! Host face: a WOPI PutFile's headers → what the Docs-API callbacks say of the save. The
//! reference is ONLYOFFICE Docs' own WOPI client (`DocService/sources/canvasservice.js`,
//! `wopiClient.js`), which writes these headers from its saves: a force-save of the Save
//! button or a form goes with `X-LOOL-WOPI-IsAutosave: false`, the other force-saves (command,
//! timer) with `true`; the final save when everyone left with `X-LOOL-WOPI-IsExitSave: true`;
//! `X-WOPI-Editors` names the users whose changes the save holds (Docs' `users` of status
//! 2 and 6: the last user who changed the document).

use docs_api::{ActionKind, Callback, CallbackAction, ForceSaveType};

/// Most user ids read from `X-WOPI-Editors`.
const MAX_EDITORS: usize = 100;
/// Longest user id read from `X-WOPI-Editors`.
const MAX_EDITOR_LEN: usize = 256;

/// What kind of save a PutFile is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SaveKind {
    /// A user's save (`X-LOOL-WOPI-IsAutosave` absent or false).
    User,
    /// The WOPI client saved on its own (`X-LOOL-WOPI-IsAutosave: true`).
    Auto,
    /// The save as the last user leaves (`X-LOOL-WOPI-IsExitSave: true`): the session's
    /// status 2 carries it, no force-save callback.
    Exit,
}

/// A PutFile, as the callbacks see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PutFileSave {
    /// `X-WOPI-Editors` (empty when absent): the users whose changes the content holds.
    pub(crate) editors: Vec<String>,
    /// The kind of save.
    pub(crate) kind: SaveKind,
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// Reads a PutFile's `X-WOPI-Editors`, `X-LOOL-WOPI-IsAutosave` and `X-LOOL-WOPI-IsExitSave`.
pub(crate) fn put_file_save(
    editors: Option<&str>,
    autosave: Option<&str>,
    exit_save: Option<&str>,
) -> PutFileSave {
    let mut list: Vec<String> = Vec::new();
    for id in editors.unwrap_or("").split(',').map(str::trim) {
        if id.is_empty() || id.len() > MAX_EDITOR_LEN || list.iter().any(|u| u == id) {
            continue;
        }
        if list.len() == MAX_EDITORS {
            break;
        }
        list.push(id.to_owned());
    }
    let kind = if is_true(exit_save) {
        SaveKind::Exit
    } else if is_true(autosave) {
        SaveKind::Auto
    } else {
        SaveKind::User
    };
    PutFileSave {
        editors: list,
        kind,
    }
}

impl PutFileSave {
    /// The callback's `users`: the editors the client named, else the token's user.
    pub(crate) fn users(&self, uid: &str) -> Vec<String> {
        if self.editors.is_empty() {
            vec![uid.to_owned()]
        } else {
            self.editors.clone()
        }
    }

    /// The status 6 callback of this save by `uid` for document `key`, or none for an exit
    /// save (the status 2 that ends the session carries it). A user's save is Docs' Save
    /// button (`forcesavetype` 1, with the user's force-save action); the client's own is
    /// Docs' timer (`forcesavetype` 2, no user action: nobody clicked).
    pub(crate) fn force_save_callback(
        &self,
        key: &str,
        uid: &str,
        lastsave: String,
    ) -> Option<Callback> {
        let (kind, action) = match self.kind {
            SaveKind::Exit => return None,
            SaveKind::User => (ForceSaveType::Button, true),
            SaveKind::Auto => (ForceSaveType::Timer, false),
        };
        let mut cb = Callback::force_save(key, uid, kind, lastsave);
        cb.users = Some(self.users(uid));
        cb.actions = action.then(|| vec![CallbackAction::new(ActionKind::ForceSave, uid)]);
        Some(cb)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_read_as_onlyoffice_writes_them() {
        // The Save button: IsModifiedByUser true, IsAutosave false, one editor.
        let s = put_file_save(Some("u2"), Some("false"), Some("false"));
        assert_eq!(s.kind, SaveKind::User);
        assert_eq!(s.editors, ["u2"]);
        // The client's own save.
        assert_eq!(put_file_save(None, Some("TRUE"), None).kind, SaveKind::Auto);
        // The exit save wins over the autosave flag.
        assert_eq!(
            put_file_save(None, Some("true"), Some("true")).kind,
            SaveKind::Exit
        );
        // No flags: a user's save.
        assert_eq!(put_file_save(None, None, None).kind, SaveKind::User);
        // A list: trimmed, empties and repeats dropped.
        let s = put_file_save(Some(" u1, ,u2,u1 "), None, None);
        assert_eq!(s.editors, ["u1", "u2"]);
        assert_eq!(s.users("u9"), ["u1", "u2"]);
        assert_eq!(put_file_save(Some(""), None, None).users("u9"), ["u9"]);
        let many = (0..150)
            .map(|i| format!("u{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(put_file_save(Some(&many), None, None).editors.len(), 100);
    }

    #[test]
    fn force_save_callbacks_as_docs_sends_them() {
        let v = |cb: Option<Callback>| serde_json::to_value(cb.unwrap()).unwrap();
        let user = put_file_save(Some("u1,u2"), Some("false"), None);
        assert_eq!(
            v(user.force_save_callback("k", "u1", "t".into())),
            json!({"key": "k", "status": 6, "users": ["u1", "u2"], "actions": [{"type": 2, "userid": "u1"}],
                   "forcesavetype": 1, "lastsave": "t"})
        );
        let auto = put_file_save(None, Some("true"), None);
        assert_eq!(
            v(auto.force_save_callback("k", "u1", "t".into())),
            json!({"key": "k", "status": 6, "users": ["u1"], "forcesavetype": 2, "lastsave": "t"})
        );
        let exit = put_file_save(Some("u1"), None, Some("true"));
        assert_eq!(exit.force_save_callback("k", "u1", "t".into()), None);
    }
}
