//! The WOPI Validator's groups for PutRelativeFile and RenameFile, as tables.
//!
//! Source: Microsoft's WOPI Validator, <https://github.com/microsoft/wopi-validator-core>
//! (read at commit 6ca021a87d2cf776d302891010405b4c099a17d7): the test definitions in
//! `TestCases.xml` (at the repository's root); the headers each
//! request sends in `src/WopiValidator.Core/Requests/` (`PutRelativeFileWopiRequest.cs`,
//! `RenameFileRequest.cs`, `LockWopiRequest.cs`, `UnlockWopiRequest.cs`,
//! `DeleteFileRequest.cs`, `WopiRequest.cs`); the UTF-7 of the name headers in
//! `src/WopiValidator.Core/UrlHelper.cs`; the request bodies in
//! `src/WopiValidator.Core/ResourceManagement/Resource.cs`; what each validator checks in
//! `src/WopiValidator.Core/Validators/` (and `Factories/RequestFactory.cs`: a request without
//! `<Validators>` expects 200; `ContentLengthValidator` runs on every answer).
//!
//! Each [`Case`] is one `<TestCase>`: its name, its `<Requests>` in order with their
//! `<Validators>`, and its `<CleanupRequests>` (sent, never checked, as the validator does).
//! A group runs as the validator runs it: its `<PrereqTests>` first (here they must pass: a
//! failing one would make the validator skip the group), then every case in order on one
//! gateway and one storage, so a case relies on the cleanup of the cases before it (the
//! `…NoEffect` cases fail if an earlier DeleteFile left `madeupname.wopitestx` behind).
//! Steps marked `ours` are not the validator's: they check what it leaves implicit (the
//! returned `Url` serves the bytes sent, the name kept its extension, the 409's
//! `X-WOPI-Lock`, what the storage behind `actions_url` holds).
//!
//! Translated: every case of `PutRelativeFile` (14), `PutRelativeFileUnsupported` (6, run
//! twice: an integrator without `actions_url`, and a viewer of an integrator with it — both
//! get `UserCanNotWriteRelative: true` with `SupportsUpdate` and `SupportsLocks`, so the
//! validator runs the group for both) and `RenameFileIfCreateChildFileIsNotSupported` (6).
//!
//! Excluded:
//! - `RenameFileIfCreateChildFileIsSupported` and `CreateChildFileAndDeleteFile`: their
//!   prerequisite `ContainersPrereq` needs `SupportsContainers: true`, and the gateway
//!   implements no container operations (EnumerateAncestors, CreateChildFile); the validator
//!   skips them.
//! - `RenameFileWithCoauthLockSupported`: its prerequisite `SupportsCoauthPrereq` needs
//!   `SupportsCoauth` (coauth locks, incremental file transfer), which the gateway does not
//!   offer.
//! - The JSON-schema half of `WopiValidatorPrereq` (`CsppCheckFileInfoSchema` or
//!   `CsppPlusCheckFileInfoSchema`): a CheckFileInfo check outside these groups; its
//!   `BaseFileName` half is here.

use super::hook::{Hook, Mode, hooked};
use super::*;
use std::collections::HashMap;

/// The body of every PutRelativeFile here: the validator sends its resource
/// `WordSimpleDocument` as `ResourceId + FilePath + FileName` (Resource.cs).
const WORD_SIMPLE: &str =
    "WordSimpleDocumentResources\\WordSimpleDocument.docxWordSimpleDocument.docx";

/// The test file the validator is pointed at (its prerequisite wants `.wopitest`).
const TEST_FILE: &str = "ValidatorTest.wopitest";

/// `PutRelativeFile.FileNameLongerThan512Chars`' name, as in TestCases.xml.
const LONG: &str = "longwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilenamelongwopitestfilename.wopitestx";

/// What .NET's `Encoding.UTF7` makes of `s`, as `RenameFileRequest` sends
/// `X-WOPI-RequestedName`: RFC 2152 where only the "direct" characters stay as they are
/// (every "optional direct" one, `_` among them, is shifted) and a shifted run always ends
/// with `-`.
fn dotnet_utf7(s: &str) -> String {
    const DIRECT: &str =
        "\t\n\r '(),-./0123456789:?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let direct = |u: u16| u < 128 && (DIRECT.contains(char::from(u as u8)) || u == u16::from(b'+'));
    let units: Vec<u16> = s.encode_utf16().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < units.len() {
        if units[i] == u16::from(b'+') {
            out.push_str("+-");
            i += 1;
        } else if direct(units[i]) {
            out.push(char::from(units[i] as u8));
            i += 1;
        } else {
            out.push('+');
            let (mut bits, mut n) = (0u32, 0u32);
            while i < units.len() && !direct(units[i]) {
                bits = (bits << 16) | u32::from(units[i]);
                n += 16;
                while n >= 6 {
                    n -= 6;
                    out.push(char::from(B64[((bits >> n) & 63) as usize]));
                }
                bits &= (1 << n) - 1;
                i += 1;
            }
            if n > 0 {
                out.push(char::from(B64[((bits << (6 - n)) & 63) as usize]));
            }
            out.push('-');
        }
    }
    out
}

/// `X-WOPI-SuggestedTarget` / `X-WOPI-RelativeTarget` as `PutRelativeFileWopiRequest` sends
/// them: `Uri.UnescapeDataString(HttpUtility.UrlEncode(name, Encoding.UTF7))`, the UTF-7
/// with every space a `+` (no name here has one).
fn dotnet_url_utf7(s: &str) -> String {
    dotnet_utf7(s).replace(' ', "+")
}

#[test]
fn the_validators_utf7() {
    assert_eq!(
        dotnet_utf7("madeup_name.wopitestx"),
        "madeup+AF8-name.wopitestx"
    );
    assert_eq!(
        dotnet_utf7("ValidatorTestFileRenamed"),
        "ValidatorTestFileRenamed"
    );
    assert_eq!(dotnet_utf7("a+b"), "a+-b");
    assert_eq!(dotnet_utf7("Résumé"), "R+AOk-sum+AOk-");
    for s in ["madeup_name.wopitestx", "Résumé~x_y", "a+b"] {
        assert_eq!(wopi::utf7::decode(&dotnet_utf7(s)).unwrap(), s);
    }
}

/// Where a request goes: the test file, or an `OverrideUrl="$State:…"`.
#[derive(Clone, Copy, Debug)]
enum On {
    File,
    Saved(&'static str),
}

/// `PutRelativeFileMode`.
#[derive(Clone, Copy, Debug)]
enum PrMode {
    /// `X-WOPI-SuggestedTarget`.
    Suggested,
    /// `X-WOPI-RelativeTarget` (and `X-WOPI-OverwriteRelativeTarget` when set).
    ExactName,
    /// Both target headers.
    Conflicting,
}

#[derive(Clone, Debug)]
enum Req {
    CheckFileInfo,
    /// `<PutRelativeFile PutRelativeFileMode Name OverwriteRelative ResourceId="WordSimpleDocument">`.
    PutRelative {
        mode: PrMode,
        name: &'static str,
        overwrite: Option<bool>,
    },
    /// `<RenameFile Name Lock>`.
    RenameFile {
        name: &'static str,
        lock: Option<&'static str>,
    },
    Lock(&'static str),
    Unlock(&'static str),
    DeleteFile,
    /// Ours: GetFile.
    GetFile,
    /// Ours: the names of the files the storage holds, sorted (no request).
    Storage(&'static [&'static str]),
    /// Ours: more checks of the previous answer (no request).
    Previous,
}

/// A validator (or, in steps marked ours, a check of ours).
#[derive(Clone, Debug)]
enum V {
    /// `ResponseCodeValidator`; several: an `<Or>` of them.
    Code(&'static [u16]),
    /// `StringProperty Name ExpectedValue EndsWith IsRequired IgnoreCase`.
    Str {
        name: &'static str,
        equals: Option<&'static str>,
        ends_with: Option<&'static str>,
        required: bool,
        ignore_case: bool,
    },
    /// `AbsoluteUrlProperty Name IsRequired MustIncludeAccessToken`.
    Url {
        name: &'static str,
        required: bool,
        access_token: bool,
    },
    /// `BooleanProperty Name ExpectedValue IsRequired`.
    Bool {
        name: &'static str,
        value: bool,
        required: bool,
    },
    /// Ours: a JSON string property that is not `value`.
    StrNot {
        name: &'static str,
        value: &'static str,
    },
    /// Ours: a response header, UTF-7 decoded when `utf7`.
    Header {
        name: &'static str,
        value: &'static str,
        utf7: bool,
    },
    /// Ours: the body.
    Body(&'static str),
}

#[derive(Clone, Debug)]
struct Step {
    on: On,
    req: Req,
    /// `<SaveState><State Name=… Source="Url"/>`.
    save: Option<&'static str>,
    /// `<Validators>`; `None`: the request has none, so 200 is expected.
    validators: Option<Vec<V>>,
    ours: bool,
}

struct Case {
    name: &'static str,
    steps: Vec<Step>,
    cleanup: Vec<Step>,
}

// === the table's vocabulary ===

fn req(on: On, req: Req) -> Step {
    Step {
        on,
        req,
        save: None,
        validators: None,
        ours: false,
    }
}

impl Step {
    fn save(mut self, name: &'static str) -> Self {
        self.save = Some(name);
        self
    }
    fn check(mut self, v: Vec<V>) -> Self {
        self.validators = Some(v);
        self
    }
    fn ours(mut self) -> Self {
        self.ours = true;
        self
    }
}

fn cfi() -> Step {
    req(On::File, Req::CheckFileInfo)
}

fn cfi_on(state: &'static str) -> Step {
    req(On::Saved(state), Req::CheckFileInfo)
}

fn prf(mode: PrMode, name: &'static str) -> Step {
    req(
        On::File,
        Req::PutRelative {
            mode,
            name,
            overwrite: None,
        },
    )
}

fn prf_overwrite(name: &'static str, overwrite: bool) -> Step {
    req(
        On::File,
        Req::PutRelative {
            mode: PrMode::ExactName,
            name,
            overwrite: Some(overwrite),
        },
    )
}

fn rename(state: &'static str, name: &'static str, lock: Option<&'static str>) -> Step {
    req(On::Saved(state), Req::RenameFile { name, lock })
}

fn lock(state: &'static str, id: &'static str) -> Step {
    req(On::Saved(state), Req::Lock(id))
}

fn unlock(state: &'static str, id: &'static str) -> Step {
    req(On::Saved(state), Req::Unlock(id))
}

fn delete(state: &'static str) -> Step {
    req(On::Saved(state), Req::DeleteFile)
}

/// Ours: GetFile on the saved URL returns the bytes the PutRelativeFile sent.
fn same_bytes(state: &'static str) -> Step {
    req(On::Saved(state), Req::GetFile)
        .check(vec![code(200), V::Body(WORD_SIMPLE)])
        .ours()
}

/// Ours: more checks of the previous step's answer.
fn previous(v: Vec<V>) -> Step {
    req(On::File, Req::Previous).check(v).ours()
}

/// Ours: the storage holds exactly these files.
fn storage(names: &'static [&'static str]) -> Step {
    req(On::File, Req::Storage(names)).ours()
}

fn code(c: u16) -> V {
    V::Code(match c {
        200 => &[200],
        404 => &[404],
        409 => &[409],
        501 => &[501],
        _ => unreachable!("add the code"),
    })
}

fn str_is(name: &'static str, value: &'static str) -> V {
    V::Str {
        name,
        equals: Some(value),
        ends_with: None,
        required: true,
        ignore_case: false,
    }
}

fn str_ends(name: &'static str, suffix: &'static str) -> V {
    V::Str {
        name,
        equals: None,
        ends_with: Some(suffix),
        required: true,
        ignore_case: false,
    }
}

fn url(name: &'static str, required: bool) -> V {
    V::Url {
        name,
        required,
        access_token: false,
    }
}

fn bool_is(name: &'static str, value: bool) -> V {
    V::Bool {
        name,
        value,
        required: true,
    }
}

/// The validators most PutRelativeFile answers get: `Name` (as `name` says), `Url` with an
/// access token, and optional absolute `HostViewUrl` / `HostEditUrl`.
fn saved_as(name: V) -> Vec<V> {
    vec![
        name,
        V::Url {
            name: "Url",
            required: true,
            access_token: true,
        },
        url("HostViewUrl", false),
        url("HostEditUrl", false),
    ]
}

// === the tables ===

/// `<PrereqTests>` of the groups, by name.
fn prereq(name: &'static str) -> Case {
    let v = match name {
        "WopiValidatorPrereq" => V::Str {
            name: "BaseFileName",
            equals: None,
            ends_with: Some(".wopitest"),
            required: true,
            ignore_case: true,
        },
        "UserCanWritePrereq" => bool_is("UserCanWrite", true),
        "UserCanNotWriteRelativePrereq" => bool_is("UserCanNotWriteRelative", true),
        "UserCanWriteRelativePrereq" => V::Bool {
            name: "UserCanNotWriteRelative",
            value: false,
            required: false,
        },
        "ContainersUnsupportedPrereq" => V::Bool {
            name: "SupportsContainers",
            value: false,
            required: false,
        },
        "LocksPrereq" => bool_is("SupportsLocks", true),
        "FileEditingPrereq" => bool_is("SupportsUpdate", true),
        "DeleteFilePrereq" => bool_is("SupportsDeleteFile", true),
        "RenameFilePrereq" => bool_is("SupportsRename", true),
        _ => unreachable!("{name}"),
    };
    Case {
        name,
        steps: vec![cfi().check(vec![v])],
        cleanup: vec![],
    }
}

/// Group `PutRelativeFile`.
fn put_relative_file() -> (Vec<Case>, Vec<Case>) {
    use PrMode::{Conflicting, ExactName, Suggested};
    let prereqs = [
        "WopiValidatorPrereq",
        "FileEditingPrereq",
        "UserCanWriteRelativePrereq",
        "LocksPrereq",
        "DeleteFilePrereq",
    ];
    let x = "madeupname.wopitestx";
    let cases = vec![
        Case {
            name: "PutRelativeFile.SuggestedExtension",
            steps: vec![
                cfi(),
                prf(Suggested, ".wopitestx")
                    .save("NewFileUrl")
                    .check(saved_as(str_ends("Name", ".wopitestx"))),
                same_bytes("NewFileUrl"),
                // The current name with the suggested extension.
                cfi_on("NewFileUrl")
                    .check(vec![
                        str_is("BaseFileName", "ValidatorTest.wopitestx"),
                        str_is("FileExtension", ".wopitestx"),
                    ])
                    .ours(),
            ],
            cleanup: vec![delete("NewFileUrl")],
        },
        Case {
            name: "PutRelativeFile.SuggestedName",
            steps: vec![
                cfi(),
                prf(Suggested, "madeupname.wopitest")
                    .save("NewFileUrl")
                    .check(saved_as(str_ends("Name", "wopitest"))),
                same_bytes("NewFileUrl"),
                cfi_on("NewFileUrl")
                    .check(vec![str_is("BaseFileName", "madeupname.wopitest")])
                    .ours(),
            ],
            cleanup: vec![delete("NewFileUrl")],
        },
        Case {
            name: "PutRelativeFile.SuggestedNameConflict",
            steps: vec![
                cfi(),
                prf(Suggested, "madeupname.wopitest")
                    .save("NewUrl1")
                    .check(saved_as(str_ends("Name", "wopitest"))),
                prf(Suggested, "madeupname.wopitest")
                    .save("NewUrl2")
                    .check({
                        let mut v = vec![code(200)];
                        v.extend(saved_as(str_ends("Name", "wopitest")));
                        v
                    }),
                // The host chose another name and kept the extension.
                cfi_on("NewUrl2")
                    .check(vec![
                        V::StrNot {
                            name: "BaseFileName",
                            value: "madeupname.wopitest",
                        },
                        str_ends("BaseFileName", ".wopitest"),
                    ])
                    .ours(),
                same_bytes("NewUrl2"),
                storage(&[
                    "ValidatorTest.wopitest",
                    "madeupname (1).wopitest",
                    "madeupname.wopitest",
                ]),
            ],
            cleanup: vec![delete("NewUrl1"), delete("NewUrl2")],
        },
        Case {
            name: "PutRelativeFile.RelativeName",
            steps: vec![
                cfi(),
                prf(ExactName, x)
                    .save("NewUrl")
                    .check(saved_as(str_is("Name", x))),
                same_bytes("NewUrl"),
            ],
            cleanup: vec![delete("NewUrl")],
        },
        Case {
            name: "PutRelativeFile.RelativeNameOverwriteTrueNoEffect",
            steps: vec![
                cfi(),
                prf_overwrite(x, true)
                    .save("NewUrl")
                    .check(saved_as(str_is("Name", x))),
            ],
            cleanup: vec![delete("NewUrl")],
        },
        Case {
            name: "PutRelativeFile.RelativeNameOverwriteFalseNoEffect",
            steps: vec![
                cfi(),
                prf_overwrite(x, false)
                    .save("NewUrl")
                    .check(saved_as(str_is("Name", x))),
            ],
            cleanup: vec![delete("NewUrl")],
        },
        Case {
            name: "PutRelativeFile.RelativeNameConflictNoOverwrite",
            steps: vec![
                cfi(),
                prf(ExactName, x)
                    .save("NewUrl")
                    .check(saved_as(str_is("Name", x))),
                prf(ExactName, x).check(vec![code(409)]),
                // A name that is free, for the client's silent retry.
                previous(vec![V::Header {
                    name: "x-wopi-validrelativetarget",
                    value: "madeupname (1).wopitestx",
                    utf7: true,
                }]),
            ],
            cleanup: vec![delete("NewUrl")],
        },
        Case {
            name: "PutRelativeFile.RelativeNameConflictOverwriteFalse",
            steps: vec![
                cfi(),
                prf(ExactName, x)
                    .save("NewUrl")
                    .check(saved_as(str_is("Name", x))),
                prf_overwrite(x, false).check(vec![code(409)]),
            ],
            cleanup: vec![delete("NewUrl")],
        },
        Case {
            name: "PutRelativeFile.RelativeNameConflictOverwriteTrue",
            steps: vec![
                cfi(),
                prf(ExactName, x)
                    .save("NewUrl1")
                    .check(saved_as(str_is("Name", x))),
                prf_overwrite(x, true)
                    .save("NewUrl2")
                    .check(saved_as(str_ends("Name", ".wopitestx"))),
                cfi_on("NewUrl2").check(vec![code(200)]),
                // Overwritten, not a second file.
                storage(&["ValidatorTest.wopitest", "madeupname.wopitestx"]),
                same_bytes("NewUrl2"),
            ],
            cleanup: vec![delete("NewUrl1"), delete("NewUrl2")],
        },
        Case {
            name: "PutRelativeFile.ConflictingHeaders",
            steps: vec![
                cfi(),
                prf(Conflicting, x).check(vec![V::Code(&[400, 501])]),
                storage(&["ValidatorTest.wopitest"]),
            ],
            cleanup: vec![],
        },
        Case {
            name: "PutRelativeFile.RelativeNameConflictOverwriteTrueLocked",
            steps: vec![
                cfi(),
                prf(ExactName, x)
                    .save("NewUrl")
                    .check(saved_as(str_is("Name", x))),
                lock("NewUrl", "LockString"),
                prf_overwrite(x, true).check(vec![code(409)]),
                // 409 with the target's lock (WOPI: "if overwriting and the target is locked").
                previous(vec![V::Header {
                    name: "x-wopi-lock",
                    value: "LockString",
                    utf7: false,
                }]),
            ],
            cleanup: vec![unlock("NewUrl", "LockString"), delete("NewUrl")],
        },
        Case {
            name: "PutRelativeFile.FileNameReturnedIsCorrectlyEncoded",
            steps: vec![
                cfi(),
                prf(ExactName, "madeup_name.wopitestx")
                    .save("NewUrl")
                    .check(vec![str_is("Name", "madeup_name.wopitestx")]),
                storage(&["ValidatorTest.wopitest", "madeup_name.wopitestx"]),
            ],
            cleanup: vec![delete("NewUrl")],
        },
        Case {
            name: "PutRelativeFile.FileNameLongerThan512Chars",
            steps: vec![
                cfi(),
                prf(ExactName, LONG)
                    .save("UrlWithFileNameLongerThan512Chars")
                    .check(vec![V::Code(&[200, 400])]),
            ],
            cleanup: vec![delete("UrlWithFileNameLongerThan512Chars")],
        },
        Case {
            name: "PutRelativeFile.IncludeHostUrls",
            steps: vec![
                prf(Suggested, "new_file.wopitest")
                    .save("NewFileUrl")
                    .check(vec![url("HostEditUrl", true), url("HostViewUrl", true)]),
            ],
            cleanup: vec![delete("NewFileUrl")],
        },
    ];
    (prereqs.into_iter().map(prereq).collect(), cases)
}

/// Group `PutRelativeFileUnsupported`.
fn put_relative_file_unsupported() -> (Vec<Case>, Vec<Case>) {
    use PrMode::{Conflicting, ExactName, Suggested};
    let prereqs = [
        "WopiValidatorPrereq",
        "FileEditingPrereq",
        "LocksPrereq",
        "UserCanNotWriteRelativePrereq",
    ];
    let case = |name, step: Step| Case {
        name,
        steps: vec![cfi(), step.check(vec![code(501)])],
        cleanup: vec![],
    };
    let cases = vec![
        case(
            "PutRelativeFileUnsupported.SuggestedExtension",
            prf(Suggested, ".wopitestx"),
        ),
        case(
            "PutRelativeFileUnsupported.SuggestedName",
            prf(
                Suggested,
                "PutRelativeFileUnsupported_SuggestedName.wopitest",
            ),
        ),
        case(
            "PutRelativeFileUnsupported.RelativeName",
            prf(
                ExactName,
                "PutRelativeFileUnsupported_RelativeName.wopitest",
            ),
        ),
        case(
            "PutRelativeFileUnsupported.RelativeNameOverwriteTrueNoEffect",
            prf_overwrite(
                "PutRelativeFileUnsupported_RelativeNameOverwriteTrueNoEffect.wopitest",
                true,
            ),
        ),
        case(
            "PutRelativeFileUnsupported.RelativeNameOverwriteFalseNoEffect",
            prf_overwrite(
                "PutRelativeFileUnsupported_RelativeNameOverwriteFalseNoEffect.wopitest",
                false,
            ),
        ),
        case(
            "PutRelativeFileUnsupported.ConflictingHeaders",
            prf(
                Conflicting,
                "PutRelativeFileUnsupported_ConflictingHeaders.wopitest",
            ),
        ),
    ];
    (prereqs.into_iter().map(prereq).collect(), cases)
}

/// Group `RenameFileIfCreateChildFileIsNotSupported`.
fn rename_file() -> (Vec<Case>, Vec<Case>) {
    let prereqs = [
        "WopiValidatorPrereq",
        "FileEditingPrereq",
        "LocksPrereq",
        "DeleteFilePrereq",
        "ContainersUnsupportedPrereq",
        "RenameFilePrereq",
        "UserCanWriteRelativePrereq",
    ];
    let new = "NewFileUrl";
    let put = |name: &'static str| {
        prf(PrMode::ExactName, name)
            .save(new)
            .check(vec![str_is("Name", name)])
    };
    let can_rename = || {
        cfi_on(new).check(vec![
            code(200),
            bool_is("SupportsRename", true),
            bool_is("UserCanRename", true),
        ])
    };
    let renamed = |name: &'static str| vec![code(200), str_is("Name", name)];
    let t = "ValidatorTestFile.wopitest";
    let r = "ValidatorTestFileRenamed";
    let cases = vec![
        Case {
            name: "PutRelativeAndRenameFile.RenameShouldSucceed",
            steps: vec![
                put(t),
                can_rename(),
                rename(new, r, None).check(renamed(r)),
                storage(&[
                    "ValidatorTest.wopitest",
                    "ValidatorTestFileRenamed.wopitest",
                ]),
                delete(new),
                storage(&["ValidatorTest.wopitest"]),
            ],
            cleanup: vec![delete(new)],
        },
        Case {
            name: "PutRelativeAndRenameFile.FileNameAfterRenameIsCorrectlyEncoded",
            steps: vec![
                put("madeup_name.wopitestx"),
                can_rename(),
                rename(new, "madeup_renamed", None).check(renamed("madeup_renamed")),
                cfi_on(new)
                    .check(vec![str_is("BaseFileName", "madeup_renamed.wopitestx")])
                    .ours(),
                delete(new),
            ],
            cleanup: vec![delete(new)],
        },
        Case {
            name: "PutRelativeAndRenameFile.RenamingALockedFileWithACorrectLockHeaderValueShouldSucceed",
            steps: vec![
                put(t),
                can_rename(),
                lock(new, "LockString"),
                rename(new, r, Some("LockString")).check(renamed(r)),
                unlock(new, "LockString"),
                delete(new),
            ],
            cleanup: vec![unlock(new, "LockString"), delete(new)],
        },
        Case {
            name: "PutRelativeAndRenameFile.RenamingALockedFileWithAnIncorrectLockHeaderValueShouldReturnA409",
            steps: vec![
                put(t),
                can_rename(),
                lock(new, "LockString"),
                rename(new, r, Some("IncorrectLockString")).check(vec![code(409)]),
                previous(vec![V::Header {
                    name: "x-wopi-lock",
                    value: "LockString",
                    utf7: false,
                }]),
                cfi_on(new).check(vec![str_is("BaseFileName", t)]).ours(),
                unlock(new, "LockString"),
                delete(new),
            ],
            cleanup: vec![unlock(new, "LockString"), delete(new)],
        },
        Case {
            name: "PutRelativeAndRenameFile.RenamingADeletedFileShouldReturnA404",
            steps: vec![
                put(t),
                can_rename(),
                delete(new),
                rename(new, r, None).check(vec![code(404)]),
                // Deleted for every operation, not only RenameFile.
                cfi_on(new).check(vec![code(404)]).ours(),
                storage(&["ValidatorTest.wopitest"]),
            ],
            cleanup: vec![delete(new)],
        },
        Case {
            name: "PutRelativeAndRenameFile.RenameShouldNotChangeFileExtension",
            steps: vec![
                put(t),
                can_rename(),
                rename(new, r, None).check(renamed(r)),
                cfi_on(new).check(vec![
                    str_is("BaseFileName", "ValidatorTestFileRenamed.wopitest"),
                    V::Str {
                        name: "FileExtension",
                        equals: Some(".wopitest"),
                        ends_with: None,
                        required: false,
                        ignore_case: false,
                    },
                ]),
                delete(new),
            ],
            cleanup: vec![delete(new)],
        },
    ];
    (prereqs.into_iter().map(prereq).collect(), cases)
}

// === running a group ===

/// The validator pointed at one file of one gateway.
struct Validator<'a> {
    s: &'a Setup,
    hook: Option<&'a Hook>,
    /// `/wopi/files/{id}` of the test file.
    file: String,
    token: String,
}

/// The answer a checking step looks at: the last request's.
type Last = Option<crate::support::http::Resp>;

impl Validator<'_> {
    /// Base URL, path and query, access token of a request `on`.
    fn target(
        &self,
        on: On,
        saved: &HashMap<&str, String>,
    ) -> Result<(String, String, String), String> {
        match on {
            On::File => Ok((
                format!("http://{}", self.s.gw.public),
                with_token(&self.file, &self.token),
                self.token.clone(),
            )),
            On::Saved(name) => {
                let url = saved
                    .get(name)
                    .ok_or_else(|| format!("state {name} was not saved"))?;
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                let path_at = url.len() - rest.len() + rest.find('/').unwrap_or(rest.len());
                let (base, pq) = url.split_at(path_at);
                let token = pq
                    .split(['?', '&'])
                    .find_map(|kv| kv.strip_prefix("access_token="))
                    .ok_or_else(|| format!("{url} has no access_token"))?;
                let token = percent_encoding::percent_decode_str(token)
                    .decode_utf8()
                    .map_err(|e| e.to_string())?
                    .into_owned();
                Ok((base.to_owned(), pq.to_owned(), token))
            }
        }
    }

    /// Sends the request of `step`; `None` for a step that sends none.
    async fn send(
        &self,
        step: &Step,
        saved: &HashMap<&str, String>,
    ) -> Result<Option<crate::support::http::Resp>, String> {
        let (base, mut pq, token) = self.target(step.on, saved)?;
        let size = WORD_SIMPLE.len().to_string();
        let (method, headers, body): (&str, Vec<(&str, String)>, &str) = match &step.req {
            Req::Storage(_) | Req::Previous => return Ok(None),
            Req::CheckFileInfo => ("GET", vec![], ""),
            Req::GetFile => {
                let at = pq.find('?').unwrap_or(pq.len());
                pq.insert_str(at, "/contents");
                ("GET", vec![], "")
            }
            Req::PutRelative {
                mode,
                name,
                overwrite,
            } => {
                let mut h = vec![
                    ("x-wopi-size", size),
                    ("x-wopi-override", "PUT_RELATIVE".into()),
                ];
                let target = dotnet_url_utf7(name);
                match mode {
                    PrMode::Suggested => h.push(("x-wopi-suggestedtarget", target)),
                    PrMode::ExactName => {
                        h.push(("x-wopi-relativetarget", target));
                        if let Some(o) = overwrite {
                            // .NET's bool.ToString().
                            let v = if *o { "True" } else { "False" };
                            h.push(("x-wopi-overwriterelativetarget", v.into()));
                        }
                    }
                    PrMode::Conflicting => {
                        h.push(("x-wopi-suggestedtarget", target.clone()));
                        h.push(("x-wopi-relativetarget", target));
                    }
                }
                ("POST", h, WORD_SIMPLE)
            }
            Req::RenameFile { name, lock } => (
                "POST",
                vec![
                    ("x-wopi-override", "RENAME_FILE".into()),
                    ("x-wopi-requestedname", dotnet_utf7(name)),
                    // Sent empty when the test names none.
                    ("x-wopi-lock", lock.unwrap_or("").into()),
                    ("x-wopi-coauthlockid", String::new()),
                ],
                "",
            ),
            Req::Lock(id) | Req::Unlock(id) => (
                "POST",
                vec![
                    ("x-wopi-lock", (*id).into()),
                    (
                        "x-wopi-override",
                        if matches!(step.req, Req::Lock(_)) {
                            "LOCK"
                        } else {
                            "UNLOCK"
                        }
                        .into(),
                    ),
                ],
                "",
            ),
            Req::DeleteFile => ("POST", vec![("x-wopi-override", "DELETE".into())], ""),
        };
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Ok(Some(
            self.s
                .client
                .send(&base, method, &pq, &token, &headers, body)
                .await,
        ))
    }

    /// What is wrong with `resp` for `v`.
    fn check(&self, v: &V, resp: &crate::support::http::Resp) -> Option<String> {
        let (status, headers, body) = resp;
        let json = || -> Result<Value, String> {
            serde_json::from_slice::<Value>(body)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    format!(
                        "the body is not a JSON object: {:?}",
                        String::from_utf8_lossy(body)
                    )
                })
        };
        // Newtonsoft's "null or empty" (JsonPropertyValidator.IsActualValueNullOrEmpty).
        let prop = |name: &str| -> Result<Option<Value>, String> {
            Ok(json()?
                .get(name)
                .filter(|v| !v.is_null() && *v != "" && *v != &json!([]) && *v != &json!({}))
                .cloned())
        };
        let result = match v {
            V::Code(codes) => codes
                .contains(status)
                .then_some(())
                .ok_or_else(|| format!("status {status}, expected one of {codes:?}")),
            V::Str {
                name,
                equals,
                ends_with,
                required,
                ignore_case,
            } => prop(name).and_then(|p| match p {
                None if *required => Err(format!("{name} is required")),
                None => Ok(()),
                Some(p) => {
                    let got = p.as_str().map(str::to_owned).unwrap_or(p.to_string());
                    let norm = |s: &str| {
                        if *ignore_case {
                            s.to_lowercase()
                        } else {
                            s.to_owned()
                        }
                    };
                    if equals.is_some_and(|e| norm(e) != norm(&got)) {
                        Err(format!("{name} is {got:?}, expected {equals:?}"))
                    } else if ends_with.is_some_and(|e| !norm(&got).ends_with(&norm(e))) {
                        Err(format!(
                            "{name} is {got:?}, expected to end with {ends_with:?}"
                        ))
                    } else {
                        Ok(())
                    }
                }
            }),
            V::Url {
                name,
                required,
                access_token,
            } => prop(name).and_then(|p| match p {
                None if *required => Err(format!("{name} is required")),
                None => Ok(()),
                Some(p) => {
                    let u = p.as_str().unwrap_or("");
                    let absolute = u
                        .parse::<http::Uri>()
                        .is_ok_and(|x| x.scheme().is_some() && x.authority().is_some());
                    let has_token = u.contains("?access_token=") || u.contains("&access_token=");
                    if !absolute {
                        Err(format!("{name} {u:?} is not an absolute URL"))
                    } else if *access_token && !has_token {
                        Err(format!("{name} {u:?} has no access_token"))
                    } else {
                        Ok(())
                    }
                }
            }),
            V::Bool {
                name,
                value,
                required,
            } => prop(name).and_then(|p| match p {
                None if *required => Err(format!("{name} is required")),
                None => Ok(()),
                Some(p) if p == json!(value) => Ok(()),
                Some(p) => Err(format!("{name} is {p}, expected {value}")),
            }),
            V::StrNot { name, value } => prop(name).and_then(|p| {
                (p.as_ref().and_then(Value::as_str) != Some(value))
                    .then_some(())
                    .ok_or_else(|| format!("{name} is {value:?}"))
            }),
            V::Header { name, value, utf7 } => {
                let got = hdr(headers, name);
                let got = match (got, utf7) {
                    (Some(g), true) => wopi::utf7::decode(&g).ok(),
                    (g, _) => g,
                };
                (got.as_deref() == Some(value))
                    .then_some(())
                    .ok_or_else(|| format!("header {name} is {got:?}, expected {value:?}"))
            }
            V::Body(want) => (body == want.as_bytes())
                .then_some(())
                .ok_or_else(|| format!("body {:?}", String::from_utf8_lossy(body))),
        };
        result.err()
    }

    /// Runs one case; `Err` names the first step that failed and why.
    async fn run(&self, case: &Case) -> Result<(), String> {
        let mut saved: HashMap<&str, String> = HashMap::new();
        let mut last: Last = None;
        let mut outcome = Ok(());
        for (i, step) in case.steps.iter().enumerate() {
            let failed = |why: String| {
                Err(format!(
                    "{} step {} ({}{:?} on {:?}): {why}",
                    case.name,
                    i + 1,
                    if step.ours { "ours: " } else { "" },
                    step.req,
                    step.on
                ))
            };
            let resp = match self.send(step, &saved).await {
                Ok(Some(r)) => {
                    last = Some(r);
                    last.as_ref()
                }
                // A check of ours on the last answer, or on the storage.
                Ok(None) => last.as_ref(),
                Err(why) => {
                    outcome = failed(why);
                    break;
                }
            };
            let mut errors = Vec::new();
            if let Req::Storage(names) = &step.req {
                let have = self.hook.map(|h| h.storage.lock().unwrap().names());
                if have.as_ref().is_none_or(|h| h != names) {
                    errors.push(format!("the storage holds {have:?}, expected {names:?}"));
                }
            }
            if let (Some(resp), false) = (resp, matches!(step.req, Req::Storage(_))) {
                // ContentLengthValidator, on every answer.
                if let Some(len) = hdr(&resp.1, "content-length") {
                    if len.parse::<usize>().ok() != Some(resp.2.len()) {
                        errors.push(format!("Content-Length {len}, body {}", resp.2.len()));
                    }
                }
                let default = [code(200)];
                let validators = step.validators.as_deref().unwrap_or(&default);
                errors.extend(validators.iter().filter_map(|v| self.check(v, resp)));
                if let Some(name) = step.save {
                    if let Some(u) = json_or_null(&resp.2)["Url"].as_str() {
                        saved.insert(name, u.to_owned());
                    }
                }
            }
            if !errors.is_empty() {
                outcome = failed(errors.join("; "));
                break;
            }
        }
        for step in &case.cleanup {
            // Not checked; a step whose state was never saved is not sent.
            let _ = self.send(step, &saved).await;
        }
        outcome
    }

    /// Runs the prerequisites, then the cases; panics listing every failed case.
    async fn group(&self, name: &str, (prereqs, cases): (Vec<Case>, Vec<Case>)) {
        let mut failures = Vec::new();
        for p in &prereqs {
            if let Err(e) = self.run(p).await {
                failures.push(format!("prerequisite {e}"));
            }
        }
        for c in &cases {
            if let Err(e) = self.run(c).await {
                failures.push(e);
            }
        }
        assert!(
            failures.is_empty(),
            "{name}: {} of {} cases failed:\n{}",
            failures.len(),
            prereqs.len() + cases.len(),
            failures.join("\n")
        );
    }
}

fn json_or_null(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// A gateway whose integrator stores files behind `actions_url`, and the validator on its
/// test file, opened by `u1` (for editing, or viewing only).
async fn with_storage(edit: bool) -> (Setup, Hook, String, String) {
    let (s, hook) = hooked().await;
    hook.set(Mode::Storage);
    let config = hook.store(TEST_FILE, b"the validator's test file", ("u1", "Ada"), edit);
    let (fid, token, _) = open_config_at(&s.gw.url(""), &config).await;
    (s, hook, format!("/wopi/files/{fid}"), token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_put_relative_file() {
    let (s, hook, file, token) = with_storage(true).await;
    let v = Validator {
        s: &s,
        hook: Some(&hook),
        file,
        token,
    };
    v.group("PutRelativeFile", put_relative_file()).await;
    // Ours: the cleanups removed every file the cases made.
    assert_eq!(hook.storage.lock().unwrap().names(), [TEST_FILE]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_put_relative_file_unsupported() {
    // An integrator without actions_url: nobody may Save As.
    let s = setup("", "", "").await;
    s.int.put_doc(TEST_FILE, b"the validator's test file");
    let (fid, token, _) = open(&s, TEST_FILE, "key-1", Some(("u1", "Ada")), true).await;
    let v = Validator {
        s: &s,
        hook: None,
        file: format!("/wopi/files/{fid}"),
        token,
    };
    v.group(
        "PutRelativeFileUnsupported",
        put_relative_file_unsupported(),
    )
    .await;

    // With actions_url, a user whose config allows no editing may not either.
    let (s, hook, file, token) = with_storage(false).await;
    let v = Validator {
        s: &s,
        hook: Some(&hook),
        file,
        token,
    };
    v.group(
        "PutRelativeFileUnsupported (viewer)",
        put_relative_file_unsupported(),
    )
    .await;
    assert!(
        hook.log.lock().unwrap().is_empty(),
        "ours: the hook was never called"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_rename_file_if_create_child_file_is_not_supported() {
    let (s, hook, file, token) = with_storage(true).await;
    let v = Validator {
        s: &s,
        hook: Some(&hook),
        file,
        token,
    };
    v.group("RenameFileIfCreateChildFileIsNotSupported", rename_file())
        .await;
    assert_eq!(hook.storage.lock().unwrap().names(), [TEST_FILE]);
}
