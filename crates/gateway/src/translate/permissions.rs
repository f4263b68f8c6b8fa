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
//! An integrator's `document.permissions` and `editorConfig.mode` → [`Rights`] by
//! [`requested_rights`] (Docs' defaults: `review` and `comment` follow `edit`, `fillForms`
//! follows `edit || review`, the rest are true; a view mode changes nothing). Then, for the WOPI
//! clients that offer the file ([`ClientCaps`], read from their discovery by [`client_kind`]),
//! [`host_grant`] decides a [`Grant`]: what CheckFileInfo says ([`Grant::file_info`]) and
//! which action opens it (`formsubmit`, the `DISABLE_CHAT` placeholder). The rule is that a
//! WOPI client is never given more than the integrator signed:
//!
//! - What a client can be told, by family (from its discovery: [`ClientKind`]):
//!   ONLYOFFICE — `UserCanWrite`/`ReadOnly`, `UserCanReview` + `SupportsReviewing`,
//!   `UserCanOnlyComment`, `CopyPasteRestrictions`, `DisablePrint`/`HidePrintOption`, the
//!   `formsubmit` action and `dchat=1` (its `fillDataFromWopiJwt`, DocsCoServer.js); *not*
//!   `download`: that function derives none, so Docs' default (true) holds. Collabora —
//!   `UserCanWrite`, `UserCanOnlyComment`, `DisableCopy`, `DisablePrint`/`HidePrintOption`,
//!   `DisableExport`/`HideExportOption` (its WopiStorage); no review-only, no form-only.
//!   Microsoft 365 — `UserCanWrite`, `DisablePrint`, `CopyPasteRestrictions` (the WOPI
//!   spec's own properties). Any other client — `UserCanWrite` only. `chat: false` needs the
//!   `DISABLE_CHAT` placeholder in every urlsrc of the client's actions for the file type.
//! - `edit: true` subsumes `comment` and `fillForms` (a writer can type anything a comment
//!   or a form field holds): a writer's comment and form rights are not restrictions to
//!   enforce. `review: false` for a writer is stated where it can be (`UserCanReview`).
//! - Rights without `edit` that a client cannot state (review only, comment only, fill forms
//!   only) are *enforced by viewing*: with `unenforceable = "view"` the session opens for
//!   viewing, with `"refuse"` it is refused (403).
//! - `copy`, `print`, `download` or `chat` false that a client cannot state is refused
//!   whatever `unenforceable` says: viewing would not enforce it (every client's viewer
//!   prints, copies and downloads).
//! - A right the client states more narrowly than asked (a reviewer's or commenter's
//!   `fillForms` where there is no `formsubmit` action; a reviewer's `comment`) is narrowed,
//!   never widened.
//! - With several trusted clients offering the file, the session gets what every one of
//!   them can enforce (one access token serves all of their actions).
//!
//! Fill forms only is `UserCanWrite` *and* `ReadOnly` with the `formsubmit` action: ONLYOFFICE
//! then derives fill-forms only, and a user who strips `formsubmit=1` from the action URL
//! gets nothing to change (not an editor).

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

// ---------------------------------------------------------------------------------------
// Docs API → WOPI (host face)
// ---------------------------------------------------------------------------------------

/// An integrator's `document.permissions` and `editorConfig.mode` as the rights the user has
/// (Docs API defaults; `mode_view`: the config opens a viewer, which changes nothing).
pub(crate) fn requested_rights(
    p: Option<&docs_api::config::Permissions>,
    mode_view: bool,
) -> Rights {
    let get = |f: fn(&docs_api::config::Permissions) -> Option<bool>| p.and_then(f);
    let edit = get(|p| p.edit).unwrap_or(true);
    let review = get(|p| p.review).unwrap_or(edit);
    let comment = get(|p| p.comment).unwrap_or(edit);
    let fill_forms = get(|p| p.fill_forms).unwrap_or(edit || review);
    let rights = Rights {
        edit,
        review,
        comment,
        fill_forms,
        copy: get(|p| p.copy).unwrap_or(true),
        print: get(|p| p.print).unwrap_or(true),
        download: get(|p| p.download).unwrap_or(true),
        chat: get(|p| p.chat).unwrap_or(true),
    };
    if mode_view {
        rights.for_viewing()
    } else {
        rights
    }
}

/// A WOPI client's family, as its discovery shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientKind {
    /// ONLYOFFICE Docs (urlsrc under `/hosting/wopi/`).
    OnlyOffice,
    /// Collabora Online (urlsrc to `cool.html` or `loleaflet.html`).
    Collabora,
    /// Microsoft 365 for the web or Office Online Server (urlsrc on `officeapps.live.com`,
    /// `officeapps-df.live.com`, or an `.aspx` frame).
    Microsoft,
    /// Anything else: only the WOPI basics are taken as understood.
    Other,
}

impl ClientKind {
    /// Its name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ClientKind::OnlyOffice => "ONLYOFFICE",
            ClientKind::Collabora => "Collabora Online",
            ClientKind::Microsoft => "Microsoft 365",
            ClientKind::Other => "an unidentified WOPI client",
        }
    }
}

/// The family of the client whose actions have these `urlsrc`s (the first that identifies
/// one wins).
pub(crate) fn client_kind<'a>(urlsrcs: impl IntoIterator<Item = &'a str>) -> ClientKind {
    for u in urlsrcs {
        let lower = u.to_ascii_lowercase();
        let (host, path) = match lower.split_once("://") {
            Some((_, rest)) => rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p)),
            None => ("", lower.as_str()),
        };
        let path = path.split('?').next().unwrap_or("");
        if path.contains("hosting/wopi/") {
            return ClientKind::OnlyOffice;
        }
        if path.ends_with("cool.html") || path.ends_with("loleaflet.html") {
            return ClientKind::Collabora;
        }
        let host = host.split(':').next().unwrap_or("");
        if host.ends_with("officeapps.live.com")
            || host.ends_with("officeapps-df.live.com")
            || path.ends_with(".aspx")
        {
            return ClientKind::Microsoft;
        }
    }
    ClientKind::Other
}

/// What one WOPI client can be told about one file type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientCaps {
    /// Its family.
    pub(crate) kind: ClientKind,
    /// Every urlsrc of its actions for the file type has the `DISABLE_CHAT` placeholder.
    pub(crate) disable_chat: bool,
    /// It publishes a `formsubmit` action for the file type.
    pub(crate) form_submit: bool,
}

impl ClientCaps {
    fn copy(self) -> bool {
        self.kind != ClientKind::Other
    }
    fn print(self) -> bool {
        self.kind != ClientKind::Other
    }
    fn download(self) -> bool {
        self.kind == ClientKind::Collabora
    }
    fn review_only(self) -> bool {
        self.kind == ClientKind::OnlyOffice
    }
    fn comment_only(self) -> bool {
        matches!(self.kind, ClientKind::OnlyOffice | ClientKind::Collabora)
    }
    fn forms_only(self) -> bool {
        self.kind == ClientKind::OnlyOffice && self.form_submit
    }
}

/// What a WOPI session is granted. Stored in the access token (short names).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub(crate) struct Grant {
    /// Full editing (`UserCanWrite`).
    #[serde(rename = "w", default)]
    pub(crate) write: bool,
    /// Reviewing: a writer's right to track changes, or alone review only (`UserCanReview`).
    #[serde(rename = "r", default)]
    pub(crate) review: bool,
    /// Comments only (`UserCanOnlyComment`).
    #[serde(rename = "oc", default)]
    pub(crate) only_comment: bool,
    /// Opened by the `formsubmit` action: forms only (or, with `only_comment`, comments and
    /// forms).
    #[serde(rename = "fs", default)]
    pub(crate) form_submit: bool,
    /// May copy out of the document.
    #[serde(rename = "cp", default)]
    pub(crate) copy: bool,
    /// May print.
    #[serde(rename = "pr", default)]
    pub(crate) print: bool,
    /// May download or export.
    #[serde(rename = "dl", default)]
    pub(crate) download: bool,
    /// May chat.
    #[serde(rename = "ch", default)]
    pub(crate) chat: bool,
}

impl Grant {
    /// The grant of a token from before grants (`w`: it may write): no restriction but edit.
    pub(crate) fn legacy(write: bool) -> Grant {
        Grant {
            write,
            review: write,
            copy: true,
            print: true,
            download: true,
            chat: true,
            ..Grant::default()
        }
    }

    /// Whether the session changes the document through the WOPI client (Lock, PutFile).
    pub(crate) fn saves(&self) -> bool {
        self.write || self.review || self.only_comment || self.form_submit
    }

    /// Nothing that changes the document.
    #[must_use]
    pub(crate) fn for_viewing(self) -> Grant {
        Grant {
            write: false,
            review: false,
            only_comment: false,
            form_submit: false,
            ..self
        }
    }

    /// Both grants' rights (what every client can enforce).
    #[must_use]
    fn meet(self, o: Grant) -> Grant {
        Grant {
            write: self.write && o.write,
            review: self.review && o.review,
            only_comment: self.only_comment && o.only_comment,
            form_submit: self.form_submit && o.form_submit,
            copy: self.copy && o.copy,
            print: self.print && o.print,
            download: self.download && o.download,
            chat: self.chat && o.chat,
        }
    }

    /// The rights CheckFileInfo states for this grant (set on every client's vocabulary; each
    /// client reads its own).
    pub(crate) fn file_info(&self, info: &mut wopi::CheckFileInfo) {
        use serde_json::Value;
        // Forms only: UserCanWrite passes ONLYOFFICE's gate, ReadOnly keeps `edit` false
        // even without `formsubmit=1`.
        let can_write = self.write || self.only_comment || self.form_submit;
        info.user_can_write = Some(can_write);
        info.read_only = Some(!self.write && !self.only_comment);
        info.supports_reviewing = Some(true);
        info.user_can_review = Some(self.review);
        info.user_can_only_comment = self.only_comment.then_some(true);
        if !self.copy {
            info.copy_paste_restrictions = Some("CurrentDocumentOnly".into());
            info.extra.insert("DisableCopy".into(), Value::Bool(true));
        }
        if !self.print {
            info.disable_print = Some(true);
            info.hide_print_option = Some(true);
        }
        if !self.download {
            info.extra.insert("DisableExport".into(), Value::Bool(true));
            info.extra
                .insert("HideExportOption".into(), Value::Bool(true));
        }
        // No Save As (PutRelativeFile has no Docs API counterpart, and it would be a copy out).
        info.user_can_not_write_relative = Some(true);
    }
}

/// What [`host_grant`] decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Open with this grant; `viewing` names the restriction that made it view only.
    Open {
        /// The grant.
        grant: Grant,
        /// Why the session fell back to viewing (`None`: the config's own rights).
        viewing: Option<String>,
    },
    /// Refuse the session: why.
    Refuse(String),
}

/// A restriction one client cannot state: whether viewing enforces it, and what it is.
enum Unstated {
    ByViewing(String),
    Never(String),
}

fn client_grant(r: &Rights, c: ClientCaps) -> Result<Grant, Unstated> {
    let who = c.kind.name();
    let never = |what: &str| Err(Unstated::Never(format!("{what} cannot be stated to {who}")));
    if !r.copy && !c.copy() {
        return never("`copy: false`");
    }
    if !r.print && !c.print() {
        return never("`print: false`");
    }
    if !r.download && !c.download() {
        return never("`download: false`");
    }
    if !r.chat && !c.disable_chat {
        return never("`chat: false` (no DISABLE_CHAT placeholder in its action URL)");
    }
    let mut g = Grant {
        copy: r.copy,
        print: r.print,
        download: r.download,
        chat: r.chat,
        ..Grant::default()
    };
    let by_viewing = |what: &str| {
        Err(Unstated::ByViewing(format!(
            "{what} cannot be stated to {who}"
        )))
    };
    if r.edit {
        g.write = true;
        g.review = r.review;
    } else if r.review {
        if !c.review_only() {
            return by_viewing("review only");
        }
        g.review = true;
    } else if r.comment {
        if !c.comment_only() {
            return by_viewing("comment only");
        }
        g.only_comment = true;
        g.form_submit = r.fill_forms && c.forms_only();
    } else if r.fill_forms {
        if !c.forms_only() {
            return by_viewing("fill forms only");
        }
        g.form_submit = true;
    }
    Ok(g)
}

/// The grant for a user with rights `r` on a file the clients `clients` offer (see the
/// module doc). No client: the rights as they are (nothing to open them anyway).
pub(crate) fn host_grant(
    r: &Rights,
    clients: &[ClientCaps],
    policy: crate::settings::Unenforceable,
) -> Decision {
    let mut grant: Option<Grant> = None;
    let mut viewing = None;
    for c in clients {
        let g = match client_grant(r, *c) {
            Ok(g) => g,
            Err(Unstated::Never(why)) => return Decision::Refuse(why),
            Err(Unstated::ByViewing(why)) => match policy {
                crate::settings::Unenforceable::Refuse => return Decision::Refuse(why),
                crate::settings::Unenforceable::View => {
                    viewing.get_or_insert(why);
                    match client_grant(&r.for_viewing(), *c) {
                        Ok(g) => g,
                        Err(Unstated::Never(why) | Unstated::ByViewing(why)) => {
                            return Decision::Refuse(why);
                        }
                    }
                }
            },
        };
        grant = Some(grant.map_or(g, |h| h.meet(g)));
    }
    // No client offers the file: the rights as they are (no action opens them).
    let grant = grant.unwrap_or(Grant {
        write: r.edit,
        review: r.review,
        only_comment: !r.edit && !r.review && r.comment,
        form_submit: !r.edit && !r.review && r.fill_forms,
        copy: r.copy,
        print: r.print,
        download: r.download,
        chat: r.chat,
    });
    let grant = if viewing.is_some() {
        grant.for_viewing()
    } else {
        grant
    };
    Decision::Open { grant, viewing }
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

#[cfg(test)]
mod host_tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::settings::Unenforceable;
    use wopi::CheckFileInfo;

    /// ONLYOFFICE Docs' own derivation of a WOPI session's permissions, ported line by line
    /// from `fillDataFromWopiJwt` (DocService/sources/DocsCoServer.js; `formsubmit` and
    /// `dchat` are the action URL's query) with the edit-mode gate of `getEditorHtml`
    /// (DocService/sources/wopiClient.js: `UserCanOnlyComment || UserCanWrite ||
    /// UserCanReview`, else a forced view). `download` is not derived there: Docs' default
    /// (true) holds. A view action, or a failed gate, gives a viewer.
    fn onlyoffice_derives(fi: &CheckFileInfo, action_url: &str) -> Rights {
        let q = |name: &str| {
            action_url
                .split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("")
                .split('&')
                .any(|p| p == format!("{name}=1"))
        };
        let t = |o: Option<bool>| o == Some(true);
        let formsubmit = q("formsubmit");
        let edit =
            !t(fi.read_only) && !t(fi.user_can_only_comment) && t(fi.user_can_write) && !formsubmit;
        // `undefined` review: Docs' editors take `edit`'s value. The two `false` branches
        // are Docs' own nested conditional, kept as written.
        #[allow(clippy::if_same_then_else)]
        let review = if t(fi.user_can_only_comment) || fi.supports_reviewing == Some(false) {
            Some(false)
        } else if fi.user_can_review == Some(false) {
            Some(false)
        } else {
            fi.user_can_review
        };
        let rights = Rights {
            edit,
            review: review.unwrap_or(edit),
            comment: edit || t(fi.user_can_only_comment),
            fill_forms: edit || formsubmit,
            copy: !matches!(
                fi.copy_paste_restrictions.as_deref(),
                Some("CurrentDocumentOnly" | "BlockAll")
            ),
            print: !t(fi.disable_print) && !t(fi.hide_print_option),
            download: true,
            chat: !q("dchat"),
        };
        let gate = t(fi.user_can_only_comment) || t(fi.user_can_write) || t(fi.user_can_review);
        if action_url.contains("/view?") || !gate {
            rights.for_viewing()
        } else {
            rights
        }
    }

    fn extra(fi: &CheckFileInfo, name: &str) -> bool {
        fi.extra.get(name) == Some(&serde_json::Value::Bool(true))
    }

    /// Collabora Online, by the CheckFileInfo properties its WopiStorage reads: a writer
    /// edits, reviews, comments and fills forms; `UserCanOnlyComment` leaves comments;
    /// `DisableCopy`, `DisablePrint`/`HidePrintOption`, `DisableExport`/`HideExportOption`;
    /// no chat switch in its action URL.
    fn collabora_derives(fi: &CheckFileInfo, action_url: &str) -> Rights {
        let t = |o: Option<bool>| o == Some(true);
        let write = t(fi.user_can_write) && !action_url.contains("/view?");
        let edit = write && !t(fi.user_can_only_comment);
        Rights {
            edit,
            review: edit,
            comment: write,
            fill_forms: edit,
            copy: !extra(fi, "DisableCopy"),
            print: !t(fi.disable_print) && !t(fi.hide_print_option),
            download: !extra(fi, "DisableExport") && !extra(fi, "HideExportOption"),
            chat: true,
        }
    }

    /// Microsoft 365 for the web, by the WOPI spec's properties: `UserCanWrite` edits (and
    /// with it reviews, comments, fills forms), `DisablePrint`, `CopyPasteRestrictions`,
    /// `DISABLE_CHAT`; downloads always.
    fn microsoft_derives(fi: &CheckFileInfo, action_url: &str) -> Rights {
        let edit = fi.user_can_write == Some(true) && !action_url.contains("/view?");
        Rights {
            edit,
            review: edit,
            comment: edit,
            fill_forms: edit,
            copy: fi.copy_paste_restrictions.is_none(),
            print: fi.disable_print != Some(true),
            download: true,
            chat: !action_url.contains("dchat=1"),
        }
    }

    fn caps(kind: ClientKind, form_submit: bool) -> ClientCaps {
        ClientCaps {
            kind,
            disable_chat: matches!(kind, ClientKind::OnlyOffice | ClientKind::Microsoft),
            form_submit: form_submit && kind == ClientKind::OnlyOffice,
        }
    }

    /// The action the host page opens for `g` on a client of `kind`, resolved as the host
    /// face resolves it.
    fn action_url(kind: ClientKind, g: &Grant) -> String {
        let name = if g.form_submit {
            "edit?formsubmit=1&"
        } else if g.saves() {
            "edit?"
        } else {
            "view?"
        };
        let urlsrc = match kind {
            ClientKind::OnlyOffice => format!(
                "https://oo.test/hosting/wopi/word/{name}<dchat=DISABLE_CHAT&><wopisrc=WOPI_SOURCE&>"
            ),
            ClientKind::Collabora => {
                format!("https://co.test/browser/1/cool.html/{name}<wopisrc=WOPI_SOURCE&>")
            }
            _ => format!(
                "https://word-edit.officeapps.live.com/we/{name}<dchat=DISABLE_CHAT&><wopisrc=WOPI_SOURCE&>"
            ),
        };
        wopi::discovery::resolve_urlsrc(&urlsrc, |p| match p {
            "WOPI_SOURCE" => Some("W".into()),
            "DISABLE_CHAT" => (!g.chat).then(|| "1".to_owned()),
            _ => None,
        })
    }

    fn derive(kind: ClientKind, g: &Grant) -> Rights {
        let mut fi = CheckFileInfo::default();
        g.file_info(&mut fi);
        // The JSON a client reads, not the struct: what goes over the wire.
        let fi: CheckFileInfo = serde_json::from_value(serde_json::to_value(&fi).unwrap()).unwrap();
        let url = action_url(kind, g);
        match kind {
            ClientKind::OnlyOffice => onlyoffice_derives(&fi, &url),
            ClientKind::Collabora => collabora_derives(&fi, &url),
            _ => microsoft_derives(&fi, &url),
        }
    }

    fn bits(r: &Rights) -> String {
        [
            r.edit,
            r.review,
            r.comment,
            r.fill_forms,
            r.copy,
            r.print,
            r.download,
            r.chat,
        ]
        .iter()
        .map(|b| if *b { '1' } else { '0' })
        .collect()
    }

    fn permissions(p: &str) -> docs_api::config::Permissions {
        let v: Vec<Option<bool>> = p
            .chars()
            .map(|c| match c {
                '1' => Some(true),
                '0' => Some(false),
                '-' => None,
                x => panic!("{p}: `{x}`"),
            })
            .collect();
        assert_eq!(v.len(), 8, "{p}");
        docs_api::config::Permissions {
            edit: v[0],
            review: v[1],
            comment: v[2],
            fill_forms: v[3],
            copy: v[4],
            print: v[5],
            download: v[6],
            chat: v[7],
            extra: serde_json::Map::new(),
        }
    }

    /// What one client gets: `R` refused, or `E`/`V` (as asked / fallen back to viewing).
    fn outcome(
        r: &Rights,
        kind: ClientKind,
        pdf: bool,
        policy: Unenforceable,
    ) -> (char, Option<Grant>) {
        match host_grant(r, &[caps(kind, pdf)], policy) {
            Decision::Refuse(_) => ('R', None),
            Decision::Open { grant, viewing } => {
                (if viewing.is_some() { 'V' } else { 'E' }, Some(grant))
            }
        }
    }

    /// `document.permissions` (edit review comment fillForms copy print download chat: `1`,
    /// `0`, `-` absent), the mode (`e`/`v`), the file (`docx`, or `pdf` for which ONLYOFFICE
    /// publishes a `formsubmit` action) | ONLYOFFICE: outcome and what its own derivation
    /// gives back over the gateway's CheckFileInfo and action URL (edit review comment
    /// fillForms copy print download chat) | Collabora | Microsoft 365 — with
    /// `unenforceable = "view"`. Derived by hand from the module doc's rules.
    const TABLE: &[&str] = &[
        // Defaults, and Docs' own defaults spelled out.
        "-------- e docx | E 11111111 | E | E",
        "1------- e docx | E 11111111 | E | E",
        "11111111 e docx | E 11111111 | E | E",
        // A view mode or edit: false: a viewer everywhere.
        "-------- v docx | E 00001111 | E | E",
        "1111---- v docx | E 00001111 | E | E",
        "0------- e docx | E 00001111 | E | E",
        "0000---- e docx | E 00001111 | E | E",
        // A writer without review: ONLYOFFICE says so; elsewhere review is part of editing.
        "10------ e docx | E 10111111 | E | E",
        "-0-0-0-- e docx | E 10111011 | E | E",
        // edit subsumes comment and fillForms.
        "1-0----- e docx | E 11111111 | E | E",
        "1--0---- e docx | E 11111111 | E | E",
        // Review only: ONLYOFFICE alone states it (fillForms, by default true, narrowed).
        "01------ e docx | E 01001111 | V | V",
        "01-0---- e docx | E 01001111 | V | V",
        "010-0--- e docx | E 01000111 | V | V",
        // Comment only: ONLYOFFICE and Collabora.
        "001----- e docx | E 00101111 | E | V",
        "0-1----- e docx | E 00101111 | E | V",
        "001--0-- e docx | E 00101011 | E | V",
        "0011---- e docx | E 00101111 | E | V",
        "0011---- e pdf  | E 00111111 | E | V",
        // Fill forms only: ONLYOFFICE's formsubmit action, where it publishes one.
        "0001---- e docx | V 00001111 | V | V",
        "0001---- e pdf  | E 00011111 | V | V",
        "0001-0-- e pdf  | E 00011011 | V | V",
        // Copy and print: stated to all three.
        "----0--- e docx | E 11110111 | E | E",
        "-----0-- e docx | E 11111011 | E | E",
        "0---0--- e docx | E 00000111 | E | E",
        "----00-- v docx | E 00000011 | E | E",
        // Download: Collabora alone (ONLYOFFICE derives no download from CheckFileInfo).
        "------0- e docx | R          | E | R",
        "0000--0- e docx | R          | E | R",
        "01--0-0- e docx | R          | V | R",
        // Chat: the DISABLE_CHAT placeholder (none in Collabora's action URLs).
        "-------0 e docx | E 11111110 | R | E",
        "001----0 e docx | E 00101110 | R | V",
        "0001---0 e pdf  | E 00011110 | R | V",
        // Everything off.
        "11110000 e docx | R          | R | R",
        "00000000 e docx | R          | R | R",
        "11111100 e docx | R          | R | R",
    ];

    #[test]
    fn the_table_of_integrator_permissions_per_client() {
        assert!(TABLE.len() >= 30);
        for row in TABLE {
            let cols: Vec<&str> = row.split('|').map(str::trim).collect();
            let input: Vec<&str> = cols[0].split_whitespace().collect();
            let r = requested_rights(Some(&permissions(input[0])), input[1] == "v");
            let pdf = input[2] == "pdf";
            let oo: Vec<&str> = cols[1].split_whitespace().collect();
            let (got, grant) = outcome(&r, ClientKind::OnlyOffice, pdf, Unenforceable::View);
            assert_eq!(got.to_string(), oo[0], "{row}: ONLYOFFICE");
            if let Some(g) = grant {
                assert_eq!(
                    bits(&derive(ClientKind::OnlyOffice, &g)),
                    oo[1],
                    "{row}: ONLYOFFICE derives"
                );
            }
            for (kind, col) in [
                (ClientKind::Collabora, cols[2]),
                (ClientKind::Microsoft, cols[3]),
            ] {
                let (got, _) = outcome(&r, kind, pdf, Unenforceable::View);
                assert_eq!(got.to_string(), col, "{row}: {}", kind.name());
            }
        }
    }

    /// Every combination the Docs API allows (each permission true, false or absent; both
    /// modes), every client family, both settings: a client's own derivation never gives
    /// more than the config (a writer's comment and fillForms count as editing; outside
    /// ONLYOFFICE so does a writer's review), "refuse" never opens what "view" had to narrow,
    /// and ONLYOFFICE gives back exactly what was asked wherever it opens as asked, but for
    /// the narrowings of the module doc.
    #[test]
    fn no_combination_is_widened() {
        let mut n = 0;
        for code in 0..3_u32.pow(8) {
            let p: String = (0..8)
                .map(|i| ['-', '0', '1'][(code / 3_u32.pow(i) % 3) as usize])
                .collect();
            for mode_view in [false, true] {
                let r = requested_rights(Some(&permissions(&p)), mode_view);
                let mut allowed = r;
                if r.edit {
                    allowed.review = true;
                    allowed.comment = true;
                    allowed.fill_forms = true;
                }
                for kind in [
                    ClientKind::OnlyOffice,
                    ClientKind::Collabora,
                    ClientKind::Microsoft,
                    ClientKind::Other,
                ] {
                    for pdf in [false, true] {
                        let (v, gv) = outcome(&r, kind, pdf, Unenforceable::View);
                        let (f, gf) = outcome(&r, kind, pdf, Unenforceable::Refuse);
                        match (v, f) {
                            ('E', 'E') => assert_eq!(gv, gf),
                            ('V', 'R') | ('R', 'R') => {}
                            x => panic!("{p} {mode_view} {kind:?}: view/refuse {x:?}"),
                        }
                        let Some(g) = gv else { continue };
                        n += 1;
                        if kind == ClientKind::Other {
                            continue;
                        }
                        let d = derive(kind, &g);
                        let widened = [
                            (d.edit, allowed.edit),
                            (d.review, allowed.review),
                            (d.comment, allowed.comment),
                            (d.fill_forms, allowed.fill_forms),
                            (d.copy, allowed.copy),
                            (d.print, allowed.print),
                            (d.download, allowed.download),
                            (d.chat, allowed.chat),
                        ]
                        .iter()
                        .any(|(got, may)| *got && !*may);
                        assert!(
                            !widened,
                            "{p} mode_view={mode_view} {kind:?} pdf={pdf}: {} > {}",
                            bits(&d),
                            bits(&r)
                        );
                        if kind == ClientKind::OnlyOffice && v == 'E' {
                            let mut want = r;
                            if r.edit {
                                want.comment = true;
                                want.fill_forms = true;
                            } else if r.review {
                                want.comment = false;
                                want.fill_forms = false;
                            } else if r.comment {
                                want.fill_forms = r.fill_forms && pdf;
                            }
                            assert_eq!(
                                bits(&d),
                                bits(&want),
                                "{p} mode_view={mode_view} pdf={pdf}"
                            );
                        }
                    }
                }
            }
        }
        assert!(n > 10_000, "{n}");
    }

    #[test]
    fn client_families_from_discovery() {
        for (u, k) in [
            (
                "http://oo.test/hosting/wopi/word/edit?<ui=UI_LLCC&>",
                ClientKind::OnlyOffice,
            ),
            (
                "https://gw.test/hosting/wopi/cell/view?",
                ClientKind::OnlyOffice,
            ),
            (
                "https://co.test/browser/3a1f/cool.html?",
                ClientKind::Collabora,
            ),
            (
                "https://co.test/loleaflet/3a1f/loleaflet.html?",
                ClientKind::Collabora,
            ),
            (
                "https://word-edit.officeapps.live.com/we/wordeditorframe.aspx?<ui=UI_LLCC&>",
                ClientKind::Microsoft,
            ),
            (
                "https://oos.example.com/x/_layouts/xlviewerinternal.aspx?",
                ClientKind::Microsoft,
            ),
            (
                "http://office.test/hosting/edit?<ui=UI_LLCC&>",
                ClientKind::Other,
            ),
        ] {
            assert_eq!(client_kind([u]), k, "{u}");
        }
        assert_eq!(
            client_kind(["http://x/y", "https://co.test/browser/1/cool.html?"]),
            ClientKind::Collabora
        );
    }

    #[test]
    fn several_clients_get_what_all_can_enforce() {
        let comment = requested_rights(Some(&permissions("001-----")), false);
        let oo = caps(ClientKind::OnlyOffice, false);
        let co = caps(ClientKind::Collabora, false);
        let ms = caps(ClientKind::Microsoft, false);
        let Decision::Open {
            grant,
            viewing: None,
        } = host_grant(&comment, &[oo, co], Unenforceable::View)
        else {
            panic!()
        };
        assert!(grant.only_comment && !grant.write);
        let Decision::Open {
            grant,
            viewing: Some(why),
        } = host_grant(&comment, &[oo, ms], Unenforceable::View)
        else {
            panic!()
        };
        assert!(!grant.saves() && why.contains("Microsoft 365"), "{why}");
        assert!(matches!(
            host_grant(&comment, &[oo, ms], Unenforceable::Refuse),
            Decision::Refuse(_)
        ));
        let no_download = requested_rights(Some(&permissions("------0-")), false);
        let Decision::Refuse(why) = host_grant(&no_download, &[co, oo], Unenforceable::View) else {
            panic!()
        };
        assert!(
            why.contains("download") && why.contains("ONLYOFFICE"),
            "{why}"
        );
    }
}
