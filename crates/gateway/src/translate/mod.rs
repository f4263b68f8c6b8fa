//! The translation between the two protocols, as pure functions from typed input to typed
//! output (no I/O, no clock, no randomness: those are passed in). Each is tested against
//! golden JSON files in `golden/` or a table of cases beside it.
//!
//! The client face's functions take input types of their own module (or the settings'
//! `Profile`), never a face's: the client face fills them. The host face's [`opening`] and
//! [`file_info`] still take the host face's `AccessClaims` and `FileMeta`; moving those to
//! input types of their own belongs with the host face's next change here. By module:
//!
//! - [`permissions`]: both directions of the rights — client face: CheckFileInfo's rights and
//!   the action's query → `document.permissions` and the editor's mode, as ONLYOFFICE Docs'
//!   own WOPI client derives them (its table is in the tests); host face: an integrator's
//!   `document.permissions` and mode → a grant per the WOPI clients' families (CheckFileInfo's
//!   rights and restrictions, `dchat`, `formsubmit`), or a view or a refusal where a client
//!   cannot state a restriction (its table and an exhaustive never-widens check in the tests).
//! - [`editor_config`]: client face — CheckFileInfo's facts ([`editor_config::FileFacts`]),
//!   rights ([`permissions::HostRights`]) and the action's query
//!   ([`editor_config::ActionQuery`]), plus the host's profile → the Docs API editor config.
//! - [`opening`]: host face — an integrator's Docs API editor config → the facts of the file
//!   and user a WOPI access token carries.
//! - [`file_info`]: host face — those facts and the file's state → CheckFileInfo.
//! - [`host_page`]: host face — the origins and the close target with which the gateway's
//!   host page relays a WOPI client's messages to the integrator's page as Docs API events.
//! - [`saves`]: host face — a PutFile's headers (`X-WOPI-Editors`, the autosave and exit-save
//!   flags) → the callbacks' `users` and `forcesavetype`.

pub(crate) mod branding;
pub(crate) mod editor_config;
pub(crate) mod file_info;
pub(crate) mod host_page;
pub(crate) mod opening;
pub(crate) mod permissions;
pub(crate) mod saves;

/// Deep-merges `patch` into `base` (objects merge key by key; anything else replaces).
pub(crate) fn deep_merge(base: &mut serde_json::Value, patch: &serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                deep_merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// Compares `actual` with the golden file `golden/{name}.json`; with `UPDATE_GOLDEN=1` in
/// the environment the file is (re)written instead.
#[cfg(test)]
pub(crate) fn assert_golden(name: &str, actual: &serde_json::Value) {
    #![allow(clippy::unwrap_used)]
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/translate/golden")
        .join(format!("{name}.json"));
    let pretty = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &pretty).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    let expected: serde_json::Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(
        actual,
        &expected,
        "{name}: output differs from {}:\n{pretty}",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn deep_merge_merges_objects_and_replaces_the_rest() {
        let mut a = json!({"a": {"b": 1, "c": [1]}, "d": 1});
        super::deep_merge(&mut a, &json!({"a": {"c": [2], "e": true}, "f": "x"}));
        assert_eq!(
            a,
            json!({"a": {"b": 1, "c": [2], "e": true}, "d": 1, "f": "x"})
        );
    }
}
