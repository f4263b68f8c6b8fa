//! HTML the gateway renders itself: one escaper, JSON safe inside `<script>`, and the error
//! page of browser routes.

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside `<script type="application/json">` (no `<`, `>`, `&`).
pub(crate) fn script_json(v: &serde_json::Value) -> String {
    v.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The error page of a browser route: `status`, with the message for a person.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Editor unavailable</title></head><body><p>Sorry, the editor could not be loaded: {}</p></body></html>",
        escape(message)
    );
    (status, Html(html)).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_and_script_json() {
        assert_eq!(
            super::escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        let v = serde_json::json!({"t": "</script><b>&"});
        let s = super::script_json(&v);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
    }
}
