//! Permissions between the two protocols, both directions, each as pure functions beside the
//! table that tests them.
//!
//! # WOPI → Docs API (client face)
//!
//! [`HostRights`] (what a WOPI host's CheckFileInfo says the user may do) and [`ActionFlags`]
//! (the action URL's `formsubmit` and `dchat`) → [`Rights`] (`document.permissions`) by
//! [`docs_rights`], and the editor's [`Mode`] by [`mode`]. This is ONLYOFFICE Docs' own WOPI
//! client: `fillDataFromWopiJwt` in `DocService/sources/DocsCoServer.js` (the permissions),
//! `getEditorHtml` and `prepareDocumentForEditing` in `DocService/sources/wopiClient.js` (the
//! mode and the forced view), with these differences, each a restriction:
//!
//! - `download` is `!(DisableExport || HideExportOption)`; Docs leaves it at its default (true).
//! - `review` without `UserCanReview` is stated as `edit` (Docs leaves it out, and its
//!   editors then take `edit`'s value: the same effect, written out).
//! - The editor opens for editing only when the user may edit, review, comment or fill forms
//!   (Docs' own `isEditMode` over these permissions) *and* passes Docs' WOPI gate
//!   (`UserCanOnlyComment || UserCanWrite || UserCanReview`). Docs applies only the gate, so
//!   a `ReadOnly` file of a `UserCanWrite` user is locked and opened in edit mode with nothing
//!   to edit; here it opens for viewing, unlocked.
//! - A view-mode editor gets `edit`, `review`, `comment` and `fillForms` false (Docs' editors
//!   ignore them in view mode; here the signed config says so too).
//! - The forced-view warning is shown only where the user asked to edit (Docs also sets it
//!   for a view action of a user who could not edit).
//!
//! # Docs API → WOPI (host face)
//!
//! An integrator's `document.permissions` and `editorConfig.mode` → what CheckFileInfo tells
//! a WOPI client (`UserCanWrite`, `ReadOnly`, …): the host face's direction, to be written
//! here beside its own table (today `translate::opening` reads `edit` and the mode).

/// What a WOPI host's CheckFileInfo says about the user's rights (absent flags are false;
/// the two `Option`s keep "absent" apart, as Docs' derivation does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostRights {
    /// `UserCanWrite`.
    pub(crate) user_can_write: bool,
    /// `ReadOnly`.
    pub(crate) read_only: bool,
    /// `UserCanReview` (absent: `None`).
    pub(crate) user_can_review: Option<bool>,
    /// `UserCanOnlyComment`.
    pub(crate) user_can_only_comment: bool,
    /// `SupportsReviewing` (absent: `None`).
    pub(crate) supports_reviewing: Option<bool>,
    /// `CopyPasteRestrictions`.
    pub(crate) copy_paste_restrictions: Option<String>,
    /// `DisablePrint`.
    pub(crate) disable_print: bool,
    /// `HidePrintOption`.
    pub(crate) hide_print_option: bool,
    /// `DisableExport`.
    pub(crate) disable_export: bool,
    /// `HideExportOption`.
    pub(crate) hide_export_option: bool,
}

/// The action URL's query as far as permissions go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ActionFlags {
    /// `formsubmit=1` (the Pdf app's `formsubmit` action).
    pub(crate) form_submit: bool,
    /// `dchat=1` (the host's `DISABLE_CHAT` placeholder).
    pub(crate) disable_chat: bool,
}

/// `document.permissions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rights {
    /// `edit`
    pub(crate) edit: bool,
    /// `review`
    pub(crate) review: bool,
    /// `comment`
    pub(crate) comment: bool,
    /// `fillForms`
    pub(crate) fill_forms: bool,
    /// `copy`
    pub(crate) copy: bool,
    /// `print`
    pub(crate) print: bool,
    /// `download`
    pub(crate) download: bool,
    /// `chat`
    pub(crate) chat: bool,
}

impl Rights {
    /// Whether ONLYOFFICE Docs would let these permissions change the document (its
    /// `isEditMode`: edit, review, comment or fill forms).
    pub(crate) fn changes_the_document(&self) -> bool {
        self.edit || self.review || self.comment || self.fill_forms
    }

    /// What a view-mode editor is given: nothing that changes the document.
    #[must_use]
    pub(crate) fn for_viewing(self) -> Rights {
        Rights {
            edit: false,
            review: false,
            comment: false,
            fill_forms: false,
            ..self
        }
    }
}

/// `document.permissions` for a user the host describes with `h`, opened by an action with
/// `a` (see the module doc for where this differs from Docs).
pub(crate) fn docs_rights(h: &HostRights, a: ActionFlags) -> Rights {
    let edit = !h.read_only && !h.user_can_only_comment && h.user_can_write && !a.form_submit;
    let review = if h.user_can_only_comment || h.supports_reviewing == Some(false) {
        false
    } else {
        h.user_can_review.unwrap_or(edit)
    };
    Rights {
        edit,
        review,
        comment: edit || h.user_can_only_comment,
        fill_forms: edit || a.form_submit,
        copy: !matches!(
            h.copy_paste_restrictions.as_deref(),
            Some("CurrentDocumentOnly" | "BlockAll")
        ),
        print: !h.disable_print && !h.hide_print_option,
        download: !h.disable_export && !h.hide_export_option,
        chat: !a.disable_chat,
    }
}

/// How the editor opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Edit mode: the file is locked and the permissions say what the user may change.
    Edit,
    /// View mode; `forced` when the user asked to edit and may not (or the lock failed):
    /// the page tells them so, as Docs' forced-view warning does.
    View {
        /// The user asked to edit.
        forced: bool,
    },
}

impl Mode {
    /// Edit mode.
    pub(crate) fn is_edit(self) -> bool {
        self == Mode::Edit
    }
}

/// Docs' WOPI gate (`wopiClient.js`): a user who may neither write, review nor comment
/// never gets edit mode.
fn passes_docs_gate(h: &HostRights) -> bool {
    h.user_can_only_comment || h.user_can_write || h.user_can_review == Some(true)
}

/// The mode of an editor opened by an edit action (`edit_requested`) or a view action, before
/// the lock is taken (a failed Lock makes it `View { forced: true }`).
pub(crate) fn mode(h: &HostRights, a: ActionFlags, edit_requested: bool) -> Mode {
    if !edit_requested {
        Mode::View { forced: false }
    } else if passes_docs_gate(h) && docs_rights(h, a).changes_the_document() {
        Mode::Edit
    } else {
        Mode::View { forced: true }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    /// One row per case, derived by hand from `fillDataFromWopiJwt` (DocsCoServer.js) and
    /// `getEditorHtml` (wopiClient.js) with the differences of the module doc:
    ///
    /// `W RO Rv OC SR CPR DP HP DE HE | action dchat | mode e r c f cp pr dl ch`
    ///
    /// W UserCanWrite, RO ReadOnly, Rv UserCanReview, OC UserCanOnlyComment, SR
    /// SupportsReviewing, CPR CopyPasteRestrictions (`-`, `cur` CurrentDocumentOnly, `all`
    /// BlockAll), DP DisablePrint, HP HidePrintOption, DE DisableExport, HE HideExportOption
    /// (`1`/`0`; `-` absent for Rv and SR); action `edit`, `view` or `form` (edit with
    /// formsubmit=1); mode `edit`, `view` or `forced`; then the permissions as signed:
    /// edit, review, comment, fillForms, copy, print, download, chat.
    pub(crate) const TABLE: &[&str] = &[
        // A writer: everything; the view action gives a viewer.
        "1 0 - 0 - -   0 0 0 0 | edit 0 | edit   1 1 1 1 1 1 1 1",
        "1 0 - 0 - -   0 0 0 0 | edit 1 | edit   1 1 1 1 1 1 1 0",
        "1 0 - 0 - -   0 0 0 0 | view 0 | view   0 0 0 0 1 1 1 1",
        "1 0 - 0 - -   0 0 0 0 | view 1 | view   0 0 0 0 1 1 1 0",
        // formsubmit: no edit, fill forms only (review follows edit when absent).
        "1 0 - 0 - -   0 0 0 0 | form 0 | edit   0 0 0 1 1 1 1 1",
        "1 0 1 0 - -   0 0 0 0 | form 0 | edit   0 1 0 1 1 1 1 1",
        // A reader asking to submit a form: Docs' gate forces view.
        "0 0 - 0 - -   0 0 0 0 | form 0 | forced 0 0 0 0 1 1 1 1",
        "0 0 - 0 - -   0 0 0 0 | edit 0 | forced 0 0 0 0 1 1 1 1",
        "0 0 - 0 - -   0 0 0 0 | view 0 | view   0 0 0 0 1 1 1 1",
        // ReadOnly: no edit; here a view (Docs would lock and open an edit mode with nothing).
        "1 1 - 0 - -   0 0 0 0 | edit 0 | forced 0 0 0 0 1 1 1 1",
        "1 1 0 0 - -   0 0 0 0 | edit 1 | forced 0 0 0 0 1 1 1 0",
        // ReadOnly with review or comment: Docs opens edit mode for them.
        "1 1 1 0 - -   0 0 0 0 | edit 0 | edit   0 1 0 0 1 1 1 1",
        "0 1 1 0 - -   0 0 0 0 | edit 0 | edit   0 1 0 0 1 1 1 1",
        "1 1 - 1 - -   0 0 0 0 | edit 0 | edit   0 0 1 0 1 1 1 1",
        // Comment only: comments, no edit, no review even when UserCanReview says so.
        "0 0 - 1 - -   0 0 0 0 | edit 0 | edit   0 0 1 0 1 1 1 1",
        "1 0 1 1 - -   0 0 0 0 | edit 0 | edit   0 0 1 0 1 1 1 1",
        "1 0 - 1 - -   0 0 0 0 | form 0 | edit   0 0 1 1 1 1 1 1",
        "0 0 - 1 - -   0 0 0 0 | view 0 | view   0 0 0 0 1 1 1 1",
        // Review only (no UserCanWrite): review in edit mode.
        "0 0 1 0 - -   0 0 0 0 | edit 0 | edit   0 1 0 0 1 1 1 1",
        "0 0 1 0 0 -   0 0 0 0 | edit 0 | forced 0 0 0 0 1 1 1 1",
        "0 0 1 0 1 -   0 0 0 0 | edit 0 | edit   0 1 0 0 1 1 1 1",
        // UserCanReview false or SupportsReviewing false: no review for a writer.
        "1 0 0 0 - -   0 0 0 0 | edit 0 | edit   1 0 1 1 1 1 1 1",
        "1 0 1 0 0 -   0 0 0 0 | edit 0 | edit   1 0 1 1 1 1 1 1",
        "1 0 - 0 0 -   0 0 0 0 | edit 0 | edit   1 0 1 1 1 1 1 1",
        "1 0 - 0 1 -   0 0 0 0 | edit 0 | edit   1 1 1 1 1 1 1 1",
        // UserCanReview false and nothing else: Docs' gate refuses edit mode.
        "0 0 0 0 - -   0 0 0 0 | edit 0 | forced 0 0 0 0 1 1 1 1",
        // Copy, print and export restrictions hold in every mode.
        "1 0 - 0 - cur 0 0 0 0 | edit 0 | edit   1 1 1 1 0 1 1 1",
        "1 0 - 0 - all 0 0 0 0 | view 0 | view   0 0 0 0 0 1 1 1",
        "0 0 - 0 - all 0 0 0 0 | edit 1 | forced 0 0 0 0 0 1 1 0",
        "1 0 - 0 - -   1 0 0 0 | edit 0 | edit   1 1 1 1 1 0 1 1",
        "1 0 - 0 - -   0 1 0 0 | view 0 | view   0 0 0 0 1 0 1 1",
        "1 0 - 0 - -   0 0 1 0 | edit 0 | edit   1 1 1 1 1 1 0 1",
        "1 0 - 0 - -   0 0 0 1 | form 1 | edit   0 0 0 1 1 1 0 0",
        "0 0 - 0 - -   0 0 1 1 | view 0 | view   0 0 0 0 1 1 0 1",
        "1 0 0 0 0 all 1 1 1 1 | edit 1 | edit   1 0 1 1 0 0 0 0",
        "0 1 - 1 0 cur 1 0 0 1 | edit 0 | edit   0 0 1 0 0 0 0 1",
    ];

    /// A parsed row: the input and what is expected of it.
    pub(crate) struct Row {
        pub(crate) host: HostRights,
        pub(crate) flags: ActionFlags,
        pub(crate) edit_requested: bool,
        pub(crate) mode: Mode,
        pub(crate) rights: Rights,
    }

    pub(crate) fn parse(row: &str) -> Row {
        let t: Vec<&str> = row.split_whitespace().filter(|t| *t != "|").collect();
        assert_eq!(t.len(), 21, "{row}");
        let b = |s: &str| match s {
            "1" => true,
            "0" => false,
            _ => panic!("{row}: `{s}` is not 0/1"),
        };
        let o = |s: &str| (s != "-").then(|| b(s));
        let host = HostRights {
            user_can_write: b(t[0]),
            read_only: b(t[1]),
            user_can_review: o(t[2]),
            user_can_only_comment: b(t[3]),
            supports_reviewing: o(t[4]),
            copy_paste_restrictions: match t[5] {
                "-" => None,
                "cur" => Some("CurrentDocumentOnly".into()),
                "all" => Some("BlockAll".into()),
                x => panic!("{row}: CPR `{x}`"),
            },
            disable_print: b(t[6]),
            hide_print_option: b(t[7]),
            disable_export: b(t[8]),
            hide_export_option: b(t[9]),
        };
        let flags = ActionFlags {
            form_submit: t[10] == "form",
            disable_chat: b(t[11]),
        };
        let mode = match t[12] {
            "edit" => Mode::Edit,
            "view" => Mode::View { forced: false },
            "forced" => Mode::View { forced: true },
            x => panic!("{row}: mode `{x}`"),
        };
        let rights = Rights {
            edit: b(t[13]),
            review: b(t[14]),
            comment: b(t[15]),
            fill_forms: b(t[16]),
            copy: b(t[17]),
            print: b(t[18]),
            download: b(t[19]),
            chat: b(t[20]),
        };
        Row {
            host,
            flags,
            edit_requested: t[10] != "view",
            mode,
            rights,
        }
    }

    #[test]
    fn the_table_of_modes_and_permissions() {
        assert!(TABLE.len() >= 30);
        for row in TABLE {
            let r = parse(row);
            let mode = mode(&r.host, r.flags, r.edit_requested);
            assert_eq!(mode, r.mode, "{row}");
            let rights = docs_rights(&r.host, r.flags);
            let signed = if mode.is_edit() {
                rights
            } else {
                rights.for_viewing()
            };
            assert_eq!(signed, r.rights, "{row}");
        }
    }
}
