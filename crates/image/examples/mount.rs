//! Manual check helper: mount an image of a store on a directory.
//! `cargo run -p berth-image --example mount -- ROOT IMAGE BASE` makes BASE/{upper,work,merged}
//! and mounts the image on BASE/merged (unmount with `umount BASE/merged`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [root, image, base] = args.as_slice() else {
        return Err("usage: mount ROOT IMAGE BASE".into());
    };
    let base = PathBuf::from(base);
    let dirs: Vec<_> = ["upper", "work", "merged"]
        .iter()
        .map(|d| base.join(d))
        .collect();
    for d in &dirs {
        std::fs::create_dir_all(d)?;
    }
    let store = berth_image::ImageStore::open(root)?;
    store.mount(image, &dirs[0], &dirs[1], &dirs[2])?;
    println!("{}", dirs[2].display());
    Ok(())
}
