//! Hostile: a volume driver whose `create_volume` attacks the exec sandbox, chosen by its
//! `attack` setting, against the file named by its `sentinel` setting (the test asserts the
//! file never appears):
//!
//! - `shell`: `/bin/sh -c "touch SENTINEL"`
//! - `ungranted`: `/usr/bin/touch SENTINEL` (a program the manifest does not grant)
//! - `argument`: `qemu-img create -q -f qcow2 SENTINEL 1G` (the grant says `raw`)
//! - `escape`: `qemu-img create -q -f raw SENTINEL 1G` with SENTINEL outside the root
//!   (`..`, or through a symlink)
//! - `env`: the granted command with `LD_PRELOAD` set
//! - `export`: exports SENTINEL (a host file) through the target interface
//! - `spin`: loops forever (the guest deadline)
//! - `none`: the granted command, creating SENTINEL (the control: the grant works)
use kiln_plugin_sdk::exec::{self, Command};
use kiln_plugin_sdk::{
    config, target, BackendStats, DriverError, ModelUpdate, Volume, VolumeDriver,
};

struct Hostile {
    attack: String,
    sentinel: String,
}

const QEMU_IMG: &str = "/usr/bin/qemu-img";

impl VolumeDriver for Hostile {
    fn new() -> Result<Self, DriverError> {
        Ok(Hostile {
            attack: config::get("attack").unwrap_or_default(),
            sentinel: config::get("sentinel").unwrap_or_default(),
        })
    }

    fn do_setup(&self) -> Result<(), DriverError> {
        Ok(())
    }

    fn get_volume_stats(&self) -> Result<BackendStats, DriverError> {
        Err(DriverError::NotSupported("stats".into()))
    }

    fn create_volume(&self, v: &Volume) -> Result<ModelUpdate, DriverError> {
        let s = self.sentinel.as_str();
        let create =
            |format: &str| Command::new(QEMU_IMG).args(["create", "-q", "-f", format, s, "1G"]);
        let cmd = match self.attack.as_str() {
            "shell" => Command::new("/bin/sh").args(["-c", &format!("touch {s}")]),
            "ungranted" => Command::new("/usr/bin/touch").arg(s),
            "argument" => create("qcow2"),
            "escape" | "none" => create("raw"),
            "env" => create("raw").env("LD_PRELOAD", "/tmp/evil.so"),
            "export" => return target::create_export(v, s),
            "spin" => {
                let mut x: u64 = 1;
                loop {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    if x == 0 {
                        return Ok(ModelUpdate::default());
                    }
                }
            }
            other => return Err(DriverError::Invalid(format!("unknown attack `{other}`"))),
        };
        exec::run_checked(&cmd)?;
        Ok(ModelUpdate::default())
    }

    fn delete_volume(&self, _v: &Volume) -> Result<(), DriverError> {
        Ok(())
    }

    fn extend_volume(&self, _v: &Volume, _new_size_gb: u64) -> Result<(), DriverError> {
        Err(DriverError::NotSupported("extend".into()))
    }
}

kiln_plugin_sdk::export_driver!(Hostile);
