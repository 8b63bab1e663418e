//! Files only their owner may read: a 0700 directory, a 0600 file replaced atomically, and a
//! refusal to read one that others can read or change.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

/// The most a private file may hold; anything larger is not ours.
const MAX_BYTES: u64 = 4 * 1024 * 1024;

/// A private file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// The file is open to other users. Refused rather than warned about, as OpenSSH does with
    /// private keys: a warning scrolls by while the token in it keeps being exposed, and a
    /// file others can change could point the next command (and its token) at their server.
    #[error("{path} can be read or changed by other users (mode {mode:03o}); run `chmod 600 {path}`, and sign in again if someone else may have read it")]
    Exposed {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a regular file, or larger than any file this program writes.
    #[error("{path} is not a regular file of at most {MAX_BYTES} bytes")]
    Unexpected {
        /// The file.
        path: String,
    },
    /// The operating system refused.
    #[error("cannot {action} {path}: {error}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: String,
        /// Why it failed.
        error: io::Error,
    },
}

impl PrivateFileError {
    /// A mapper from the operating system's error while doing `action` on `path`.
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Self {
        let path = path.display().to_string();
        move |error| PrivateFileError::Io {
            action,
            path,
            error,
        }
    }
}

/// Reads `path`, or `None` when it does not exist.
pub fn read_private(path: &Path) -> Result<Option<Vec<u8>>, PrivateFileError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(PrivateFileError::io("read", path)(error)),
    };
    // The open file's metadata: what is checked is what is read.
    let metadata = file
        .metadata()
        .map_err(PrivateFileError::io("inspect", path))?;
    if !metadata.is_file() || metadata.len() > MAX_BYTES {
        return Err(PrivateFileError::Unexpected {
            path: path.display().to_string(),
        });
    }
    check_not_shared(path, &metadata)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(PrivateFileError::io("read", path))?;
    Ok(Some(bytes))
}

#[cfg(unix)]
fn check_not_shared(path: &Path, metadata: &fs::Metadata) -> Result<(), PrivateFileError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(PrivateFileError::Exposed {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_not_shared(_path: &Path, _metadata: &fs::Metadata) -> Result<(), PrivateFileError> {
    // No permission bits to check: the profile directory's ACLs protect the file.
    Ok(())
}

/// Replaces `path` with `bytes`: a 0600 temporary file in the same directory (so that the
/// rename stays on one file system), synced, then renamed over `path`. A reader sees the old
/// file or the new one, never half of one. The directory is created 0700 when missing.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    ensure_private_dir(&dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(
        ".{name}.{}.{:016x}.tmp",
        std::process::id(),
        rand::random::<u64>()
    ));
    let written = write_new_private(&temp, bytes)
        .and_then(|()| fs::rename(&temp, path).map_err(PrivateFileError::io("replace", path)));
    if written.is_err() {
        // Nothing useful is left in it; a failure to remove it changes nothing for the caller.
        let _ = fs::remove_file(&temp);
        return written;
    }
    sync_dir(&dir);
    Ok(())
}

/// Creates `temp` (which must not exist), owner-only before a byte is written, and syncs it.
fn write_new_private(temp: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(temp)
        .map_err(PrivateFileError::io("create", temp))?;
    // The creation mode passes through the umask; set it outright before the secret goes in.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(PrivateFileError::io("restrict", temp))?;
    }
    file.write_all(bytes)
        .map_err(PrivateFileError::io("write", temp))?;
    file.sync_all().map_err(PrivateFileError::io("sync", temp))
}

/// Creates `dir` (and missing parents) owner-only. An existing directory is left as it is:
/// it may be one the user chose and shares on purpose; the file's own mode protects the file.
fn ensure_private_dir(dir: &Path) -> Result<(), PrivateFileError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(PrivateFileError::io("create directory", dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(PrivateFileError::io("restrict directory", dir))?;
    }
    Ok(())
}

/// Makes the rename durable. Best effort: the new file is already in place either way, and
/// some file systems cannot sync a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn writes_owner_only_and_replaces_atomically() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a/b");
        let path = dir.join("config.json");
        assert!(read_private(&path).expect("missing is fine").is_none());
        write_private(&path, b"one").expect("write");
        write_private(&path, b"two").expect("rewrite");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(
            read_private(&path).expect("read").as_deref(),
            Some(&b"two"[..])
        );
        let leftovers: Vec<_> = fs::read_dir(&dir).expect("list").collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn refuses_a_file_others_can_read_or_change() {
        let root = tempfile::tempdir().expect("tempdir");
        let path = root.path().join("config.json");
        write_private(&path, b"{}").expect("write");
        for shared in [0o640, 0o604, 0o620] {
            fs::set_permissions(&path, fs::Permissions::from_mode(shared)).expect("chmod");
            let error = read_private(&path).expect_err("shared file");
            assert!(
                matches!(error, PrivateFileError::Exposed { mode, .. } if mode == shared),
                "{error}"
            );
        }
    }
}
