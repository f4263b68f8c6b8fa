use super::*;

const OFFICE: &str = include_str!("../../tests/fixtures/discovery-office-shaped.xml");

#[test]
fn parses_a_real_world_shaped_document() {
    let doc = parse(OFFICE.as_bytes()).unwrap();
    assert_eq!(doc.net_zones.len(), 2);
    assert_eq!(doc.net_zones[0].name, "external-https");
    assert_eq!(doc.net_zones[0].apps.len(), 2);
    let excel = &doc.net_zones[0].apps[0];
    assert!(excel.check_license);
    assert_eq!(excel.actions.len(), 4);
    assert_eq!(excel.actions[3].progid.as_deref(), Some("Excel.Sheet"));
    let docx: Vec<_> = doc
        .actions_for_ext("DOCX")
        .map(|(_, a)| a.name.as_str())
        .collect();
    assert_eq!(docx, ["view", "edit", "editnew"]);
    let keys = doc.proof_keys().unwrap();
    assert_eq!(keys.current.unwrap().bits(), 2048);
    assert_eq!(keys.old.unwrap().bits(), 2048);
    assert!(
        doc.net_zones[0].apps[0].actions[0]
            .urlsrc
            .contains("<ui=UI_LLCC&>")
    );
}

#[test]
fn rendered_document_parses_back() {
    let doc = parse(OFFICE.as_bytes()).unwrap();
    let again = parse(render(&doc).as_bytes()).unwrap();
    assert_eq!(doc, again);
}

#[test]
fn hostile_documents_are_refused() {
    let deep = format!(
        "<wopi-discovery>{}{}</wopi-discovery>",
        "<a>".repeat(100),
        "</a>".repeat(100)
    );
    assert_eq!(parse(deep.as_bytes()), Err(DiscoveryError::TooDeep));

    let huge_attr = format!(
        "<wopi-discovery><x a=\"{}\"/></wopi-discovery>",
        "x".repeat(MAX_ATTRIBUTE_BYTES + 1)
    );
    assert_eq!(
        parse(huge_attr.as_bytes()),
        Err(DiscoveryError::AttributeTooLong)
    );

    let bomb = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>
        <wopi-discovery><net-zone name="&lol2;"/></wopi-discovery>"#;
    assert_eq!(parse(bomb.as_bytes()), Err(DiscoveryError::Doctype));

    let entity = r#"<wopi-discovery><net-zone name="&unknown;"/></wopi-discovery>"#;
    assert!(matches!(
        parse(entity.as_bytes()),
        Err(DiscoveryError::Xml(_))
    ));

    assert_eq!(parse(b"<html/>"), Err(DiscoveryError::NotDiscovery));
    assert_eq!(parse(b""), Err(DiscoveryError::NotDiscovery));
    assert!(matches!(
        parse(b"<wopi-discovery><net-zone>"),
        Err(DiscoveryError::Xml(_)) | Ok(_)
    ));
    let big = vec![b' '; MAX_BYTES + 1];
    assert_eq!(parse(&big), Err(DiscoveryError::TooLarge));
    let no_urlsrc = r#"<wopi-discovery><net-zone><app name="W"><action name="view" ext="docx"/></app></net-zone></wopi-discovery>"#;
    assert_eq!(parse(no_urlsrc.as_bytes()), Err(DiscoveryError::BadAction));
}

#[test]
fn disagreeing_key_encodings_are_refused() {
    let doc = parse(OFFICE.as_bytes()).unwrap();
    let mut p = doc.proof_key.clone().unwrap();
    p.modulus = p.old_modulus.clone();
    let bad = Discovery {
        proof_key: Some(p),
        ..doc
    };
    assert_eq!(bad.proof_keys(), Err(KeyError::Disagree));
}

#[test]
fn urlsrc_placeholders() {
    let t = "https://c/x?<ui=UI_LLCC&><rs=DC_LLCC&><dchat=DISABLE_CHAT&><wopisrc=WOPI_SOURCE&>&";
    let url = resolve_urlsrc(t, |p| match p {
        "WOPI_SOURCE" => Some("https%3A%2F%2Fh%2Fwopi%2Ffiles%2F1".into()),
        "UI_LLCC" => Some("en-US".into()),
        _ => None,
    });
    assert_eq!(
        url,
        "https://c/x?ui=en-US&wopisrc=https%3A%2F%2Fh%2Fwopi%2Ffiles%2F1"
    );
    let t2 = "https://c/x?edit=1&<unknown=NOPE&><wopisrc=WOPI_SOURCE&>";
    assert_eq!(
        resolve_urlsrc(t2, |p| (p == "WOPI_SOURCE").then(|| "S".into())),
        "https://c/x?edit=1&wopisrc=S"
    );
    assert_eq!(
        resolve_urlsrc("https://c/x?<a=B&>", |_| None),
        "https://c/x"
    );
}
