//! Which WOPI operation a request asks for: method + path + `X-WOPI-Override`.

use std::fmt;

/// The endpoint part of a WOPI URL path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'a> {
    /// `…/wopi*/files/<id>`
    File(&'a str),
    /// `…/wopi*/files/<id>/contents`
    Contents(&'a str),
    /// `…/wopi*/files/<id>/ancestry`
    Ancestry(&'a str),
    /// Any other file sub-resource (`ecosystem_pointer`, `root_container_pointer`, …).
    FileOther(&'a str),
    /// `…/wopi*/containers/…`
    Container,
    /// `…/wopi*/ecosystem…`
    Ecosystem,
}

/// Splits a request path into its WOPI endpoint. The segment before `files` must start
/// with `wopi` (WOPI REST API, "Files" endpoints): `/wopi/files/x`, `/modules/wopi/files/x` and `/wopi_test/files/x`
/// are endpoints, `/files/x` and `/wopi/files/ids/x/y` are not.
pub fn parse_endpoint(path: &str) -> Option<Endpoint<'_>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let wopi_at = segments.iter().position(|s| s.starts_with("wopi"))?;
    let rest = &segments[wopi_at + 1..];
    match rest {
        ["files", id] if !id.is_empty() => Some(Endpoint::File(id)),
        ["files", id, "contents"] if !id.is_empty() => Some(Endpoint::Contents(id)),
        ["files", id, "ancestry"] if !id.is_empty() => Some(Endpoint::Ancestry(id)),
        ["files", id, "ecosystem_pointer" | "root_container_pointer"] if !id.is_empty() => {
            Some(Endpoint::FileOther(id))
        }
        ["containers", ..] => Some(Endpoint::Container),
        ["ecosystem", ..] => Some(Endpoint::Ecosystem),
        _ => None,
    }
}

/// A WOPI file operation (WOPI REST API), or the reason it cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// GET `files/<id>`
    CheckFileInfo,
    /// GET `files/<id>/contents`
    GetFile,
    /// POST `files/<id>/contents`, PUT
    PutFile,
    /// PUT_RELATIVE
    PutRelativeFile,
    /// RENAME_FILE
    RenameFile,
    /// DELETE
    DeleteFile,
    /// LOCK without `X-WOPI-OldLock`
    Lock,
    /// GET_LOCK
    GetLock,
    /// REFRESH_LOCK
    RefreshLock,
    /// UNLOCK
    Unlock,
    /// LOCK with `X-WOPI-OldLock`
    UnlockAndRelock,
    /// PUT_USER_INFO
    PutUserInfo,
    /// GET `files/<id>/ancestry`
    EnumerateAncestors,
    /// Container and ecosystem operations, and file pointers: recognised, not implemented.
    Unsupported,
    /// A POST whose `X-WOPI-Override` is missing or unknown (→ 501).
    UnknownOverride,
    /// A method the endpoint does not take (→ 405).
    MethodNotAllowed,
}

impl Operation {
    /// Parses the operation of a request to `endpoint`.
    pub fn parse(
        method: &str,
        endpoint: Endpoint<'_>,
        wopi_override: Option<&str>,
        has_old_lock: bool,
    ) -> Self {
        let get = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
        let post = method.eq_ignore_ascii_case("POST");
        let over = wopi_override.map(str::trim).unwrap_or("");
        match endpoint {
            Endpoint::File(_) if get => Operation::CheckFileInfo,
            Endpoint::File(_) if post => match over.to_ascii_uppercase().as_str() {
                "LOCK" if has_old_lock => Operation::UnlockAndRelock,
                "LOCK" => Operation::Lock,
                "GET_LOCK" => Operation::GetLock,
                "REFRESH_LOCK" => Operation::RefreshLock,
                "UNLOCK" => Operation::Unlock,
                "PUT_RELATIVE" => Operation::PutRelativeFile,
                "RENAME_FILE" => Operation::RenameFile,
                "DELETE" => Operation::DeleteFile,
                "PUT_USER_INFO" => Operation::PutUserInfo,
                "GET_SHARE_URL" | "ADD_ACTIVITIES" | "GET_NEW_ACCESS_TOKEN" => {
                    Operation::Unsupported
                }
                _ => Operation::UnknownOverride,
            },
            Endpoint::Contents(_) if get => Operation::GetFile,
            Endpoint::Contents(_) if post => {
                if over.eq_ignore_ascii_case("PUT") {
                    Operation::PutFile
                } else {
                    Operation::UnknownOverride
                }
            }
            Endpoint::Ancestry(_) if get => Operation::EnumerateAncestors,
            Endpoint::FileOther(_) | Endpoint::Container | Endpoint::Ecosystem => {
                Operation::Unsupported
            }
            Endpoint::File(_) | Endpoint::Contents(_) | Endpoint::Ancestry(_) => {
                Operation::MethodNotAllowed
            }
        }
    }

    /// The operation's name as the WOPI documentation spells it (bounded; fit for metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::CheckFileInfo => "CheckFileInfo",
            Operation::GetFile => "GetFile",
            Operation::PutFile => "PutFile",
            Operation::PutRelativeFile => "PutRelativeFile",
            Operation::RenameFile => "RenameFile",
            Operation::DeleteFile => "DeleteFile",
            Operation::Lock => "Lock",
            Operation::GetLock => "GetLock",
            Operation::RefreshLock => "RefreshLock",
            Operation::Unlock => "Unlock",
            Operation::UnlockAndRelock => "UnlockAndRelock",
            Operation::PutUserInfo => "PutUserInfo",
            Operation::EnumerateAncestors => "EnumerateAncestors",
            Operation::Unsupported => "Unsupported",
            Operation::UnknownOverride => "UnknownOverride",
            Operation::MethodNotAllowed => "MethodNotAllowed",
        }
    }

    /// Whether the operation needs `X-WOPI-Lock` (missing or empty → 400).
    pub fn requires_lock_header(self) -> bool {
        matches!(
            self,
            Operation::Lock
                | Operation::RefreshLock
                | Operation::Unlock
                | Operation::UnlockAndRelock
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("/wopi/files/abc"),
            Some(Endpoint::File("abc"))
        );
        assert_eq!(
            parse_endpoint("/x/wopi_test/files/abc/contents"),
            Some(Endpoint::Contents("abc"))
        );
        assert_eq!(
            parse_endpoint("/wopi/files/abc/ancestry"),
            Some(Endpoint::Ancestry("abc"))
        );
        assert_eq!(
            parse_endpoint("/wopi/containers/c"),
            Some(Endpoint::Container)
        );
        assert_eq!(parse_endpoint("/files/abc"), None);
        assert_eq!(parse_endpoint("/wopi/files/ids/abc/x"), None);
        assert_eq!(parse_endpoint("/wopi/files/"), None);
    }

    #[test]
    fn overrides() {
        let f = Endpoint::File("a");
        let c = Endpoint::Contents("a");
        assert_eq!(
            Operation::parse("GET", f, None, false),
            Operation::CheckFileInfo
        );
        assert_eq!(
            Operation::parse("POST", f, Some("LOCK"), false),
            Operation::Lock
        );
        assert_eq!(
            Operation::parse("POST", f, Some("LOCK"), true),
            Operation::UnlockAndRelock
        );
        assert_eq!(
            Operation::parse("POST", f, Some("lock"), false),
            Operation::Lock
        );
        assert_eq!(
            Operation::parse("POST", f, Some("GET_LOCK"), false),
            Operation::GetLock
        );
        assert_eq!(
            Operation::parse("POST", f, Some("COBALT"), false),
            Operation::UnknownOverride
        );
        assert_eq!(
            Operation::parse("POST", f, None, false),
            Operation::UnknownOverride
        );
        assert_eq!(
            Operation::parse("POST", c, Some("PUT"), false),
            Operation::PutFile
        );
        assert_eq!(Operation::parse("GET", c, None, false), Operation::GetFile);
        assert_eq!(
            Operation::parse("DELETE", f, None, false),
            Operation::MethodNotAllowed
        );
        assert_eq!(
            Operation::parse("POST", f, Some("PUT_USER_INFO"), false),
            Operation::PutUserInfo
        );
    }
}
