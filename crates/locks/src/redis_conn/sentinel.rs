//! Asking the sentinels which node is the primary.

use super::RedisSettings;
use super::describe_error;
use std::time::Duration;

/// The primary's address as the first sentinel that knows it says.
pub async fn ask_sentinels(s: &RedisSettings, timeout: Duration) -> Result<(String, u16), String> {
    let mut errors = Vec::new();
    for sentinel in &s.sentinels {
        match ask_sentinel(s, sentinel, timeout).await {
            Ok(Some(addr)) => return Ok(addr),
            Ok(None) => errors.push(format!(
                "{sentinel}: does not know master `{}`",
                s.master_name
            )),
            Err(e) => errors.push(format!("{sentinel}: {e}")),
        }
    }
    Err(format!(
        "no sentinel named the primary ({})",
        errors.join("; ")
    ))
}

/// One sentinel's answer to `SENTINEL get-master-addr-by-name` (`None`: unknown master).
pub async fn ask_sentinel(
    s: &RedisSettings,
    sentinel: &str,
    timeout: Duration,
) -> Result<Option<(String, u16)>, String> {
    let client = s.sentinel_client(sentinel)?;
    let ask = async {
        let mut c = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| describe_error(&e))?;
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(&s.master_name)
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        Ok(addr)
    };
    tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}
