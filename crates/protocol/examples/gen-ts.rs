//! Writes the TypeScript bindings of Duet's wire types into a folder (the only argument):
//! `cargo run -p duet-protocol --features ts --example gen-ts -- web/src/gen`. The folder should
//! be empty (scripts/gen-types clears it), so a type removed in Rust leaves no file behind.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: gen-ts DIR")?
        .into();
    std::fs::create_dir_all(&dir)?;
    let names = duet_protocol::ts::export(&dir)?;
    eprintln!("gen-ts: {} types written to {}", names.len(), dir.display());
    Ok(())
}
