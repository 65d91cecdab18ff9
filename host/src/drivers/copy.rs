//! Copying volume data (blocking; callers use `spawn_blocking`): reflink (FICLONE) where the
//! filesystem shares extents, else a sparse-aware copy that visits only the data extents
//! (SEEK_DATA / SEEK_HOLE) with `copy_file_range`, and a plain full copy between block
//! devices.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How a copy was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// Extents shared with the source (copy-on-write).
    Reflink,
    /// Data extents copied, holes kept.
    Sparse,
    /// Every byte copied (block devices).
    Full,
}

/// Copy the file `src` to a new file `dst` (which must not exist): a reflink when the
/// filesystem supports it, else a sparse copy. `dst` ends with `src`'s length; on failure
/// `dst` is removed.
pub fn clone_file(src: &Path, dst: &Path) -> std::io::Result<CopyMethod> {
    let from = File::open(src)?;
    let to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)?;
    let result = reflink(&from, &to).and_then(|linked| {
        if linked {
            Ok(CopyMethod::Reflink)
        } else {
            sparse_copy(&from, &to).map(|()| CopyMethod::Sparse)
        }
    });
    let result = result.and_then(|m| to.sync_all().map(|()| m));
    if result.is_err() {
        let _ = std::fs::remove_file(dst);
    }
    result
}

/// FICLONE: `Ok(true)` when the extents are now shared, `Ok(false)` when the filesystem
/// cannot reflink (EOPNOTSUPP, EXDEV, EINVAL, ENOTTY).
fn reflink(from: &File, to: &File) -> std::io::Result<bool> {
    // SAFETY: both descriptors are open for the duration of the call; FICLONE takes the
    // source descriptor as its argument.
    let rc = unsafe { libc::ioctl(to.as_raw_fd(), libc::FICLONE, from.as_raw_fd()) };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP | libc::EXDEV | libc::EINVAL | libc::ENOTTY | libc::ENOSYS) => {
            Ok(false)
        }
        _ => Err(err),
    }
}

/// Next data offset at or after `pos`, `None` past the last data.
fn seek_data(f: &File, pos: u64) -> std::io::Result<Option<u64>> {
    // SAFETY: lseek on an open descriptor has no memory effects.
    let r = unsafe { libc::lseek(f.as_raw_fd(), pos as libc::off_t, libc::SEEK_DATA) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ENXIO) {
        Ok(None)
    } else {
        Err(err)
    }
}

fn seek_hole(f: &File, pos: u64) -> std::io::Result<u64> {
    // SAFETY: as in `seek_data`.
    let r = unsafe { libc::lseek(f.as_raw_fd(), pos as libc::off_t, libc::SEEK_HOLE) };
    if r >= 0 {
        Ok(r as u64)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Copy only the data extents of `from` into `to` (same offsets) and give `to` the same
/// length, so holes stay holes.
fn sparse_copy(from: &File, to: &File) -> std::io::Result<()> {
    let len = from.metadata()?.len();
    to.set_len(len)?;
    let mut pos = 0u64;
    while pos < len {
        let Some(start) = seek_data(from, pos)? else {
            break;
        };
        let end = seek_hole(from, start)?.min(len);
        copy_range(from, to, start, end - start)?;
        pos = end;
    }
    Ok(())
}

/// `copy_file_range` of `count` bytes at `offset` in both files.
fn copy_range(from: &File, to: &File, offset: u64, count: u64) -> std::io::Result<()> {
    let mut off_in = offset as libc::loff_t;
    let mut off_out = offset as libc::loff_t;
    let mut left = count;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        // SAFETY: valid descriptors and offsets we own; the kernel updates the offsets.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut off_in,
                to.as_raw_fd(),
                &mut off_out,
                chunk,
                0,
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "source ended before its length",
            ));
        }
        left -= n as u64;
    }
    Ok(())
}

/// Copy the first `bytes` of `src` to `dst` (block devices or files, both existing),
/// everything including zeros, then flush `dst`.
pub fn copy_device(src: &Path, dst: &Path, bytes: u64) -> std::io::Result<()> {
    let mut from = File::open(src)?;
    let mut to = OpenOptions::new().write(true).open(dst)?;
    let mut buf = vec![0u8; 4 << 20];
    let mut left = bytes;
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        from.read_exact(&mut buf[..want])?;
        to.write_all(&buf[..want])?;
        left -= want as u64;
    }
    to.sync_all()
}

/// Copy the first `bytes` of `src` into the existing `dst` (a freshly created volume: a new
/// sparse file reads as zeros, so only `src`'s data extents are copied when both are regular
/// files; anything else — a block device on either side — is copied in full, zeros
/// included), then flush `dst`. `dst` must hold at least `bytes`.
pub fn copy_into(src: &Path, dst: &Path, bytes: u64) -> std::io::Result<CopyMethod> {
    let from = File::open(src)?;
    let to = OpenOptions::new().write(true).open(dst)?;
    let (src_meta, dst_meta) = (from.metadata()?, to.metadata()?);
    let room = if dst_meta.is_file() {
        dst_meta.len()
    } else {
        device_len(&to)?
    };
    if room < bytes {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "{} holds {room} bytes, fewer than the {bytes} to copy",
                dst.display()
            ),
        ));
    }
    if !(src_meta.is_file() && dst_meta.is_file()) {
        drop((from, to));
        copy_device(src, dst, bytes)?;
        return Ok(CopyMethod::Full);
    }
    let len = src_meta.len().min(bytes);
    let mut pos = 0u64;
    while pos < len {
        let Some(start) = seek_data(&from, pos)? else {
            break;
        };
        let end = seek_hole(&from, start)?.min(len);
        if start >= end {
            break;
        }
        if let Err(e) = copy_range(&from, &to, start, end - start) {
            // copy_file_range refuses some pairs of filesystems: fall back to read / write.
            if !matches!(
                e.raw_os_error(),
                Some(libc::EXDEV | libc::ENOSYS | libc::EINVAL)
            ) {
                return Err(e);
            }
            pread_pwrite(&from, &to, start, end - start)?;
        }
        pos = end;
    }
    to.sync_all()?;
    Ok(CopyMethod::Sparse)
}

/// The size of a block device (or any seekable file) open as `f`.
fn device_len(f: &File) -> std::io::Result<u64> {
    // SAFETY: lseek on an open descriptor has no memory effects.
    let r = unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(r as u64)
}

/// Copy `count` bytes at `offset` in both files with positioned reads and writes.
fn pread_pwrite(from: &File, to: &File, offset: u64, count: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; (4 << 20).min(count as usize).max(1)];
    let mut done = 0u64;
    while done < count {
        let want = (count - done).min(buf.len() as u64) as usize;
        from.read_exact_at(&mut buf[..want], offset + done)?;
        to.write_all_at(&buf[..want], offset + done)?;
        done += want as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, MetadataExt};

    #[test]
    fn sparse_copy_keeps_data_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let f = File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(b"head", 0).unwrap();
        f.write_all_at(&[7u8; 8192], 32 << 20).unwrap();
        f.write_all_at(b"tail", (64 << 20) - 4).unwrap();
        let dst = dir.path().join("dst");
        clone_file(&src, &dst).unwrap();
        let a = std::fs::read(&src).unwrap();
        let b = std::fs::read(&dst).unwrap();
        assert_eq!(a.len(), b.len());
        assert!(a == b, "content differs");
        // Allocated blocks stay far below the apparent 64 MiB.
        assert!(std::fs::metadata(&dst).unwrap().blocks() * 512 < (4 << 20));
        assert_eq!(
            clone_file(&src, &dst).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn copy_into_a_new_volume_copies_data_and_keeps_holes() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        let f = File::create(&src).unwrap();
        f.set_len(32 << 20).unwrap();
        f.write_all_at(b"first", 0).unwrap();
        f.write_all_at(b"last", (32 << 20) - 4).unwrap();
        File::create(&dst).unwrap().set_len(32 << 20).unwrap();
        assert_eq!(copy_into(&src, &dst, 32 << 20).unwrap(), CopyMethod::Sparse);
        assert!(std::fs::read(&src).unwrap() == std::fs::read(&dst).unwrap());
        assert!(std::fs::metadata(&dst).unwrap().blocks() * 512 < (4 << 20));
        let small = dir.path().join("small");
        File::create(&small).unwrap().set_len(1 << 20).unwrap();
        let err = copy_into(&src, &small, 32 << 20).unwrap_err();
        assert!(err.to_string().contains("fewer than"), "{err}");
    }

    #[test]
    fn device_copy_copies_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, vec![3u8; 10 << 20]).unwrap();
        std::fs::write(&b, vec![0u8; 12 << 20]).unwrap();
        copy_device(&a, &b, 10 << 20).unwrap();
        let got = std::fs::read(&b).unwrap();
        assert!(got[..10 << 20].iter().all(|&x| x == 3));
        assert!(got[10 << 20..].iter().all(|&x| x == 0));
    }
}
