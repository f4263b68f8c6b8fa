//! `X-WOPI-*` header names (lower case, as `http::HeaderName` wants them).

/// Selects the POST operation.
pub const OVERRIDE: &str = "x-wopi-override";
/// The lock id a modifying request carries; also the current lock on a 409.
pub const LOCK: &str = "x-wopi-lock";
/// UnlockAndRelock: the lock the client expects to replace.
pub const OLD_LOCK: &str = "x-wopi-oldlock";
/// Free-text reason on a lock failure (logging only).
pub const LOCK_FAILURE_REASON: &str = "x-wopi-lockfailurereason";
/// Version of the file after the operation.
pub const ITEM_VERSION: &str = "x-wopi-itemversion";
/// GetFile: the largest size the client accepts.
pub const MAX_EXPECTED_SIZE: &str = "x-wopi-maxexpectedsize";
/// PutFile: the users who contributed.
pub const EDITORS: &str = "x-wopi-editors";
/// Diagnostic string on errors.
pub const SERVER_ERROR: &str = "x-wopi-servererror";
/// Signature with the client's current key.
pub const PROOF: &str = "x-wopi-proof";
/// Signature with the client's old key.
pub const PROOF_OLD: &str = "x-wopi-proofold";
/// .NET ticks when the request was signed.
pub const TIMESTAMP: &str = "x-wopi-timestamp";
/// PutRelativeFile suggested mode (UTF-7).
pub const SUGGESTED_TARGET: &str = "x-wopi-suggestedtarget";
/// PutRelativeFile relative mode (UTF-7).
pub const RELATIVE_TARGET: &str = "x-wopi-relativetarget";
/// PutRelativeFile: overwrite an existing target.
pub const OVERWRITE_RELATIVE_TARGET: &str = "x-wopi-overwriterelativetarget";
/// PutRelativeFile: a usable name (UTF-7) on 400/409.
pub const VALID_RELATIVE_TARGET: &str = "x-wopi-validrelativetarget";
/// PutRelativeFile: size of the body.
pub const SIZE: &str = "x-wopi-size";
/// PutRelativeFile during a binary-format conversion.
pub const FILE_CONVERSION: &str = "x-wopi-fileconversion";
/// RenameFile: the new name without extension (UTF-7).
pub const REQUESTED_NAME: &str = "x-wopi-requestedname";
/// RenameFile: why the name is refused.
pub const INVALID_FILE_NAME_ERROR: &str = "x-wopi-invalidfilenameerror";
/// CheckFileInfo: echo of SESSION_CONTEXT.
pub const SESSION_CONTEXT: &str = "x-wopi-sessioncontext";
/// Client correlation id (logging).
pub const CORRELATION_ID: &str = "x-wopi-correlationid";
/// Client session id (logging).
pub const SESSION_ID: &str = "x-wopi-sessionid";
/// Client version (logging).
pub const CLIENT_VERSION: &str = "x-wopi-clientversion";
/// Host version (logging).
pub const SERVER_VERSION: &str = "x-wopi-serverversion";
/// EnumerateAncestors: the list is incomplete.
pub const ENUMERATION_INCOMPLETE: &str = "x-wopi-enumerationincomplete";
/// Collabora/ONLYOFFICE PutFile flag: a user changed the document.
pub const LOOL_IS_MODIFIED_BY_USER: &str = "x-lool-wopi-ismodifiedbyuser";
/// Collabora/ONLYOFFICE PutFile flag: an autosave.
pub const LOOL_IS_AUTOSAVE: &str = "x-lool-wopi-isautosave";
/// Collabora/ONLYOFFICE PutFile flag: the save at the end of the session.
pub const LOOL_IS_EXIT_SAVE: &str = "x-lool-wopi-isexitsave";
