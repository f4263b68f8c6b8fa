use super::backends::{Backend, PURGE_EVERY, hex_id, unhex_id};
use super::*;

fn local() -> Shared {
    Shared::local(None, "t", Arc::new(locks::SystemClock)).unwrap()
}

#[test]
fn ids_round_trip_through_file_names() {
    for id in ["a", "ä/..\\x", ""] {
        assert_eq!(unhex_id(&hex_id(id)).as_deref(), Some(id));
    }
    assert_eq!(unhex_id("zz"), None);
}

#[tokio::test]
async fn records_leases_and_mutexes() {
    let s = local();
    s.put_json("file", "a", &1u32, Keep::Durable).await.unwrap();
    s.put_json("file", "b", &2u32, Keep::Listed).await.unwrap();
    s.put_json("file", "c", &3u32, Keep::For(Duration::from_secs(60)))
        .await
        .unwrap();
    let all: Vec<(String, u32)> = s.all_json("file").await.unwrap();
    assert_eq!(
        all,
        vec![("a".into(), 1), ("b".into(), 2)],
        "Keep::For is not listed"
    );
    assert_eq!(s.get_json::<u32>("file", "c").await.unwrap(), Some(3));
    s.delete("file", "a").await.unwrap();
    assert_eq!(s.get_json::<u32>("file", "a").await.unwrap(), None);

    assert!(
        s.lease("l", "x", "me", Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert!(
        !s.lease("l", "x", "you", Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert!(
        s.lease("l", "x", "me", Duration::from_secs(5))
            .await
            .unwrap(),
        "extends"
    );
    assert!(
        !s.put_if_leased("l", "you", "d", "x", Some(b"1".to_vec()))
            .await
            .unwrap()
    );
    assert!(
        s.put_if_leased("l", "me", "d", "x", Some(b"1".to_vec()))
            .await
            .unwrap()
    );
    s.release("l", "x", "you").await.unwrap();
    assert!(
        !s.lease("l", "x", "you", Duration::from_secs(5))
            .await
            .unwrap()
    );
    s.release("l", "x", "me").await.unwrap();
    assert!(
        s.lease("l", "x", "you", Duration::from_secs(5))
            .await
            .unwrap()
    );

    let g = s.mutex("m", "f", Duration::from_secs(1)).await.unwrap();
    assert!(s.mutex("m", "f", Duration::from_millis(20)).await.is_err());
    drop(g);
    assert!(s.mutex("m", "f", Duration::from_millis(20)).await.is_ok());
}

#[tokio::test]
async fn memoised_reads_follow_every_change() {
    let clock = Arc::new(locks::ManualClock::new(1_000));
    let s = Shared::local(None, "t", clock.clone()).unwrap();
    assert_eq!(s.get_json_memo::<String>("file", "a").await.unwrap(), None);
    s.put_json("file", "a", &"one", Keep::Listed).await.unwrap();
    for _ in 0..2 {
        // The second read is served from the memo.
        assert_eq!(
            s.get_json_memo::<String>("file", "a").await.unwrap(),
            Some("one".to_owned())
        );
    }
    // Another type reading the same bytes decodes them itself.
    s.put_json("file", "a", &7u32, Keep::Listed).await.unwrap();
    assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), Some(7));
    assert_eq!(s.get_json_memo::<u64>("file", "a").await.unwrap(), Some(7));
    assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), Some(7));
    // A rewrite, an expiry and a deletion are seen at once.
    s.put_json("file", "a", &8u32, Keep::For(Duration::from_secs(1)))
        .await
        .unwrap();
    assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), Some(8));
    clock.advance(2_000);
    assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), None);
    s.put_json("file", "a", &9u32, Keep::Listed).await.unwrap();
    assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), Some(9));
    s.delete("file", "a").await.unwrap();
    assert_eq!(s.get_json_memo::<u32>("file", "a").await.unwrap(), None);
    // Undecodable bytes read as missing, as with get_json.
    s.put("file", "b", b"{".to_vec(), Keep::Listed)
        .await
        .unwrap();
    assert_eq!(s.get_json_memo::<u32>("file", "b").await.unwrap(), None);
}

#[tokio::test]
async fn expired_values_leave_memory() {
    let clock = Arc::new(locks::ManualClock::new(1_000));
    let s = Shared::local(None, "t", clock.clone()).unwrap();
    // The purge comes with the PURGE_EVERY-th expiring write: the last one below.
    for i in 0..PURGE_EVERY - 1 {
        s.put(
            "finished",
            &i.to_string(),
            Vec::new(),
            Keep::For(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    }
    s.put_json("file", "kept", &1u32, Keep::Listed)
        .await
        .unwrap();
    clock.advance(5_000);
    s.put(
        "finished",
        "last",
        Vec::new(),
        Keep::For(Duration::from_secs(1)),
    )
    .await
    .unwrap();
    let Backend::Local(l) = &s.backend else {
        unreachable!()
    };
    let total = l.values.len();
    assert!(total < 10, "{total} values left after the purge");
    assert_eq!(s.get_json::<u32>("file", "kept").await.unwrap(), Some(1));
}

#[tokio::test]
async fn durable_records_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("shared-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(locks::SystemClock);
    let s = Shared::local(Some(dir.clone()), "t", clock.clone()).unwrap();
    s.put_json("delivery", "1/x", &"kept", Keep::Durable)
        .await
        .unwrap();
    s.put_json("delivery", "2", &"memory", Keep::Listed)
        .await
        .unwrap();
    s.put_json("delivery", "3", &"gone", Keep::Durable)
        .await
        .unwrap();
    s.delete("delivery", "3").await.unwrap();
    let again = Shared::local(Some(dir.clone()), "t", clock).unwrap();
    let all: Vec<(String, String)> = again.all_json("delivery").await.unwrap();
    assert_eq!(all, vec![("1/x".into(), "kept".into())]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_failing_state_directory_is_named_not_redis() {
    let dir = std::env::temp_dir().join(format!("shared-fail-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The namespace's directory cannot be made: a regular file has its name.
    std::fs::write(dir.join("file"), b"in the way").unwrap();
    let s = Shared::local(Some(dir.clone()), "t", Arc::new(locks::SystemClock)).unwrap();
    let e = s
        .put_json("file", "a", &1u32, Keep::Durable)
        .await
        .unwrap_err();
    assert_eq!(e.service, "local state");
    let text = e.to_string();
    assert!(
        text.starts_with("local state unavailable")
            && text.contains(&format!("data_dir {}", dir.display())),
        "{text}"
    );
    let g = crate::error::GatewayError::from(e);
    assert_eq!(g.public_message(), "local state unavailable, retry later");
    let _ = std::fs::remove_dir_all(&dir);
}
