//! `kiln-componentize`: the small native tool the plugin build scripts use (kept apart from the
//! host, which embeds the plugins it builds).
//!
//! - `kiln-componentize MODULE OUTPUT`: wrap a core wasm module built with wit-bindgen (which
//!   embeds its world's type information in a custom section) into a component, validating it.
//! - `kiln-componentize --rename-export FROM=TO INPUT OUTPUT`: rename one top-level export of a
//!   component (see [`rename`] for why).

mod rename;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [flag, mapping, input, output] if flag == "--rename-export" => {
            let (from, to) = mapping
                .split_once('=')
                .with_context(|| format!("--rename-export takes FROM=TO, not `{mapping}`"))?;
            let bytes = std::fs::read(input).with_context(|| format!("cannot read {input}"))?;
            let renamed = rename::rename_export(&bytes, from, to)
                .with_context(|| format!("cannot rename export `{from}` of {input}"))?;
            std::fs::write(output, renamed).with_context(|| format!("cannot write {output}"))
        }
        [module, output] if !module.starts_with("--") => componentize(module, output),
        _ => bail!(
            "usage: kiln-componentize MODULE.wasm OUTPUT.wasm\n       \
             kiln-componentize --rename-export FROM=TO INPUT.wasm OUTPUT.wasm"
        ),
    }
}

fn componentize(module: &str, output: &str) -> Result<()> {
    let bytes = std::fs::read(module).with_context(|| format!("cannot read {module}"))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&bytes)
        .with_context(|| format!("{module} is not a wit-bindgen module"))?
        .validate(true)
        .encode()
        .with_context(|| format!("cannot componentize {module}"))?;
    std::fs::write(output, component).with_context(|| format!("cannot write {output}"))?;
    Ok(())
}
