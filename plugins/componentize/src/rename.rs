//! Renaming one top-level export of a component.
//!
//! Why: componentize-py links the Python interpreter with wasi-libc as shared libraries, and
//! wit-component's linker refuses two exported functions of the same name. A world export
//! named like a libc function (the filter world's `accept`, like `accept(2)`) therefore
//! cannot be built directly. The Python example is built against a copy of the WIT with that
//! export renamed, and this puts the real name back. Only the name in the component's
//! outermost export section changes; every other section is copied byte for byte, and the
//! result is validated.

use anyhow::{bail, Context, Result};
use wasm_encoder::{ComponentExportSection, ComponentSectionId, Encode};
use wasmparser::{BinaryReader, ComponentExportSectionReader, Validator, WasmFeatures};

const HEADER_LEN: usize = 8;

/// `component` with its top-level export `from` named `to`.
pub fn rename_export(component: &[u8], from: &str, to: &str) -> Result<Vec<u8>> {
    if !wasmparser::Parser::is_component(component) {
        bail!("not a component");
    }
    let mut out = component[..HEADER_LEN].to_vec();
    let mut rest = BinaryReader::new(&component[HEADER_LEN..], HEADER_LEN as u64);
    let mut renamed = 0;
    while !rest.eof() {
        let start = rest.original_position() as usize;
        let id = rest.read_u8()?;
        let len = rest.read_var_u32()? as usize;
        let body_start = rest.original_position() as usize;
        let body = rest.read_bytes(len)?;
        if id != ComponentSectionId::Export as u8 {
            out.extend_from_slice(&component[start..body_start + len]);
            continue;
        }
        let reader = ComponentExportSectionReader::new(BinaryReader::new(body, body_start as u64))?;
        let mut section = ComponentExportSection::new();
        for export in reader {
            let export = export?;
            let mut name = wasm_encoder::ComponentExternName::from(export.name);
            if export.name.name == from {
                renamed += 1;
                name.name = to.into();
            }
            section.export(
                name,
                export.kind.into(),
                export.index,
                export.ty.map(Into::into),
            );
        }
        out.push(id);
        section.encode(&mut out);
    }
    if renamed == 0 {
        bail!("the component has no top-level export `{from}`");
    }
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(&out)
        .context("the renamed component does not validate")?;
    Ok(out)
}
