//! The argv of every LVM command the driver runs (after Cinder's `brick/local_dev/lvm.py`),
//! built in one place so unit tests can pin them. Names reaching this module were validated
//! by the driver (`volume-<uuid>`, `snapshot-<uuid>`, `clone-snap-<uuid>`).

use crate::drivers::exec::Cmd;

/// LVM commands for one volume group.
#[derive(Debug, Clone)]
pub struct LvmCommands {
    pub vg: String,
    /// `false`: every command carries `--config global{activation=0}` (no device-mapper).
    pub activation: bool,
}

/// Cinder's size string: whole GiB with LVM's `g` suffix.
pub fn size_arg(gb: u64) -> String {
    format!("{gb}g")
}

impl LvmCommands {
    fn cmd(&self, program: &str, extra_config: Option<&str>, args: Vec<String>) -> Cmd {
        let mut config = Vec::new();
        if !self.activation {
            config.push("global{activation=0}");
        }
        config.extend(extra_config);
        let mut all = Vec::with_capacity(args.len() + 2);
        if !config.is_empty() {
            all.push("--config".to_string());
            all.push(config.join(" "));
        }
        all.extend(args);
        Cmd::new(program, all)
    }

    fn path(&self, lv: &str) -> String {
        format!("{}/{}", self.vg, lv)
    }

    /// Capacity of the volume group.
    pub fn vgs(&self) -> Cmd {
        self.cmd(
            "vgs",
            None,
            strings(&[
                "--noheadings",
                "--unit=g",
                "-o",
                "name,size,free,lv_count,uuid",
                "--separator",
                ":",
                "--nosuffix",
                &self.vg,
            ]),
        )
    }

    /// Every logical volume of the group with what the driver needs to know about it.
    pub fn lvs(&self) -> Cmd {
        self.cmd(
            "lvs",
            None,
            strings(&[
                "--noheadings",
                "--unit=g",
                "-o",
                "vg_name,name,size,lv_attr,pool_lv,origin,data_percent",
                "--separator",
                ":",
                "--nosuffix",
                &self.vg,
            ]),
        )
    }

    /// A thick volume, optionally mirrored (`--type=mirror -m N --nosync --mirrorlog
    /// mirrored`, with Cinder's region size for volumes of 1.5 TiB and more).
    pub fn create_thick(&self, name: &str, size_gb: u64, mirrors: u32) -> Cmd {
        let mut args = strings(&["-n", name, &self.vg, "-L", &size_arg(size_gb)]);
        if mirrors > 0 {
            args.extend(strings(&[
                "--type=mirror",
                "-m",
                &mirrors.to_string(),
                "--nosync",
                "--mirrorlog",
                "mirrored",
            ]));
            let terabytes = size_gb as f64 / 1024.0;
            if terabytes >= 1.5 {
                // Next power of two for the region size (Cinder, after red.ht/U2BPOD).
                let rsize = 2f64.powf(terabytes.log2().ceil()) as u64;
                args.extend(strings(&["-R", &rsize.to_string()]));
            }
        }
        self.cmd("lvcreate", None, args)
    }

    /// A thin volume in `pool`.
    pub fn create_thin(&self, name: &str, size_gb: u64, pool: &str) -> Cmd {
        self.cmd(
            "lvcreate",
            None,
            strings(&["-T", "-V", &size_arg(size_gb), "-n", name, &self.path(pool)]),
        )
    }

    /// The thin pool itself, `size` as LVM accepts it (e.g. `18.95g`).
    pub fn create_thin_pool(&self, pool: &str, size: &str) -> Cmd {
        self.cmd(
            "lvcreate",
            None,
            strings(&["-T", "-L", size, &self.path(pool)]),
        )
    }

    /// A snapshot `name` of `origin`: thin snapshots share the pool, thick ones get a
    /// copy-on-write area of `size_gb`.
    pub fn create_snapshot(&self, name: &str, origin: &str, thin: bool, size_gb: u64) -> Cmd {
        let mut args = strings(&["--name", name, "--snapshot", &self.path(origin)]);
        if !thin {
            args.extend(strings(&["-L", &size_arg(size_gb)]));
        }
        self.cmd("lvcreate", None, args)
    }

    /// Activate an LV even if it carries the skip-activation flag (thin snapshots do), and
    /// drop that flag so it comes up after a reboot.
    pub fn activate(&self, name: &str) -> Cmd {
        self.cmd(
            "lvchange",
            None,
            strings(&["-a", "y", "--yes", "-K", "-k", "n", &self.path(name)]),
        )
    }

    /// Deactivate an LV (the merge of a snapshot into it then runs at the next activation).
    pub fn deactivate(&self, name: &str) -> Cmd {
        self.cmd("lvchange", None, strings(&["-a", "n", &self.path(name)]))
    }

    /// Merge thick snapshot `snapshot` back into its origin; the snapshot is consumed.
    pub fn merge(&self, snapshot: &str) -> Cmd {
        self.cmd(
            "lvconvert",
            None,
            strings(&["--merge", &self.path(snapshot)]),
        )
    }

    pub fn extend(&self, name: &str, new_size_gb: u64) -> Cmd {
        self.cmd(
            "lvextend",
            None,
            strings(&["-L", &size_arg(new_size_gb), &self.path(name)]),
        )
    }

    /// Remove an LV; with activation, retry deactivation like Cinder (udev may hold it).
    pub fn remove(&self, name: &str) -> Cmd {
        let extra = self
            .activation
            .then_some("activation{retry_deactivation=1}");
        self.cmd("lvremove", extra, strings(&["-f", &self.path(name)]))
    }

    /// The device node of an active LV.
    pub fn device_path(&self, name: &str) -> String {
        format!("/dev/{}/{}", self.vg, name)
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lvm(activation: bool) -> LvmCommands {
        LvmCommands {
            vg: "cinder-volumes".into(),
            activation,
        }
    }

    #[test]
    fn thick_thin_and_mirrored_creates() {
        let l = lvm(true);
        assert_eq!(
            l.create_thick("volume-1", 10, 0).display(),
            "lvcreate -n volume-1 cinder-volumes -L 10g"
        );
        assert_eq!(
            l.create_thick("volume-1", 10, 2).display(),
            "lvcreate -n volume-1 cinder-volumes -L 10g --type=mirror -m 2 --nosync --mirrorlog mirrored"
        );
        assert_eq!(
            l.create_thick("volume-1", 3072, 1).display(),
            "lvcreate -n volume-1 cinder-volumes -L 3072g --type=mirror -m 1 --nosync --mirrorlog mirrored -R 4"
        );
        assert_eq!(
            l.create_thin("volume-1", 5, "cinder-volumes-pool")
                .display(),
            "lvcreate -T -V 5g -n volume-1 cinder-volumes/cinder-volumes-pool"
        );
        assert_eq!(
            l.create_thin_pool("cinder-volumes-pool", "18.95g")
                .display(),
            "lvcreate -T -L 18.95g cinder-volumes/cinder-volumes-pool"
        );
    }

    #[test]
    fn snapshots_activation_extend_remove() {
        let l = lvm(true);
        assert_eq!(
            l.create_snapshot("snapshot-1", "volume-1", false, 4)
                .display(),
            "lvcreate --name snapshot-1 --snapshot cinder-volumes/volume-1 -L 4g"
        );
        assert_eq!(
            l.create_snapshot("snapshot-1", "volume-1", true, 4)
                .display(),
            "lvcreate --name snapshot-1 --snapshot cinder-volumes/volume-1"
        );
        assert_eq!(
            l.activate("volume-2").display(),
            "lvchange -a y --yes -K -k n cinder-volumes/volume-2"
        );
        assert_eq!(
            l.extend("volume-1", 7).display(),
            "lvextend -L 7g cinder-volumes/volume-1"
        );
        assert_eq!(
            l.remove("volume-1").display(),
            "lvremove --config 'activation{retry_deactivation=1}' -f cinder-volumes/volume-1"
        );
    }

    #[test]
    fn activation_disabled_goes_to_every_command_as_one_argument() {
        let l = lvm(false);
        for cmd in [
            l.vgs(),
            l.lvs(),
            l.create_thick("volume-1", 1, 0),
            l.create_thin("volume-1", 1, "p"),
            l.create_snapshot("s", "v", true, 1),
            l.extend("volume-1", 2),
            l.remove("volume-1"),
        ] {
            assert_eq!(cmd.args[0], "--config", "{}", cmd.display());
            assert_eq!(cmd.args[1], "global{activation=0}", "{}", cmd.display());
            assert_eq!(cmd.args.iter().filter(|a| *a == "--config").count(), 1);
        }
        assert_eq!(
            l.vgs().args[2..],
            strings(&[
                "--noheadings",
                "--unit=g",
                "-o",
                "name,size,free,lv_count,uuid",
                "--separator",
                ":",
                "--nosuffix",
                "cinder-volumes"
            ])
        );
        assert!(lvm(true).vgs().args[0] == "--noheadings");
    }
}
