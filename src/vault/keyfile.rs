//! The master key on disk: `<data>/vault.key`, 32 raw bytes, owner-only.
//!
//! Writes are crash-safe: a key file is written whole under a temporary name, fsynced, and
//! only then renamed into place (and the directory fsynced), so `vault.key` is always either
//! the old key or the new one, never half of each.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::VaultError;
use super::key::{KEY_LEN, MasterKey};

pub const KEY_FILE: &str = "vault.key";
/// Where a rotation stages the next key until its transaction has committed.
pub const NEW_KEY_FILE: &str = "vault.key.new";

pub fn key_path(dir: &Path) -> PathBuf {
    dir.join(KEY_FILE)
}
pub fn new_key_path(dir: &Path) -> PathBuf {
    dir.join(NEW_KEY_FILE)
}

fn io(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> VaultError {
    let path = path.display().to_string();
    move |source| VaultError::Io {
        path,
        action,
        source,
    }
}

/// Read a key file, refusing one that anybody but its owner could read.
pub fn read(path: &Path) -> Result<MasterKey, VaultError> {
    let mut file = fs::File::open(path).map_err(io(path, "open"))?;
    let meta = file.metadata().map_err(io(path, "inspect"))?;
    check_private(path, &meta)?;
    // One byte more than a key, so an oversized file is reported instead of truncated.
    let mut buf = Zeroizing::new(Vec::with_capacity(KEY_LEN + 1));
    (&mut file)
        .take(KEY_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(io(path, "read"))?;
    MasterKey::from_slice(&buf).ok_or_else(|| VaultError::KeyFileMalformed {
        path: path.display().to_string(),
        len: meta.len(),
    })
}

#[cfg(unix)]
fn check_private(path: &Path, meta: &fs::Metadata) -> Result<(), VaultError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(VaultError::KeyFileExposed {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &fs::Metadata) -> Result<(), VaultError> {
    Ok(())
}

/// Write `key` to `path`, which must not exist, readable by the owner only, and durably.
pub fn create(path: &Path, key: &MasterKey) -> Result<(), VaultError> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(io(path, "create"))?;
    f.write_all(key.bytes()).map_err(io(path, "write"))?;
    f.sync_all().map_err(io(path, "fsync"))?;
    sync_parent(path)
}

/// Replace `to` by `from` atomically and durably.
pub fn rename(from: &Path, to: &Path) -> Result<(), VaultError> {
    fs::rename(from, to).map_err(io(to, "rename onto"))?;
    sync_parent(to)
}

pub fn remove(path: &Path) -> Result<(), VaultError> {
    match fs::remove_file(path) {
        Ok(()) => sync_parent(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path, "remove")(e)),
    }
}

pub fn exists(path: &Path) -> Result<bool, VaultError> {
    path.try_exists().map_err(io(path, "inspect"))
}

/// Make a create, rename or remove in the directory itself survive a power cut.
fn sync_parent(path: &Path) -> Result<(), VaultError> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir, "fsync"))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}
