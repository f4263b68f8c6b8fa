//! WOPI lock rules (Microsoft's WOPI REST API docs: Lock, RefreshLock, Unlock,
//! UnlockAndRelock, PutFile) as pure functions.
//!
//! Every lock store applies these to the lock it currently holds for a file (`None` when the
//! file is unlocked *or its lock expired*: an expired lock behaves exactly like no lock), so
//! the decision table lives in one place. A refusal is a [`LockConflict`] carrying the current
//! lock (empty when none), which becomes a 409 with `X-WOPI-Lock`.

use std::fmt;

/// Longest lock id accepted (`SupportsExtendedLockLength`).
pub const MAX_LOCK_ID_LEN: usize = 1024;

/// A validated lock id: non-empty, at most 1024 characters, visible ASCII or space.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockId(String);

/// Why a lock id is refused (→ 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockIdError {
    /// Missing or empty header.
    Empty,
    /// Longer than [`MAX_LOCK_ID_LEN`].
    TooLong,
    /// A control or non-ASCII character.
    BadCharacter,
}

impl fmt::Display for LockIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockIdError::Empty => f.write_str("X-WOPI-Lock is missing or empty"),
            LockIdError::TooLong => {
                write!(f, "X-WOPI-Lock is longer than {MAX_LOCK_ID_LEN} characters")
            }
            LockIdError::BadCharacter => {
                f.write_str("X-WOPI-Lock contains a control or non-ASCII character")
            }
        }
    }
}

impl std::error::Error for LockIdError {}

impl LockId {
    /// Validates a lock id taken from a header.
    pub fn parse(value: &str) -> Result<Self, LockIdError> {
        if value.is_empty() {
            return Err(LockIdError::Empty);
        }
        if value.len() > MAX_LOCK_ID_LEN {
            return Err(LockIdError::TooLong);
        }
        if !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(LockIdError::BadCharacter);
        }
        Ok(LockId(value.to_owned()))
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for LockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A refused lock operation: 409 with `X-WOPI-Lock: current` (empty when unlocked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockConflict {
    /// The lock currently on the file; empty when the file is unlocked.
    pub current: String,
    /// Why (for `X-WOPI-LockFailureReason` and logs).
    pub reason: &'static str,
}

impl LockConflict {
    fn new(current: Option<&str>, reason: &'static str) -> Self {
        LockConflict {
            current: current.unwrap_or_default().to_owned(),
            reason,
        }
    }
}

impl fmt::Display for LockConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for LockConflict {}

/// What a store does when a rule allows the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAction {
    /// Set the requested lock with a fresh expiry.
    Set,
    /// Keep the lock, restart its expiry.
    Refresh,
    /// Remove the lock.
    Remove,
    /// Change nothing (GetLock, PutFile).
    None,
}

/// Lock: unlocked → set; same id → refresh; else conflict.
pub fn lock(current: Option<&str>, requested: &str) -> Result<LockAction, LockConflict> {
    match current {
        None => Ok(LockAction::Set),
        Some(c) if c == requested => Ok(LockAction::Refresh),
        Some(_) => Err(LockConflict::new(
            current,
            "file is locked with a different lock id",
        )),
    }
}

/// RefreshLock: same id → refresh; different id or unlocked → conflict.
pub fn refresh(current: Option<&str>, requested: &str) -> Result<LockAction, LockConflict> {
    match current {
        Some(c) if c == requested => Ok(LockAction::Refresh),
        Some(_) => Err(LockConflict::new(
            current,
            "file is locked with a different lock id",
        )),
        None => Err(LockConflict::new(None, "file is not locked")),
    }
}

/// Unlock: same id → remove; different id or unlocked → conflict.
pub fn unlock(current: Option<&str>, requested: &str) -> Result<LockAction, LockConflict> {
    match current {
        Some(c) if c == requested => Ok(LockAction::Remove),
        Some(_) => Err(LockConflict::new(
            current,
            "file is locked with a different lock id",
        )),
        None => Err(LockConflict::new(None, "file is not locked")),
    }
}

/// UnlockAndRelock: locked with `old` → replace with the new id; else conflict.
pub fn unlock_and_relock(current: Option<&str>, old: &str) -> Result<LockAction, LockConflict> {
    match current {
        Some(c) if c == old => Ok(LockAction::Set),
        Some(_) => Err(LockConflict::new(
            current,
            "X-WOPI-OldLock does not match the current lock",
        )),
        None => Err(LockConflict::new(None, "file is not locked")),
    }
}

/// PutFile: locked → the same id is needed; unlocked → only a 0-byte file may be written.
/// `size` is `None` when the current size is unknown (treated like non-empty).
pub fn put_file(
    current: Option<&str>,
    requested: Option<&str>,
    size: Option<u64>,
) -> Result<LockAction, LockConflict> {
    match (current, requested) {
        (Some(c), Some(r)) if c == r => Ok(LockAction::None),
        (Some(_), _) => Err(LockConflict::new(
            current,
            "file is locked with a different lock id",
        )),
        (None, _) if size == Some(0) => Ok(LockAction::None),
        (None, _) => Err(LockConflict::new(None, "file is not locked and not empty")),
    }
}

/// RenameFile and DeleteFile: allowed when unlocked or when the id matches.
pub fn modify_unlocked_or_matching(
    current: Option<&str>,
    requested: Option<&str>,
) -> Result<LockAction, LockConflict> {
    match (current, requested) {
        (None, _) => Ok(LockAction::None),
        (Some(c), Some(r)) if c == r => Ok(LockAction::None),
        (Some(_), _) => Err(LockConflict::new(
            current,
            "file is locked with a different lock id",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lock_ids() {
        assert_eq!(LockId::parse(""), Err(LockIdError::Empty));
        assert!(LockId::parse(&"x".repeat(1024)).is_ok());
        assert_eq!(LockId::parse(&"x".repeat(1025)), Err(LockIdError::TooLong));
        assert_eq!(LockId::parse("a\nb"), Err(LockIdError::BadCharacter));
        assert!(LockId::parse("{\"S\":\"0136ad16-9725\"}").is_ok());
    }

    #[test]
    fn decision_table() {
        assert_eq!(lock(None, "A"), Ok(LockAction::Set));
        assert_eq!(lock(Some("A"), "A"), Ok(LockAction::Refresh));
        assert_eq!(lock(Some("A"), "B").unwrap_err().current, "A");
        assert_eq!(
            lock(Some("A"), "a").unwrap_err().current,
            "A",
            "case-sensitive"
        );
        assert_eq!(refresh(Some("A"), "A"), Ok(LockAction::Refresh));
        assert_eq!(refresh(None, "A").unwrap_err().current, "");
        assert_eq!(refresh(Some("A"), "B").unwrap_err().current, "A");
        assert_eq!(unlock(Some("A"), "A"), Ok(LockAction::Remove));
        assert_eq!(unlock(None, "A").unwrap_err().current, "");
        assert_eq!(unlock(Some("A"), "B").unwrap_err().current, "A");
        assert_eq!(unlock_and_relock(Some("A"), "A"), Ok(LockAction::Set));
        assert_eq!(unlock_and_relock(Some("A"), "B").unwrap_err().current, "A");
        assert_eq!(unlock_and_relock(None, "A").unwrap_err().current, "");
        assert_eq!(
            put_file(Some("A"), Some("A"), Some(5)),
            Ok(LockAction::None)
        );
        assert_eq!(put_file(Some("A"), None, Some(0)).unwrap_err().current, "A");
        assert_eq!(put_file(None, None, Some(0)), Ok(LockAction::None));
        assert_eq!(put_file(None, Some("A"), Some(0)), Ok(LockAction::None));
        assert_eq!(put_file(None, Some("A"), Some(3)).unwrap_err().current, "");
        assert_eq!(put_file(None, None, None).unwrap_err().current, "");
        assert_eq!(
            modify_unlocked_or_matching(None, None),
            Ok(LockAction::None)
        );
        assert_eq!(
            modify_unlocked_or_matching(Some("A"), Some(""))
                .unwrap_err()
                .current,
            "A"
        );
    }

    proptest! {
        #[test]
        fn lock_id_parser_accepts_exactly_the_valid_ones(s in "[ -~]{0,1100}") {
            let ok = LockId::parse(&s).is_ok();
            prop_assert_eq!(ok, !s.is_empty() && s.len() <= MAX_LOCK_ID_LEN);
            if ok { let id = LockId::parse(&s).unwrap(); prop_assert_eq!(id.as_str(), s.as_str()); }
        }

        #[test]
        fn conflicts_always_carry_the_current_lock(cur in proptest::option::of("[a-z]{1,3}"), req in "[a-z]{1,3}") {
            for r in [lock(cur.as_deref(), &req), refresh(cur.as_deref(), &req), unlock(cur.as_deref(), &req)] {
                if let Err(c) = r { prop_assert_eq!(c.current, cur.clone().unwrap_or_default()); }
            }
        }
    }
}
