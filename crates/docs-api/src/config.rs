//! Editor-config rules (ONLYOFFICE Docs API docs, "Config"): document keys and document types.

/// Longest document key Document Server documents.
pub const MAX_KEY_LEN: usize = 128;

/// Whether `key` fits Document Server's key rules: `[0-9A-Za-z._=-]{1,128}`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'-'))
}

/// The editor (`documentType`) for a lower-case extension, as api.js classifies it.
pub fn document_type(ext: &str) -> Option<&'static str> {
    const CELL: &[&str] = &[
        "xls", "xlsx", "ods", "csv", "tsv", "gsheet", "xlsm", "xlt", "xltm", "xltx", "fods", "ots",
        "xlsb", "sxc", "et", "ett", "numbers",
    ];
    const SLIDE: &[&str] = &[
        "pps", "ppsx", "ppt", "pptx", "odp", "gslides", "pot", "potm", "potx", "ppsm", "pptm",
        "fodp", "otp", "sxi", "dps", "dpt", "key", "odg",
    ];
    const PDF: &[&str] = &["pdf", "djvu", "xps", "oxps", "oform", "docxf"];
    const WORD: &[&str] = &[
        "doc", "docx", "odt", "gdoc", "txt", "rtf", "mht", "htm", "html", "mhtml", "epub", "docm",
        "dot", "dotm", "dotx", "fodt", "ott", "fb2", "xml", "sxw", "stw", "wps", "wpt", "pages",
        "hwp", "hwpx", "md", "hml",
    ];
    const DIAGRAM: &[&str] = &["vsdx", "vssx", "vstx", "vsdm", "vssm", "vstm"];
    for (ty, list) in [
        ("cell", CELL),
        ("slide", SLIDE),
        ("pdf", PDF),
        ("word", WORD),
        ("diagram", DIAGRAM),
    ] {
        if list.contains(&ext) {
            return Some(ty);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(is_valid_key("abc-DEF_1.2="));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("a!b"));
        assert!(!is_valid_key(&"a".repeat(129)));
    }

    #[test]
    fn types() {
        assert_eq!(document_type("docx"), Some("word"));
        assert_eq!(document_type("xlsx"), Some("cell"));
        assert_eq!(document_type("pptx"), Some("slide"));
        assert_eq!(document_type("pdf"), Some("pdf"));
        assert_eq!(document_type("exe"), None);
    }
}
