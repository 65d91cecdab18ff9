//! The default plugins, built from `plugins/` by `scripts/build-plugins` into `plugins/dist/`
//! (committed, and checked for staleness in CI) and embedded here, so `kiln all-in-one` needs no
//! WebAssembly toolchain. Volume drivers come with their exec manifests.

use super::PluginKind;

/// A component embedded in the binary.
pub struct Builtin {
    /// File stem in `plugins/dist/`, e.g. `capacity_filter`.
    pub file: &'static str,
    pub kind: PluginKind,
    pub bytes: &'static [u8],
}

macro_rules! builtin {
    ($file:literal, $kind:ident) => {
        Builtin {
            file: $file,
            kind: PluginKind::$kind,
            bytes: include_bytes!(concat!("../../../plugins/dist/", $file, ".wasm")),
        }
    };
}

/// Every default filter and weigher.
pub static BUILTINS: &[Builtin] = &[
    builtin!("availability_zone_filter", Filter),
    builtin!("capacity_filter", Filter),
    builtin!("capabilities_filter", Filter),
    builtin!("same_backend_filter", Filter),
    builtin!("different_backend_filter", Filter),
    builtin!("json_filter", Filter),
    builtin!("driver_filter", Filter),
    builtin!("capacity_weigher", Weigher),
    builtin!("allocated_capacity_weigher", Weigher),
    builtin!("volume_number_weigher", Weigher),
    builtin!("goodness_weigher", Weigher),
    builtin!("chance_weigher", Weigher),
];

/// A volume-driver component embedded in the binary, with its exec manifest.
pub struct BuiltinDriver {
    /// File stem in `plugins/dist/`, e.g. `qemu_img_driver`; the `plugin` value naming it.
    pub file: &'static str,
    pub bytes: &'static [u8],
    /// The manifest shipped beside it (`<file>.toml`).
    pub manifest: &'static str,
}

/// Every builtin volume driver.
pub static DRIVERS: &[BuiltinDriver] = &[BuiltinDriver {
    file: "qemu_img_driver",
    bytes: include_bytes!("../../../plugins/dist/qemu_img_driver.wasm"),
    manifest: include_str!("../../../plugins/dist/qemu_img_driver.toml"),
}];

/// The builtin driver with file stem `file`.
pub fn driver(file: &str) -> Option<&'static BuiltinDriver> {
    DRIVERS.iter().find(|d| d.file == file)
}

/// The builtin with file stem `file`.
pub fn get(file: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.file == file)
}
