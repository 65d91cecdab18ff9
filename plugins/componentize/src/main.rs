//! `kiln-componentize MODULE OUTPUT`: wrap a core wasm module built with wit-bindgen (which
//! embeds its world's type information in a custom section) into a component, validating it.
//! A separate small tool, so building plugins never needs the host (which embeds them).

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [module, output] = args.as_slice() else {
        bail!("usage: kiln-componentize MODULE.wasm OUTPUT.wasm");
    };
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
