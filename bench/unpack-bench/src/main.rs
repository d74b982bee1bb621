//! `unpack-bench LAYER DIR [--sync]`: unpack one layer blob (plain, gzip or zstd tar) into
//! the existing directory DIR exactly as the image store does (`berth_image::unpack`),
//! then `syncfs` when `--sync` (the store syncs before a layer gets its name). Prints the
//! diff id and the entry count.

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;

use berth_image::unpack::{unpack_layer, UnpackOptions};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sync = args.iter().any(|a| a == "--sync");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [layer, dir] = pos[..] else {
        eprintln!("usage: unpack-bench LAYER DIR [--sync]");
        return ExitCode::from(2);
    };
    let run = || -> Result<(), Box<dyn std::error::Error>> {
        // The store hands unpack_layer a plain File (open_blob); keep the same here.
        let f = File::open(layer)?;
        let u = unpack_layer(f, Path::new(dir), layer, &UnpackOptions::default())?;
        if sync {
            let d = File::open(dir)?;
            nix::unistd::syncfs(&d)?;
        }
        println!("{} {:?} {} entries", u.diff_id, u.compression, u.entries);
        Ok(())
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unpack-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
