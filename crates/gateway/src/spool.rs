//! The spool: a directory of staged saves, cached content and pending deliveries.
//!
//! Everything a save depends on is written with fsync (file, then directory) before it is
//! acknowledged, and written atomically (temporary name, then rename), so a crash leaves
//! either the old or the new state and never a torn one.

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use ring::digest::{Context, SHA256};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncWriteExt as _;

/// A content file written to the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// Bytes written.
    pub size: u64,
    /// Base64 SHA-256 of the content (CheckFileInfo `SHA256`).
    pub sha256: String,
}

/// Why streaming into the spool stopped.
#[derive(Debug)]
pub(crate) enum StreamError<E> {
    /// The source stream failed (client went away, body limit, upstream reset).
    Source(E),
    /// Writing to disk failed.
    Io(io::Error),
    /// More than the allowed bytes arrived.
    TooLarge,
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Fsyncs a directory so a rename or create in it is durable.
pub(crate) async fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(io::Error::other)?
}

fn tmp_path(final_path: &Path) -> PathBuf {
    let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    final_path.with_file_name(format!(".tmp-{}-{n}-{name}", std::process::id()))
}

/// Streams `body` into `path` (atomically, fsync'd), hashing as it goes. At most `limit` bytes.
///
/// Disk writes and SHA-256 run on two blocking threads fed by bounded channels, so the network,
/// the hash and the disk overlap instead of taking turns (and no blocking-pool round trip is
/// paid per chunk).
pub(crate) async fn write_stream<S, E>(
    path: &Path,
    mut body: S,
    limit: u64,
) -> Result<Written, StreamError<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let tmp = tmp_path(path);
    let (to_disk, disk_rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let (to_hash, hash_rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let tmp_w = tmp.clone();
    let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
        use std::io::Write as _;
        let mut rx = disk_rx;
        let file = std::fs::File::create(&tmp_w)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        while let Some(chunk) = rx.blocking_recv() {
            out.write_all(&chunk)?;
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
    });
    let hasher = tokio::task::spawn_blocking(move || {
        let mut rx = hash_rx;
        let mut hash = Context::new(&SHA256);
        while let Some(chunk) = rx.blocking_recv() {
            hash.update(&chunk);
        }
        b64_digest(hash)
    });
    let mut size = 0u64;
    let mut failure: Option<StreamError<E>> = None;
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                failure = Some(StreamError::Source(e));
                break;
            }
        };
        size += chunk.len() as u64;
        if size > limit {
            failure = Some(StreamError::TooLarge);
            break;
        }
        if to_hash.send(chunk.clone()).await.is_err() || to_disk.send(chunk).await.is_err() {
            break; // the writer failed; its error is reported below
        }
    }
    drop(to_disk);
    drop(to_hash);
    let written = writer.await.map_err(io::Error::other).and_then(|r| r);
    let sha256 = hasher.await.unwrap_or_default();
    let result = match (failure, written) {
        (Some(f), _) => Err(f),
        (None, Err(e)) => Err(StreamError::Io(e)),
        (None, Ok(())) => async {
            tokio::fs::rename(&tmp, path).await?;
            if let Some(dir) = path.parent() {
                sync_dir(dir).await?;
            }
            Ok(Written { size, sha256 })
        }
        .await
        .map_err(StreamError::Io),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// Streams a file in 1 MiB chunks read on a blocking thread (for GetFile and downloads).
pub(crate) fn read_stream(
    file: std::fs::File,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut file = file;
        loop {
            // `read_to_end` on a `take` fills the spare capacity without zeroing it first (a
            // `vec![0; n]` per chunk wrote every byte twice).
            let mut buf = Vec::with_capacity(1 << 20);
            match (&mut file).take(1 << 20).read_to_end(&mut buf) {
                Ok(0) => return,
                Ok(_) => {
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return; // the client went away
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Creates a new file readable only by the owner (mode 0600) holding `data`, fsync'd; refuses
/// to overwrite. For generated secrets and keys.
pub(crate) fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Writes bytes atomically and durably.
pub(crate) async fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let mut file = tokio::fs::File::create(&tmp).await?;
    file.write_all(data).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, path).await?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).await?;
    }
    Ok(())
}

fn b64_digest(ctx: Context) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref())
}

/// Total size of regular files below `dir`.
pub(crate) fn disk_usage(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_usage(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_hashes_and_limits() {
        let dir = std::env::temp_dir().join(format!("spool-test-{}", std::process::id()));
        tokio::fs::create_dir_all(&dir).await.unwrap();
        let path = dir.join("a.bin");
        let chunks = futures_util::stream::iter(vec![
            Ok::<_, io::Error>(Bytes::from_static(b"hello ")),
            Ok(Bytes::from_static(b"world")),
        ]);
        let w = write_stream(&path, chunks, 100).await.unwrap();
        assert_eq!(w.size, 11);
        let mut ctx = Context::new(&SHA256);
        ctx.update(b"hello world");
        assert_eq!(w.sha256, b64_digest(ctx));
        assert_eq!(tokio::fs::read(&path).await.unwrap(), b"hello world");
        let big = futures_util::stream::iter(vec![Ok::<_, io::Error>(Bytes::from(vec![0u8; 200]))]);
        assert!(matches!(
            write_stream(&dir.join("b.bin"), big, 100).await,
            Err(StreamError::TooLarge)
        ));
        assert!(!dir.join("b.bin").exists());
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files are cleaned up");
        let _ = tokio::fs::remove_dir_all(&dir).await;
    }
}
