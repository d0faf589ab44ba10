//! Where an uploaded file waits for its job: a file in `import.dir`, named
//! by the job's id.
//!
//! On disk rather than in PostgreSQL because uploads may be a gigabyte:
//! streaming them to a file costs one sequential write and no memory, while
//! a `bytea` or large object would pass every byte through WAL (and
//! replicas) only to be read once and deleted. The price is that every
//! process running import jobs must share the directory; a job whose file
//! is missing fails with a clear message instead of hanging.

use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::ImportError;

/// The path of job `id`'s upload.
#[must_use]
pub fn upload_path(dir: &Path, id: Uuid) -> PathBuf {
    dir.join(format!("{id}.csv"))
}

/// Writes `chunks` to `path`, refusing more than `limit` bytes in total
/// (counting from `already`); returns the new total. On error the caller
/// deletes the partial file with [`discard`].
///
/// # Errors
///
/// [`ImportError::TooLarge`] past the limit, [`ImportError::Io`] if writing
/// fails, or the stream's own error.
pub async fn append_stream<S, B, E>(
    file: &mut tokio::fs::File,
    mut chunks: S,
    already: u64,
    limit: u64,
) -> Result<u64, StoreError<E>>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    let mut total = already;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(StoreError::Source)?;
        let bytes = chunk.as_ref();
        total += bytes.len() as u64;
        if total > limit {
            return Err(StoreError::Import(ImportError::TooLarge(limit)));
        }
        file.write_all(bytes)
            .await
            .map_err(|e| StoreError::Import(e.into()))?;
    }
    Ok(total)
}

/// Creates the upload file for job `id` (and the directory if needed).
///
/// Uploads are subscriber data: the file is created readable by this user
/// only (`0600`), in a directory only it can list (`0700`) when Postino
/// creates it; an existing directory keeps the mode its owner chose. The
/// file is created new (`O_EXCL`), so a file or link planted under the
/// job's name is never written through.
///
/// # Errors
///
/// If the directory or file cannot be created.
pub async fn create(dir: &Path, id: Uuid) -> Result<(PathBuf, tokio::fs::File), ImportError> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir).await?;
    let path = upload_path(dir, id);
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let file = options.open(&path).await?;
    Ok((path, file))
}

/// Removes an upload; a file already gone is fine.
pub async fn discard(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(error = %e, path = %path.display(), "cannot remove import file");
    }
}

/// Storing an upload failed: on our side, or in the stream being read.
#[derive(Debug)]
pub enum StoreError<E> {
    /// Too large, or the disk refused.
    Import(ImportError),
    /// The upload stream failed (the client went away, a bad multipart body).
    Source(E),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn uploads_are_private_to_the_user_postino_runs_as() {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::temp_dir().join(format!("postino-store-test-{}", Uuid::now_v7()));
        let dir = base.join("imports");
        let (path, file) = create(&dir, Uuid::now_v7()).await.unwrap();
        drop(file);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir), 0o700);
        // The name is taken: a second create never opens the existing file.
        let id: Uuid = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap()
            .parse()
            .unwrap();
        assert!(create(&dir, id).await.is_err());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
