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
    fn for_viewing(self) -> Grant {
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
