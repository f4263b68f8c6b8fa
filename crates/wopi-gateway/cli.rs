//! Command-line interface.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// wopi-gateway: makes WOPI and the ONLYOFFICE Docs API interchangeable.
#[derive(Debug, Parser)]
#[command(name = "wopi-gateway", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Runs the gateway (embedded defaults without --config).
    Serve {
        /// TOML settings file.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log format, overriding server.log_format: human or json.
        #[arg(long)]
        log_format: Option<String>,
    },
    /// Validates a settings file: prints `ok` or the first error (exit 0 or 64).
    CheckConfig {
        /// TOML settings file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Checks every stage an integration needs and prints the fix for each problem (exit 0/1).
    Doctor {
        /// TOML settings file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Pending callbacks of the host face (read from the spool; works while the gateway is down).
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Proof-key tools.
    ProofKey {
        #[command(subcommand)]
        command: ProofKeyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeliveriesCommand {
    /// Lists pending deliveries: id, status, attempts, age, last error.
    List {
        /// TOML settings file (for server.data_dir); embedded defaults without it.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProofKeyCommand {
    /// Generates a 2048-bit RSA key (PKCS#8 PEM) and prints its discovery attributes.
    Generate {
        /// Where to write the private key (created with mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Checks one request's proof against a WOPI client's discovery: prints which key
    /// matched or why it failed (exit 0 valid, 1 invalid).
    Verify {
        /// Discovery XML: a file path or an http(s) URL.
        #[arg(long)]
        discovery: String,
        /// The absolute request URL as the client used it (with its query).
        #[arg(long)]
        url: String,
        /// The access token as issued (not URL-encoded).
        #[arg(long)]
        access_token: String,
        /// X-WOPI-TimeStamp.
        #[arg(long)]
        timestamp: String,
        /// X-WOPI-Proof.
        #[arg(long)]
        proof: String,
        /// X-WOPI-ProofOld.
        #[arg(long)]
        proof_old: Option<String>,
        /// Skip the 20-minute freshness check (for recorded requests and test vectors).
        #[arg(long)]
        ignore_time: bool,
    },
}
