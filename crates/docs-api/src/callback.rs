//! Callback bodies Document Server POSTs to `callbackUrl` (ONLYOFFICE Docs API docs, "Callback handler").

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `status` of a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallbackStatus {
    /// 0: never sent by current versions.
    NotFound,
    /// 1: users connected or disconnected; editing goes on.
    Editing,
    /// 2: everyone left after changes; save `url`.
    MustSave,
    /// 3: assembly failed after everyone left.
    Corrupted,
    /// 4: everyone left without changes.
    Closed,
    /// 5: legacy mail merge.
    MailMerge,
    /// 6: force-save while editing goes on.
    MustSaveForce,
    /// 7: force-save assembly failed.
    CorruptedForce,
}

impl CallbackStatus {
    /// From the numeric status.
    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => CallbackStatus::NotFound,
            1 => CallbackStatus::Editing,
            2 => CallbackStatus::MustSave,
            3 => CallbackStatus::Corrupted,
            4 => CallbackStatus::Closed,
            5 => CallbackStatus::MailMerge,
            6 => CallbackStatus::MustSaveForce,
            7 => CallbackStatus::CorruptedForce,
            _ => return None,
        })
    }

    /// The numeric status.
    pub fn code(self) -> i64 {
        match self {
            CallbackStatus::NotFound => 0,
            CallbackStatus::Editing => 1,
            CallbackStatus::MustSave => 2,
            CallbackStatus::Corrupted => 3,
            CallbackStatus::Closed => 4,
            CallbackStatus::MailMerge => 5,
            CallbackStatus::MustSaveForce => 6,
            CallbackStatus::CorruptedForce => 7,
        }
    }

    /// Bounded metric label.
    pub fn label(self) -> &'static str {
        match self {
            CallbackStatus::NotFound => "0",
            CallbackStatus::Editing => "1",
            CallbackStatus::MustSave => "2",
            CallbackStatus::Corrupted => "3",
            CallbackStatus::Closed => "4",
            CallbackStatus::MailMerge => "5",
            CallbackStatus::MustSaveForce => "6",
            CallbackStatus::CorruptedForce => "7",
        }
    }
}

/// What an entry of `actions` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// 0: the user disconnected.
    Disconnected,
    /// 1: the user connected.
    Connected,
    /// 2: the user clicked force-save.
    ForceSave,
}

impl ActionKind {
    /// The numeric `type`.
    pub fn code(self) -> i64 {
        match self {
            ActionKind::Disconnected => 0,
            ActionKind::Connected => 1,
            ActionKind::ForceSave => 2,
        }
    }
}

/// `forcesavetype` of a status 6/7 callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForceSaveType {
    /// 0: a command-service `forcesave` request.
    Command,
    /// 1: the Save button.
    Button,
    /// 2: the server's force-save timer.
    Timer,
    /// 3: a form was submitted.
    Form,
}

impl ForceSaveType {
    /// The numeric `forcesavetype`.
    pub fn code(self) -> i64 {
        match self {
            ForceSaveType::Command => 0,
            ForceSaveType::Button => 1,
            ForceSaveType::Timer => 2,
            ForceSaveType::Form => 3,
        }
    }
}

/// One entry of `actions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackAction {
    /// 0 disconnected, 1 connected, 2 force-save.
    #[serde(rename = "type")]
    pub kind: i64,
    /// The user.
    pub userid: String,
}

/// A callback body. Unknown fields are ignored; absent optional ones skipped when sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Callback {
    /// The document key.
    pub key: String,
    /// The numeric status.
    pub status: i64,
    /// Download link of the assembled file (2, 3, 6, 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Extension of the file at `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filetype: Option<String>,
    /// User ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<Vec<String>>,
    /// Connect/disconnect/force-save actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<CallbackAction>>,
    /// 0 command, 1 button, 2 timer, 3 form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forcesavetype: Option<i64>,
    /// ISO-8601 time of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lastsave: Option<String>,
    /// Nothing changed since the last force-save.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notmodified: Option<bool>,
    /// Changes archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changesurl: Option<String>,
    /// Version history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Value>,
    /// Echo of command-service `userdata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userdata: Option<String>,
}

impl CallbackAction {
    /// An action of `kind` by `userid`.
    pub fn new(kind: ActionKind, userid: &str) -> Self {
        CallbackAction {
            kind: kind.code(),
            userid: userid.to_owned(),
        }
    }
}

impl Callback {
    /// The status, when known.
    pub fn status(&self) -> Option<CallbackStatus> {
        CallbackStatus::from_code(self.status)
    }

    fn with(key: &str, status: CallbackStatus) -> Self {
        Callback {
            key: key.to_owned(),
            status: status.code(),
            ..Callback::default()
        }
    }

    /// Status 1: `users` are editing; `action` says who connected or disconnected.
    pub fn editing(key: &str, users: &[String], action: CallbackAction) -> Self {
        Callback {
            users: Some(users.to_vec()),
            actions: Some(vec![action]),
            ..Callback::with(key, CallbackStatus::Editing)
        }
    }

    /// Status 2: everyone left after changes. `lastsave` is JavaScript's ISO form
    /// (`2026-12-01T22:20:33.333Z`); the download `url` and `filetype` are added when sent.
    pub fn must_save(key: &str, last_user: &str, lastsave: String, notmodified: bool) -> Self {
        Callback {
            users: Some(vec![last_user.to_owned()]),
            actions: Some(vec![CallbackAction::new(
                ActionKind::Disconnected,
                last_user,
            )]),
            lastsave: Some(lastsave),
            notmodified: Some(notmodified),
            ..Callback::with(key, CallbackStatus::MustSave)
        }
    }

    /// Status 4: everyone left without changes.
    pub fn closed(key: &str, last_user: &str) -> Self {
        Callback {
            actions: Some(vec![CallbackAction::new(
                ActionKind::Disconnected,
                last_user,
            )]),
            ..Callback::with(key, CallbackStatus::Closed)
        }
    }

    /// Status 6: a force-save while editing goes on (`url` and `filetype` added when sent).
    pub fn force_save(key: &str, user: &str, kind: ForceSaveType, lastsave: String) -> Self {
        Callback {
            users: Some(vec![user.to_owned()]),
            actions: Some(vec![CallbackAction::new(ActionKind::ForceSave, user)]),
            forcesavetype: Some(kind.code()),
            lastsave: Some(lastsave),
            ..Callback::with(key, CallbackStatus::MustSaveForce)
        }
    }

    /// Status 3 (or 7 when `force`): the document could not be assembled.
    pub fn corrupted(key: &str, users: &[String], force: bool) -> Self {
        let status = if force {
            CallbackStatus::CorruptedForce
        } else {
            CallbackStatus::Corrupted
        };
        Callback {
            users: Some(users.to_vec()),
            ..Callback::with(key, status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_status_two_body() {
        let cb: Callback = serde_json::from_str(
            r#"{"key":"k1","status":2,"url":"http://ds/cache/x","filetype":"docx","users":["u1"],
                "actions":[{"type":0,"userid":"u1"}],"lastsave":"2024-01-01T00:00:00.000Z","notmodified":false,
                "history":{"serverVersion":"9"},"unknown":1}"#,
        )
        .unwrap();
        assert_eq!(cb.status(), Some(CallbackStatus::MustSave));
        assert_eq!(cb.actions.unwrap()[0].kind, 0);
        assert_eq!(CallbackStatus::from_code(9), None);
        for c in 0..8 {
            assert_eq!(CallbackStatus::from_code(c).unwrap().code(), c);
        }
    }

    #[test]
    fn constructors_build_what_docs_sends() {
        let v = |cb: &Callback| serde_json::to_value(cb).unwrap();
        assert_eq!(
            v(&Callback::editing(
                "k",
                &["u1".into(), "u2".into()],
                CallbackAction::new(ActionKind::Connected, "u2")
            )),
            serde_json::json!({"key": "k", "status": 1, "users": ["u1", "u2"], "actions": [{"type": 1, "userid": "u2"}]})
        );
        assert_eq!(
            v(&Callback::must_save(
                "k",
                "u1",
                "2026-12-01T22:20:33.333Z".into(),
                false
            )),
            serde_json::json!({"key": "k", "status": 2, "users": ["u1"], "actions": [{"type": 0, "userid": "u1"}], "lastsave": "2026-12-01T22:20:33.333Z", "notmodified": false})
        );
        assert_eq!(
            v(&Callback::closed("k", "u1")),
            serde_json::json!({"key": "k", "status": 4, "actions": [{"type": 0, "userid": "u1"}]})
        );
        assert_eq!(
            v(&Callback::force_save(
                "k",
                "u1",
                ForceSaveType::Button,
                "t".into()
            )),
            serde_json::json!({"key": "k", "status": 6, "users": ["u1"], "actions": [{"type": 2, "userid": "u1"}], "forcesavetype": 1, "lastsave": "t"})
        );
        assert_eq!(
            Callback::corrupted("k", &[], true).status(),
            Some(CallbackStatus::CorruptedForce)
        );
    }
}
