//! Overlay stacks: 500 layers mount and all show; 501 is a clear error; an upper dir
//! diffs back into a layer that reproduces the same merged tree.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_image::snapshot::{diff_upper, mount_overlay, OverlaySpec, MAX_LAYERS};
use berth_image::unpack::{unpack_layer, UnpackOptions};
use berth_image::{Error, ImageStore};
use common::*;

fn many_layers(n: usize) -> TestImage {
    let tars = (1..=n)
        .map(|i| {
            tar_of(&[
                dir("layers"),
                file(&format!("layers/{i:03}"), &i.to_string()),
                file("top", &i.to_string()),
            ])
        })
        .collect();
    image_plain(tars)
}

#[test]
fn five_hundred_layers_mount_and_501_fail_clearly() {
    need_root!();
    let tmp = tempdir();
    let mut s = ImageStore::open(tmp.path().join("r")).expect("open");
    let img = many_layers(MAX_LAYERS + 1);
    let ar = oci_archive(&[(&img, "big:501")]);
    s.load_archive(&mut &ar[..], "big501.tar")
        .expect("store 501 layers");
    // A 500-layer image: the same first 500 layers (shared by chain id).
    let img500 = image_plain(
        img.layers[..MAX_LAYERS]
            .iter()
            .map(|(b, _)| b.clone())
            .collect(),
    );
    s.load_archive(&mut &oci_archive(&[(&img500, "big:500")])[..], "big500.tar")
        .expect("store 500 layers");
    assert_eq!(
        fs::read_dir(s.root().join("layers"))
            .expect("layers")
            .count(),
        MAX_LAYERS + 1
    );

    let dirs: Vec<_> = ["u", "w", "m"].iter().map(|d| tmp.path().join(d)).collect();
    for d in &dirs {
        fs::create_dir_all(d).expect("mkdir");
    }
    s.mount("big:500", &dirs[0], &dirs[1], &dirs[2])
        .expect("mount 500 layers");
    let m = Mounted(dirs[2].clone());
    let shown = fs::read_dir(m.0.join("layers")).expect("merged").count();
    assert_eq!(shown, MAX_LAYERS, "every layer shows in the merged view");
    for i in [1, 2, 250, 499, 500] {
        assert_eq!(
            fs::read_to_string(m.0.join(format!("layers/{i:03}"))).expect("read"),
            i.to_string()
        );
    }
    assert_eq!(
        fs::read_to_string(m.0.join("top")).expect("top"),
        "500",
        "the top layer wins"
    );
    drop(m);

    let err = s
        .mount("big:501", &dirs[0], &dirs[1], &dirs[2])
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooManyLayers {
                count: 501,
                max: 500
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("501") && err.to_string().contains("500"),
        "{err}"
    );
    // Nothing got mounted.
    assert_eq!(fs::read_dir(&dirs[2]).expect("m").count(), 0);
}

#[test]
fn read_only_stacks() {
    need_root!();
    let tmp = tempdir();
    let mk = |name: &str, entries: &[Entry]| {
        let d = tmp.path().join(name);
        fs::create_dir_all(&d).expect("mkdir");
        unpack_layer(&tar_of(entries)[..], &d, name, &UnpackOptions::default()).expect("unpack");
        d
    };
    let l1 = mk("l1", &[file("a", "1"), file("b", "1")]);
    let l2 = mk("l2", &[file("a", "2"), file(".wh.b", "")]);
    let target = tmp.path().join("m");
    fs::create_dir_all(&target).expect("mkdir");
    for lowers in [vec![l1.clone()], vec![l1.clone(), l2.clone()]] {
        let n = lowers.len();
        mount_overlay(
            &OverlaySpec {
                lowers,
                upper: None,
            },
            &target,
        )
        .expect("ro mount");
        let m = Mounted(target.clone());
        assert_eq!(fs::read_to_string(m.0.join("a")).expect("a"), n.to_string());
        assert_eq!(m.0.join("b").exists(), n == 1);
        assert!(fs::write(m.0.join("c"), "x").is_err(), "read-only");
    }
}

fn write_changes(m: &Path) {
    let f = m.join("fixture");
    fs::write(f.join("new.txt"), "new").expect("new");
    fs::write(f.join("modified.txt"), "v3").expect("modify");
    fs::remove_file(f.join("target.txt")).expect("rm");
    fs::remove_dir_all(f.join("dirtofile")).ok();
    fs::remove_file(f.join("dirtofile")).ok();
    fs::remove_dir_all(f.join("olddir")).expect("rm -r");
    fs::create_dir(f.join("olddir")).expect("mkdir again");
    fs::write(f.join("olddir/again.txt"), "again").expect("write");
    fs::hard_link(f.join("new.txt"), f.join("new-link.txt")).expect("link");
    std::os::unix::fs::symlink("new.txt", f.join("new-symlink")).expect("symlink");
    fs::set_permissions(f.join("exec"), fs::Permissions::from_mode(0o4711)).ok();
    fs::write(f.join("suid"), "s").expect("suid");
    fs::set_permissions(f.join("suid"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    xattr::set(f.join("new.txt"), "user.diff", b"yes").expect("xattr");
    std::os::unix::fs::chown(f.join("new.txt"), Some(1234), Some(5678)).expect("chown");
}

#[test]
fn upper_dir_diffs_back_into_an_equivalent_layer() {
    need_root!();
    let tmp = tempdir();
    let layers: Vec<Vec<u8>> = overlay_fixture().iter().map(|l| tar_of(l)).collect();
    let mut s = ImageStore::open(tmp.path().join("r")).expect("open");
    s.load_archive(
        &mut &oci_archive(&[(&image_plain(layers), "fx:1")])[..],
        "fx.tar",
    )
    .expect("load");
    let dirs: Vec<_> = ["u", "w", "m"].iter().map(|d| tmp.path().join(d)).collect();
    for d in &dirs {
        fs::create_dir_all(d).expect("mkdir");
    }
    s.mount("fx:1", &dirs[0], &dirs[1], &dirs[2])
        .expect("mount");
    let m = Mounted(dirs[2].clone());
    write_changes(&m.0);
    let before = listing(&m.0);
    drop(m);

    let mut tar_bytes = Vec::new();
    let (diff_id, size) = diff_upper(&dirs[0], &mut tar_bytes).expect("diff");
    assert_eq!(size as usize, tar_bytes.len());
    assert_eq!(diff_id, berth_image::Digest::of(&tar_bytes));
    // Same tree → same bytes.
    let mut again = Vec::new();
    diff_upper(&dirs[0], &mut again).expect("diff again");
    assert_eq!(again, tar_bytes, "diff is deterministic");

    let names: Vec<String> = tar::Archive::new(&tar_bytes[..])
        .entries()
        .expect("entries")
        .map(|e| {
            e.expect("entry")
                .path()
                .expect("path")
                .display()
                .to_string()
        })
        .collect();
    for want in [
        "fixture/.wh.target.txt",
        "fixture/olddir/.wh..wh..opq",
        "fixture/new.txt",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    // The new layer on top of the old ones gives the same merged tree.
    let newl = tmp.path().join("newlayer");
    fs::create_dir_all(&newl).expect("mkdir");
    let u = unpack_layer(&tar_bytes[..], &newl, "diff", &UnpackOptions::default())
        .expect("unpack diff");
    assert_eq!(u.diff_id, diff_id);
    let mut lowers = s.layer_dirs("fx:1").expect("dirs");
    lowers.push(newl);
    let target = tmp.path().join("m2");
    fs::create_dir_all(&target).expect("mkdir");
    mount_overlay(
        &OverlaySpec {
            lowers,
            upper: None,
        },
        &target,
    )
    .expect("mount with diff");
    let m2 = Mounted(target);
    assert_trees_eq(&listing(&m2.0), &before);
}

fn overlay_fixture() -> Vec<Vec<Entry>> {
    vec![
        vec![
            dir("fixture"),
            file("fixture/modified.txt", "v1"),
            file("fixture/target.txt", "t"),
            dir("fixture/olddir"),
            file("fixture/olddir/a.txt", "a"),
            dir("fixture/olddir/sub"),
            file("fixture/olddir/sub/b.txt", "b"),
            dir("fixture/dirtofile"),
            file("fixture/dirtofile/x", "x"),
            file("fixture/exec", "x").mode(0o755),
        ],
        vec![
            dir("fixture"),
            file("fixture/l2.txt", "2"),
            file("fixture/.wh.exec", ""),
        ],
    ]
}
