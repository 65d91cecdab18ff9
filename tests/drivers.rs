//! Native drivers against real storage: the file driver through the conformance suite, and
//! the LVM driver on a loop device with activation disabled (this machine has no
//! device-mapper), checked against `vgs` / `lvs`.

use anyhow::{Context, Result};
use kiln::config::{BackendConfig, Config};
use kiln::drivers::{self, Capacity, Connector, VolumeDriver, VolumeRef};
use kiln_integration_tests::{driver_suite, storage_tools};

#[tokio::test]
async fn file_driver_passes_the_suite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let vols = dir.path().join("vols");
    let settings = BackendConfig {
        path: Some(vols.clone()),
        ..Default::default()
    };
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let driver = drivers::build(&config, "file", &settings)?;
    driver_suite::run(driver.as_ref(), &|v: &VolumeRef| vols.join(&v.name)).await?;
    let left: Vec<_> = std::fs::read_dir(&vols)?.collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    Ok(())
}

const NO_ACTIVATION: &str = "global{activation=0}";

/// A volume group on a loop device over a sparse 4 GiB file; removed (VG, PV, loop device)
/// when dropped, also when the test fails.
struct LoopVg {
    vg: String,
    loop_dev: String,
    _dir: tempfile::TempDir,
}

impl LoopVg {
    fn create() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let img = dir.path().join("pv.img");
        std::fs::File::create(&img)?.set_len(4 << 30)?;
        let img = img.to_string_lossy().into_owned();
        let loop_dev = storage_tools::run("losetup", &["-f", "--show", &img])?
            .trim()
            .to_string();
        let vg = format!(
            "kilntest{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let guard = LoopVg {
            vg: vg.clone(),
            loop_dev: loop_dev.clone(),
            _dir: dir,
        };
        storage_tools::run("pvcreate", &["--config", NO_ACTIVATION, &loop_dev])?;
        storage_tools::run("vgcreate", &["--config", NO_ACTIVATION, &vg, &loop_dev])?;
        Ok(guard)
    }

    /// (size, free, lv_count) as `vgs` reports them.
    fn vgs(&self) -> Result<(f64, f64, u64)> {
        let out = storage_tools::run(
            "vgs",
            &[
                "--config",
                NO_ACTIVATION,
                "--noheadings",
                "--unit=g",
                "--nosuffix",
                "--separator",
                ":",
                "-o",
                "size,free,lv_count",
                &self.vg,
            ],
        )?;
        let f: Vec<&str> = out.trim().split(':').collect();
        Ok((f[0].parse()?, f[1].parse()?, f[2].parse()?))
    }

    /// Size in GiB of each LV, by name.
    fn lvs(&self) -> Result<Vec<(String, f64)>> {
        let out = storage_tools::run(
            "lvs",
            &[
                "--config",
                NO_ACTIVATION,
                "--noheadings",
                "--unit=g",
                "--nosuffix",
                "--separator",
                ":",
                "-o",
                "name,size",
                &self.vg,
            ],
        )?;
        out.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (n, s) = l.trim().split_once(':').context("lvs line")?;
                Ok((n.to_string(), s.parse()?))
            })
            .collect()
    }
}

impl Drop for LoopVg {
    fn drop(&mut self) {
        let _ = storage_tools::try_run("vgremove", &["--config", NO_ACTIVATION, "-f", &self.vg]);
        let _ = storage_tools::try_run(
            "pvremove",
            &["--config", NO_ACTIVATION, "-ff", "-y", &self.loop_dev],
        );
        let (ok, out) = storage_tools::try_run("losetup", &["-d", &self.loop_dev]);
        if !ok {
            eprintln!("could not detach {}: {out}", self.loop_dev);
        }
    }
}

async fn assert_stats_match(driver: &dyn VolumeDriver, vg: &LoopVg) -> Result<()> {
    let stats = driver.get_volume_stats().await?;
    let pool = &stats.pools[0];
    let (size, free, count) = vg.vgs()?;
    assert_eq!(pool.total_capacity_gb, Capacity::Gb(size));
    assert_eq!(pool.free_capacity_gb, Capacity::Gb(free));
    assert_eq!(pool.total_volumes, count);
    let provisioned = ((size - free) * 100.0).round() / 100.0;
    assert_eq!(pool.provisioned_capacity_gb, provisioned);
    let allocated: f64 = vg
        .lvs()?
        .iter()
        .filter(|(n, _)| n.starts_with("volume-"))
        .map(|(_, s)| s)
        .sum();
    assert_eq!(pool.allocated_capacity_gb, allocated);
    assert!(pool.thick_provisioning_support && !pool.thin_provisioning_support);
    Ok(())
}

#[tokio::test]
async fn lvm_on_a_loop_device_without_activation() -> Result<()> {
    storage_tools::ensure()?;
    let vg = LoopVg::create()?;
    let settings = BackendConfig {
        driver: "lvm".into(),
        volume_group: vg.vg.clone(),
        lvm_activation: false,
        ..Default::default()
    };
    let driver = drivers::build(&Config::default(), "lvm", &settings)?;
    driver.do_setup().await?;
    assert_stats_match(driver.as_ref(), &vg).await?;

    let v = VolumeRef::new(uuid::Uuid::new_v4(), 1);
    driver.create_volume(&v).await?;
    driver.create_volume(&v).await?; // redelivered: no second LV, no error
    assert_eq!(vg.lvs()?, vec![(v.name.clone(), 1.0)]);
    assert_stats_match(driver.as_ref(), &vg).await?;

    driver.extend_volume(&v, 1).await?; // same size: nothing to do
    driver.extend_volume(&v, 2).await?;
    assert_eq!(vg.lvs()?, vec![(v.name.clone(), 2.0)]);
    assert_stats_match(driver.as_ref(), &vg).await?;
    let grown = VolumeRef {
        size_gb: 2,
        ..v.clone()
    };
    let err = driver
        .extend_volume(&grown, 5)
        .await
        .expect_err("5 GiB does not fit a 4 GiB volume group");
    assert!(
        err.to_string().contains("lvextend")
            && err
                .to_string()
                .to_lowercase()
                .contains("insufficient free space"),
        "{err}"
    );

    let err = driver
        .create_cloned_volume(&VolumeRef::new(uuid::Uuid::new_v4(), 1), &v)
        .await
        .expect_err("thick clone needs an active LV");
    assert!(err.to_string().contains("needs device-mapper; this host runs LVM with activation disabled (lvm_activation=false)"), "{err}");
    let err = driver
        .initialize_connection(
            &v,
            &Connector {
                host: "h".into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("attaching needs an active LV");
    assert!(err.to_string().contains("lvm_activation=false"), "{err}");

    driver.delete_volume(&v).await?;
    driver.delete_volume(&v).await?; // already gone
    assert!(vg.lvs()?.is_empty());
    assert_stats_match(driver.as_ref(), &vg).await?;
    Ok(())
}
