//! A driver conformance suite, generic over `&dyn VolumeDriver`: create / write / snapshot /
//! write again / clone / volume from snapshot / revert to the snapshot / extend / delete, with
//! byte-level checks that data written before a snapshot or clone is in the copy and data
//! written after is not.
//! Any driver whose volumes the test process can open as files or block devices can run it
//! (the file driver, LVM with activation, later the WASM driver).

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use anyhow::{bail, ensure, Context, Result};
use kiln::drivers::{SnapshotRef, VolumeDriver, VolumeRef};

const GIB: u64 = 1 << 30;
const BLOCK: usize = 4096;

/// Offsets the suite writes to inside a 1 GiB volume: start, middle, last block.
const OFFSETS: [u64; 3] = [0, 512 << 20, GIB - BLOCK as u64];
/// A block first written after the snapshot (a hole before).
const LATE: u64 = 256 << 20;

/// A 4 KiB block that names its pattern and offset, so a mix-up is visible in failures.
fn block(tag: &str, offset: u64) -> Vec<u8> {
    let mut b = format!("kiln-suite {tag} @ {offset} ").into_bytes();
    b.resize(BLOCK, tag.as_bytes()[0]);
    b
}

fn write(path: &PathBuf, offset: u64, data: &[u8]) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("open {} for writing", path.display()))?;
    f.write_all_at(data, offset)?;
    f.sync_all()?;
    Ok(())
}

fn read(path: &PathBuf, offset: u64) -> Result<Vec<u8>> {
    let f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut buf = vec![0u8; BLOCK];
    f.read_exact_at(&mut buf, offset)
        .with_context(|| format!("read {} at {offset}", path.display()))?;
    Ok(buf)
}

/// Size in bytes of a file or block device.
pub fn size_of(path: &PathBuf) -> Result<u64> {
    let mut f = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    Ok(f.seek(SeekFrom::End(0))?)
}

fn expect(path: &PathBuf, offset: u64, want: &[u8], what: &str) -> Result<()> {
    let got = read(path, offset)?;
    if got != want {
        let show = |b: &[u8]| String::from_utf8_lossy(&b[..48]).into_owned();
        bail!(
            "{what}: {} at offset {offset} holds {:?}, expected {:?}",
            path.display(),
            show(&got),
            show(want)
        );
    }
    Ok(())
}

fn zeros() -> Vec<u8> {
    vec![0u8; BLOCK]
}

/// Run the suite. `data_path` says where the test process can read and write a volume's
/// data (the file, or the block device).
pub async fn run(
    driver: &dyn VolumeDriver,
    data_path: &dyn Fn(&VolumeRef) -> PathBuf,
) -> Result<()> {
    driver.do_setup().await.context("do_setup")?;
    let before = driver.get_volume_stats().await.context("stats")?.pools[0].total_volumes;
    let mut src = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    let snap = SnapshotRef::new(uuid::Uuid::new_v4(), src.clone());
    let clone = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    let from_snap = VolumeRef::new(uuid::Uuid::new_v4(), 2);
    let result = steps(
        driver, data_path, &mut src, &snap, &clone, &from_snap, before,
    )
    .await;
    // Clean up whatever the steps left, even after a failure; deletes are idempotent.
    let _ = driver.delete_snapshot(&snap).await;
    for v in [&clone, &from_snap, &src] {
        let _ = driver.delete_volume(v).await;
    }
    result
}

async fn steps(
    driver: &dyn VolumeDriver,
    data_path: &dyn Fn(&VolumeRef) -> PathBuf,
    src: &mut VolumeRef,
    snap: &SnapshotRef,
    clone: &VolumeRef,
    from_snap: &VolumeRef,
    before: u64,
) -> Result<()> {
    // Create: a zero-filled volume of the requested size.
    let upd = driver.create_volume(src).await.context("create_volume")?;
    src.apply(&upd);
    let p = data_path(src);
    ensure!(
        size_of(&p)? == GIB,
        "new volume is {} bytes, expected 1 GiB",
        size_of(&p)?
    );
    for off in OFFSETS {
        expect(&p, off, &zeros(), "new volume must read as zeros")?;
    }

    // Pattern A, then the snapshot, then pattern B over it plus a block that was a hole.
    for off in OFFSETS {
        write(&p, off, &block("A", off))?;
    }
    driver
        .create_snapshot(snap)
        .await
        .context("create_snapshot")?;
    write(&p, 0, &block("B", 0))?;
    write(&p, LATE, &block("B", LATE))?;

    // Clone: sees B (written before the clone), not C (written after).
    driver
        .create_cloned_volume(clone, src)
        .await
        .context("create_cloned_volume")?;
    write(&p, 0, &block("C", 0))?;
    let cp = data_path(clone);
    ensure!(
        size_of(&cp)? == GIB,
        "clone is {} bytes, expected 1 GiB",
        size_of(&cp)?
    );
    expect(
        &cp,
        0,
        &block("B", 0),
        "clone must hold data written before it",
    )?;
    expect(
        &cp,
        LATE,
        &block("B", LATE),
        "clone must hold data written before it",
    )?;
    for off in &OFFSETS[1..] {
        expect(
            &cp,
            *off,
            &block("A", *off),
            "clone must hold older data too",
        )?;
    }
    // And the clone is independent of its source.
    write(&cp, OFFSETS[1], &block("D", OFFSETS[1]))?;
    expect(
        &p,
        OFFSETS[1],
        &block("A", OFFSETS[1]),
        "writing a clone must not change its source",
    )?;

    // Volume from the snapshot, larger than the snapshot: only pattern A.
    driver
        .create_volume_from_snapshot(from_snap, snap)
        .await
        .context("create_volume_from_snapshot")?;
    let sp = data_path(from_snap);
    ensure!(
        size_of(&sp)? == 2 * GIB,
        "volume from snapshot is {} bytes, expected 2 GiB",
        size_of(&sp)?
    );
    for off in OFFSETS {
        expect(
            &sp,
            off,
            &block("A", off),
            "snapshot must hold data written before it",
        )?;
    }
    expect(
        &sp,
        LATE,
        &zeros(),
        "snapshot must not hold data written after it",
    )?;
    expect(
        &sp,
        GIB + (1 << 20),
        &zeros(),
        "space past the snapshot's size must be zeros",
    )?;

    let during = driver.get_volume_stats().await.context("stats")?.pools[0].total_volumes;
    ensure!(
        during >= before + 3,
        "stats count {during} volumes after creating 3 (before: {before})"
    );

    // Revert to the snapshot: pattern A is back, what was written after it is gone (the
    // block that was a hole reads as zeros again). A driver that cannot revert must say so
    // with NotSupported; then the volume keeps its data.
    let reverted = match driver.revert_to_snapshot(src, snap).await {
        Ok(()) => true,
        Err(kiln::drivers::DriverError::NotSupported { .. }) => false,
        Err(e) => return Err(e).context("revert_to_snapshot"),
    };
    let at_zero = if reverted {
        for off in OFFSETS {
            expect(
                &p,
                off,
                &block("A", off),
                "revert must restore the snapshot's data",
            )?;
        }
        expect(
            &p,
            LATE,
            &zeros(),
            "revert must drop data written after the snapshot",
        )?;
        block("A", 0)
    } else {
        expect(
            &p,
            0,
            &block("C", 0),
            "a refused revert must leave the data alone",
        )?;
        block("C", 0)
    };
    ensure!(
        size_of(&p)? == GIB,
        "reverted volume is {} bytes, expected 1 GiB",
        size_of(&p)?
    );

    // Extend keeps the data and adds zeros.
    driver
        .extend_volume(src, 2)
        .await
        .context("extend_volume")?;
    src.size_gb = 2;
    ensure!(
        size_of(&p)? == 2 * GIB,
        "extended volume is {} bytes, expected 2 GiB",
        size_of(&p)?
    );
    expect(&p, 0, &at_zero, "extend must keep data")?;
    expect(
        &p,
        OFFSETS[2],
        &block("A", OFFSETS[2]),
        "extend must keep data",
    )?;
    expect(
        &p,
        GIB + (512 << 20),
        &zeros(),
        "extended space must be zeros",
    )?;
    ensure!(
        driver.extend_volume(src, 1).await.is_err(),
        "shrinking a volume must be refused"
    );

    // Delete: gone, and deleting again is still success.
    driver
        .delete_snapshot(snap)
        .await
        .context("delete_snapshot")?;
    driver
        .delete_snapshot(snap)
        .await
        .context("delete_snapshot again")?;
    for v in [clone, from_snap, &*src] {
        driver.delete_volume(v).await.context("delete_volume")?;
        driver
            .delete_volume(v)
            .await
            .context("delete_volume again")?;
        ensure!(
            !data_path(v).exists(),
            "{} still exists after delete",
            data_path(v).display()
        );
    }
    Ok(())
}
