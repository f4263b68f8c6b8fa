//! The TOML file as written: every table rejects unknown keys.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) server: RawServer,
    #[serde(default)]
    pub(crate) access: RawAccess,
    #[serde(default)]
    pub(crate) locks: RawLocks,
    #[serde(default)]
    pub(crate) host_face: RawHostFace,
    #[serde(default)]
    pub(crate) docs: RawDocs,
    #[serde(default)]
    pub(crate) upstream: RawUpstream,
    #[serde(default)]
    pub(crate) client_face: RawClientFace,
    #[serde(default)]
    pub(crate) cluster: RawCluster,
    #[serde(default)]
    pub(crate) content: RawContent,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub(crate) redis_url: Option<String>,
    pub(crate) redis_username: Option<String>,
    pub(crate) redis_password_file: Option<String>,
    pub(crate) redis_password_env: Option<String>,
    pub(crate) redis_ca_file: Option<String>,
    pub(crate) redis_client_cert_file: Option<String>,
    pub(crate) redis_client_key_file: Option<String>,
    #[serde(default)]
    pub(crate) redis_sentinels: Vec<String>,
    pub(crate) redis_master_name: Option<String>,
    pub(crate) redis_sentinel_password_file: Option<String>,
    pub(crate) redis_sentinel_password_env: Option<String>,
    pub(crate) redis_sentinel_tls: Option<bool>,
    pub(crate) redis_min_replicas_acked: Option<u32>,
    pub(crate) redis_replication_timeout_ms: Option<u64>,
    pub(crate) key_prefix: Option<String>,
    pub(crate) instance_id: Option<String>,
    pub(crate) lease_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContent {
    pub(crate) store: Option<String>,
    pub(crate) dir: Option<String>,
    #[serde(default)]
    pub(crate) s3: RawS3,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawS3 {
    pub(crate) endpoint: Option<String>,
    pub(crate) bucket: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) access_key_id: Option<String>,
    pub(crate) secret_access_key_file: Option<String>,
    pub(crate) path_style: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClientFace {
    pub(crate) proof_key_file: Option<String>,
    pub(crate) proof_key_old_file: Option<String>,
    #[serde(default)]
    pub(crate) allowed_wopi_origins: Vec<String>,
    pub(crate) lock_refresh_seconds: Option<u64>,
    pub(crate) convert_actions: Option<bool>,
    pub(crate) conversion_timeout_seconds: Option<u64>,
    pub(crate) convert_to_max_concurrent: Option<usize>,
    pub(crate) send_authorization_header: Option<bool>,
    #[serde(default)]
    pub(crate) profile: Vec<RawProfile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProfile {
    #[serde(default)]
    pub(crate) match_origin: String,
    pub(crate) co_editing_mode: Option<String>,
    pub(crate) co_editing_change: Option<bool>,
    pub(crate) chat: Option<bool>,
    pub(crate) about: Option<bool>,
    pub(crate) ui_theme: Option<String>,
    pub(crate) compact_toolbar: Option<bool>,
    pub(crate) forcesave: Option<bool>,
    pub(crate) forcesave_interval_seconds: Option<u64>,
    pub(crate) logo_image: Option<String>,
    pub(crate) logo_url: Option<String>,
    pub(crate) customer_name: Option<String>,
    pub(crate) customer_www: Option<String>,
    #[serde(default)]
    pub(crate) plugins_autostart: Vec<String>,
    #[serde(default)]
    pub(crate) plugins_data: Vec<String>,
    #[serde(default)]
    pub(crate) templates: Vec<RawTemplate>,
    #[serde(default)]
    pub(crate) customization: toml::Table,
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) image: String,
    pub(crate) url: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) listen: Option<String>,
    pub(crate) admin_listen: Option<String>,
    pub(crate) public_url: Option<String>,
    pub(crate) internal_url: Option<String>,
    pub(crate) data_dir: Option<String>,
    pub(crate) header_read_timeout_seconds: Option<u64>,
    pub(crate) idle_timeout_seconds: Option<u64>,
    pub(crate) request_timeout_seconds: Option<u64>,
    pub(crate) shutdown_grace_seconds: Option<u64>,
    pub(crate) max_concurrent_requests: Option<usize>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) max_head_bytes: Option<usize>,
    pub(crate) max_headers: Option<usize>,
    pub(crate) body_idle_timeout_seconds: Option<u64>,
    pub(crate) connection_threads: Option<i64>,
    pub(crate) log_format: Option<String>,
    pub(crate) admin_token_file: Option<String>,
    pub(crate) tls: Option<RawTls>,
    pub(crate) body_limit_bytes: Option<RawGroups<u64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroups<T> {
    pub(crate) wopi: Option<T>,
    pub(crate) integrator: Option<T>,
    pub(crate) docs: Option<T>,
    pub(crate) hosting: Option<T>,
    pub(crate) proxy: Option<T>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccess {
    #[serde(default)]
    pub(crate) trusted_proxies: Vec<String>,
    #[serde(default)]
    pub(crate) allow: RawAllow,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAllow {
    #[serde(default)]
    pub(crate) wopi: Vec<String>,
    #[serde(default)]
    pub(crate) integrator: Vec<String>,
    #[serde(default)]
    pub(crate) docs: Vec<String>,
    #[serde(default)]
    pub(crate) hosting: Vec<String>,
    #[serde(default)]
    pub(crate) proxy: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLocks {
    pub(crate) store: Option<String>,
    pub(crate) ttl_seconds: Option<u64>,
    pub(crate) sweep_interval_ms: Option<u64>,
    pub(crate) max_lock_age_seconds: Option<u64>,
    pub(crate) redis_url: Option<String>,
    pub(crate) redis_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHostFace {
    #[serde(default)]
    pub(crate) discovery_urls: Vec<String>,
    pub(crate) discovery_refresh_seconds: Option<u64>,
    pub(crate) proof: Option<String>,
    pub(crate) proof_future_skew_seconds: Option<u64>,
    pub(crate) access_token_secret_file: Option<String>,
    pub(crate) access_token_ttl_seconds: Option<u64>,
    pub(crate) download_url_ttl_seconds: Option<u64>,
    pub(crate) delivery_max_backoff_seconds: Option<u64>,
    pub(crate) session_idle_timeout_seconds: Option<u64>,
    pub(crate) editor_idle_timeout_seconds: Option<u64>,
    #[serde(default)]
    pub(crate) integrator: Vec<RawIntegrator>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntegrator {
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) jwt_secret: Option<String>,
    pub(crate) jwt_secret_file: Option<String>,
    pub(crate) jwt_secret_env: Option<String>,
    pub(crate) jwt_header: Option<String>,
    #[serde(default)]
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) forcesave: Option<bool>,
    pub(crate) unenforceable: Option<String>,
    pub(crate) actions_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDocs {
    pub(crate) url: Option<String>,
    pub(crate) public_url: Option<String>,
    pub(crate) jwt_secret: Option<String>,
    pub(crate) jwt_secret_file: Option<String>,
    pub(crate) jwt_secret_env: Option<String>,
    pub(crate) jwt_header: Option<String>,
    pub(crate) ca_file: Option<String>,
    pub(crate) healthcheck_interval_seconds: Option<u64>,
    pub(crate) tunnel_idle_timeout_seconds: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstream {
    pub(crate) connect_timeout_seconds: Option<u64>,
    pub(crate) request_timeout_seconds: Option<u64>,
}
