//! The content store: where file content lives (`[content]`). `fs` is one directory, local
//! to one instance or shared by all of them (NFS, a ReadWriteMany volume); every write is
//! streamed, fsync'd (file, then directory) and renamed into place before it is
//! acknowledged. `s3` is an S3-compatible bucket (see [`s3`]). Keys are relative paths: `files/<file id>/<version>.bin`, `recovery/…`.

use crate::spool::{self, StreamError, Written};
use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use std::io;
use std::path::{Component, Path, PathBuf};

mod s3;

/// A stored object, open for reading.
pub(crate) struct Content {
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes.
    pub stream: BoxStream<'static, io::Result<Bytes>>,
}

/// One stored object in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// Its key.
    pub key: String,
    /// Last change, Unix ms.
    pub modified_ms: u64,
}

/// The content store. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) enum ContentStore {
    /// A directory.
    Fs(FsStore),
    /// An S3-compatible bucket.
    S3(Box<s3::S3Store>),
}

/// `store = "fs"`.
#[derive(Debug, Clone)]
pub(crate) struct FsStore {
    root: PathBuf,
}

/// A key that is a plain relative path (no `..`, no root), so no key leaves the store.
fn checked(key: &str) -> io::Result<&Path> {
    let path = Path::new(key);
    let plain = !key.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("content key `{key}` is not a plain relative path"),
        ))
    }
}

impl ContentStore {
    /// A directory store (created when missing).
    pub(crate) fn fs(root: PathBuf) -> io::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(ContentStore::Fs(FsStore { root }))
    }

    /// An S3 bucket store (nothing is sent until it is used).
    pub(crate) fn s3(
        s: &crate::settings::S3Settings,
        http: crate::http_client::HttpClient,
    ) -> io::Result<Self> {
        Ok(ContentStore::S3(Box::new(s3::S3Store::new(s, http)?)))
    }

    /// Where an operator finds `key`: a path (fs) or an `s3://bucket/key` URL.
    pub(crate) fn locate(&self, key: &str) -> String {
        match self {
            ContentStore::Fs(f) => f.root.join(key).display().to_string(),
            ContentStore::S3(s) => s.locate(key),
        }
    }

    /// What `/readyz` and the logs call it.
    pub(crate) fn describe(&self) -> String {
        match self {
            ContentStore::Fs(f) => format!("content store {}", f.root.display()),
            ContentStore::S3(s) => s.describe(),
        }
    }

    /// Streams `body` into `key`, at most `limit` bytes; durable when it returns `Ok`.
    pub(crate) async fn write<S, E>(
        &self,
        key: &str,
        body: S,
        limit: u64,
    ) -> Result<Written, StreamError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        match self {
            ContentStore::Fs(f) => {
                let path = f.root.join(checked(key).map_err(StreamError::Io)?);
                if let Some(dir) = path.parent() {
                    tokio::fs::create_dir_all(dir)
                        .await
                        .map_err(StreamError::Io)?;
                }
                spool::write_stream(&path, body, limit).await
            }
            ContentStore::S3(s) => {
                let key = checked(key)
                    .map_err(StreamError::Io)?
                    .to_string_lossy()
                    .into_owned();
                s.write(&key, body, limit).await
            }
        }
    }

    /// Opens `key`; `None` when it is not there.
    pub(crate) async fn open(&self, key: &str) -> io::Result<Option<Content>> {
        match self {
            ContentStore::Fs(f) => {
                let path = f.root.join(checked(key)?);
                let file = match std::fs::File::open(&path) {
                    Ok(file) => file,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                };
                let size = file.metadata()?.len();
                Ok(Some(Content {
                    size,
                    stream: Box::pin(spool::read_stream(file)),
                }))
            }
            ContentStore::S3(s) => s.open(&checked(key)?.to_string_lossy()).await,
        }
    }

    /// Removes `key` (no error when it is not there).
    pub(crate) async fn delete(&self, key: &str) -> io::Result<()> {
        match self {
            ContentStore::Fs(f) => match tokio::fs::remove_file(f.root.join(checked(key)?)).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            },
            ContentStore::S3(s) => s.delete(&checked(key)?.to_string_lossy()).await,
        }
    }

    /// Every object whose key starts with `prefix` (a folder, ending in `/`).
    pub(crate) async fn list(&self, prefix: &str) -> io::Result<Vec<Listed>> {
        match self {
            ContentStore::Fs(f) => {
                let root = f.root.clone();
                let start = root.join(checked(prefix.trim_end_matches('/'))?);
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    list_dir(&root, &start, &mut out);
                    out
                })
                .await
                .map_err(io::Error::other)
            }
            ContentStore::S3(s) => {
                checked(prefix.trim_end_matches('/'))?;
                s.list(prefix).await
            }
        }
    }

    /// Answers when the store is usable (readiness): the directory is there.
    pub(crate) async fn check(&self) -> io::Result<()> {
        match self {
            ContentStore::Fs(f) => {
                let m = tokio::fs::metadata(&f.root).await?;
                if m.is_dir() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!(
                        "{} is not a directory",
                        f.root.display()
                    )))
                }
            }
            ContentStore::S3(s) => s.check().await,
        }
    }

    /// Bytes stored (the `spool_bytes` gauge).
    pub(crate) fn usage(&self) -> u64 {
        match self {
            ContentStore::Fs(f) => spool::disk_usage(&f.root),
            // Not measured: a bucket's size is the provider's to report.
            ContentStore::S3(_) => 0,
        }
    }
}

fn list_dir(root: &Path, dir: &Path, out: &mut Vec<Listed>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            list_dir(root, &path, out);
        } else if meta.is_file() && !e.file_name().to_string_lossy().starts_with(".tmp") {
            let Ok(rel) = path.strip_prefix(root) else {
                continue;
            };
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as u64);
            out.push(Listed {
                key: rel.to_string_lossy().replace('\\', "/"),
                modified_ms,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt as _;

    #[tokio::test]
    async fn fs_store_writes_reads_lists_and_refuses_escapes() {
        let dir = std::env::temp_dir().join(format!("content-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ContentStore::fs(dir.clone()).unwrap();
        let body = futures_util::stream::iter(vec![Ok::<_, io::Error>(Bytes::from_static(b"abc"))]);
        let w = store.write("files/f1/v1.bin", body, 10).await.unwrap();
        assert_eq!(w.size, 3);
        let c = store.open("files/f1/v1.bin").await.unwrap().unwrap();
        assert_eq!(c.size, 3);
        let bytes: Vec<Bytes> = c.stream.map(Result::unwrap).collect().await;
        assert_eq!(bytes.concat(), b"abc");
        let listed = store.list("files/").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].key, "files/f1/v1.bin");
        for bad in ["../x", "/etc/passwd", "files/../../x", ""] {
            assert!(store.open(bad).await.is_err(), "{bad}");
        }
        store.delete("files/f1/v1.bin").await.unwrap();
        store.delete("files/f1/v1.bin").await.unwrap();
        assert!(store.open("files/f1/v1.bin").await.unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
