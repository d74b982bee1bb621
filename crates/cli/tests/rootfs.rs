//! The container's root file system: pivot/chroot, read-only root, propagation, mounts,
//! masked and read-only paths, devices.

mod common;

use common::*;
use nix::mount::{mount, MsFlags};
use serde_json::json;
use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

/// mountpoint -> (fstype, per-mount options, optional fields, super options) of the last
/// mount at each point in a mountinfo text.
fn parse_mountinfo(text: &str) -> HashMap<String, (String, String, String, String)> {
    let mut m = HashMap::new();
    for l in text.lines() {
        let Some((left, right)) = l.split_once(" - ") else {
            continue;
        };
        let lf: Vec<&str> = left.split(' ').collect();
        let rf: Vec<&str> = right.split(' ').collect();
        if lf.len() < 6 || rf.len() < 3 {
            continue;
        }
        m.insert(
            lf[4].to_string(),
            (
                rf[0].to_string(),
                lf[5].to_string(),
                lf[6..].join(" "),
                rf[2].to_string(),
            ),
        );
    }
    m
}

fn has_opt(opts: &str, o: &str) -> bool {
    opts.split(',').any(|x| x == o)
}

#[test]
fn pivot_root_enters_the_bundle_rootfs() {
    let env = Env::new("pivot");
    let b = env.sh_bundle("cat /marker; awk '$5==\"/\" {print $4}' /proc/self/mountinfo; ls /");
    fs::write(b.rootfs().join("marker"), "in-rootfs\n").unwrap();
    for extra in [None, Some("--no-pivot")] {
        let id = env.id("piv");
        let mut args = vec!["run", id.as_str(), "--bundle", b.path()];
        if let Some(e) = extra {
            args.push(e);
        }
        let out = env.rt(&args);
        out.assert_ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], "in-rootfs", "{out}");
        assert!(
            lines[1].ends_with(&format!(
                "{}/rootfs",
                b.dir.file_name().unwrap().to_str().unwrap()
            )),
            "root mount is not the bundle's rootfs ({extra:?}): {out}"
        );
        // Nothing of the host's root is visible.
        assert!(!out.stdout.contains("\nwork\n"), "{out}");
    }
}

#[test]
fn readonly_root() {
    let env = Env::new("rootro");
    let script = "touch /newfile && echo WROTE; awk '$5==\"/\" {print $6}' /proc/self/mountinfo";
    let mut b = env.sh_bundle(script);
    b.edit(|c| c["root"]["readonly"] = json!(true));
    let out = env.run(&b);
    assert!(!out.stdout.contains("WROTE"), "{out}");
    assert!(out.stderr.contains("Read-only"), "{out}");
    assert!(has_opt(out.stdout.lines().last().unwrap(), "ro"), "{out}");
    b.edit(|c| c["root"]["readonly"] = json!(false));
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.contains("WROTE"), "{out}");
    assert!(b.rootfs().join("newfile").exists());
}

#[test]
fn rootfs_propagation() {
    let env = Env::new("rootprop");
    let script = "awk '$5==\"/\" {for (i=7; $i != \"-\"; i++) printf \"%s \", $i; print \"END\"}' /proc/self/mountinfo";
    for (prop, want_shared, want_master) in [
        ("shared", true, false),
        ("private", false, false),
        ("rprivate", false, false),
    ] {
        let mut b = env.sh_bundle(script);
        b.edit(|c| c["linux"]["rootfsPropagation"] = json!(prop));
        let out = env.run(&b);
        out.assert_ok();
        assert_eq!(out.stdout.contains("shared:"), want_shared, "{prop}: {out}");
        assert_eq!(out.stdout.contains("master:"), want_master, "{prop}: {out}");
    }
}

/// A shared bind mount of a fresh host directory (removed by the Env's cleanup).
fn shared_host_dir(env: &Env, name: &str) -> std::path::PathBuf {
    let dir = env.path(name);
    fs::create_dir_all(dir.join("sub")).unwrap();
    mount(
        Some(&dir),
        &dir,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    mount(
        None::<&str>,
        &dir,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .unwrap();
    dir
}

#[test]
fn mount_propagation_flags() {
    let env = Env::new("mprop");
    let src = shared_host_dir(&env, "prop-src");
    let s = src.to_str().unwrap();
    let mut b = env.sh_bundle(
        "for i in $(seq 100); do [ -e /mnt/slave/sub/flag ] && break; sleep 0.1; done; \
         ls /mnt/slave/sub > /tmp/slave; ls /mnt/private/sub > /tmp/private; \
         mkdir -p /mnt/shared/up && mount -t tmpfs none /mnt/shared/up && touch /mnt/shared/up/from-ctr; \
         mount -t tmpfs none /mnt/slave/sub2 2>/dev/null; echo done > /tmp/done; sleep 1000",
    );
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        // Mounts propagate back to the host only if the root allows it (as docker does).
        c["linux"]["rootfsPropagation"] = json!("rshared");
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
    });
    fs::create_dir_all(src.join("sub2")).unwrap();
    for (dest, prop) in [
        ("/mnt/slave", "rslave"),
        ("/mnt/private", "rprivate"),
        ("/mnt/shared", "rshared"),
    ] {
        b.add_mount(json!({"destination": dest, "type": "bind", "source": s,
                           "options": ["rbind", prop]}));
    }
    let id = env.id("mprop");
    env.create(&id, &b);
    env.rt(&["start", &id]).assert_ok();
    // A mount made on the host after the start reaches the slave, not the private mount.
    mount(
        Some("tmpfs"),
        &src.join("sub"),
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    fs::write(src.join("sub/flag"), "x").unwrap();
    let tmp = b.rootfs().join("tmp");
    let done = wait_for(Duration::from_secs(20), || {
        tmp.join("done").exists().then_some(())
    });
    assert!(done.is_some(), "container script did not finish");
    assert_eq!(
        fs::read_to_string(tmp.join("slave")).unwrap().trim(),
        "flag"
    );
    assert_eq!(fs::read_to_string(tmp.join("private")).unwrap().trim(), "");
    // A mount made in the container on an rshared mount reaches the host.
    assert!(
        src.join("up/from-ctr").exists(),
        "mount in the container did not propagate back through rshared"
    );
    // And one made on a slave mount does not.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let sub2 = src.join("sub2");
    assert!(
        !mounts.contains(&format!(" {} ", sub2.display())),
        "a mount on an rslave mount leaked to the host"
    );
}

#[test]
fn mount_types_from_the_default_spec_and_tmpfs() {
    let env = Env::new("mtypes");
    let mut b = env.sh_bundle("cat /proc/self/mountinfo");
    b.add_mount(
        json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "size=1m", "mode=750"]}),
    );
    let out = env.run(&b);
    out.assert_ok();
    let m = parse_mountinfo(&out.stdout);
    let get = |p: &str| {
        m.get(p)
            .cloned()
            .unwrap_or_else(|| panic!("no mount at {p}: {out}"))
    };
    assert_eq!(get("/proc").0, "proc");
    assert_eq!(get("/dev").0, "tmpfs");
    assert_eq!(get("/dev/pts").0, "devpts");
    assert_eq!(get("/dev/shm").0, "tmpfs");
    assert_eq!(get("/dev/mqueue").0, "mqueue");
    let sys = get("/sys");
    assert_eq!(sys.0, "sysfs");
    assert!(has_opt(&sys.1, "ro"), "/sys not ro: {sys:?}");
    let cg = get("/sys/fs/cgroup");
    assert!(cg.0 == "tmpfs" || cg.0 == "cgroup2", "{cg:?}");
    if cg.0 == "tmpfs" {
        let mem = get("/sys/fs/cgroup/memory");
        assert_eq!(mem.0, "cgroup");
        assert!(has_opt(&mem.1, "ro"), "cgroup hierarchy not ro: {mem:?}");
    }
    let scratch = get("/scratch");
    assert_eq!(scratch.0, "tmpfs");
    assert!(
        has_opt(&scratch.1, "nosuid") && has_opt(&scratch.1, "nodev"),
        "{scratch:?}"
    );
    assert!(has_opt(&scratch.3, "size=1024k"), "{scratch:?}");
    assert!(has_opt(&scratch.3, "mode=750"), "{scratch:?}");
}

#[test]
fn cgroup_mount_shows_the_container_cgroup() {
    let env = Env::new("cgmount");
    let out = env.run_sh(
        "cat /sys/fs/cgroup/pids/cgroup.procs 2>/dev/null || cat /sys/fs/cgroup/cgroup.procs",
    );
    out.assert_ok();
    let pids: Vec<&str> = out.stdout.lines().collect();
    assert!(pids.contains(&"1"), "{out}");
    assert!(
        pids.len() <= 3,
        "the cgroup mount shows more than the container: {out}"
    );
}

#[test]
fn bind_mounts_ro_and_rbind() {
    let env = Env::new("binds");
    let data = env.path("data");
    fs::create_dir_all(data.join("sub")).unwrap();
    fs::write(data.join("file"), "hello\n").unwrap();
    // A submount that only rbind carries along.
    mount(
        Some("tmpfs"),
        &data.join("sub"),
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    fs::write(data.join("sub/inner"), "inner\n").unwrap();
    let single = env.path("single.txt");
    fs::write(&single, "single\n").unwrap();
    let d = data.to_str().unwrap();
    let mut b = env.sh_bundle(
        "cat /ro/file; touch /ro/new 2>/dev/null && echo RO-WRITABLE; \
         cat /rw/file; touch /rw/new && echo RW-OK; \
         cat /rb/sub/inner; ls /b/sub | wc -l; cat /etc/single.txt",
    );
    b.add_mount(
        json!({"destination": "/ro", "type": "bind", "source": d, "options": ["bind", "ro"]}),
    );
    b.add_mount(json!({"destination": "/rw", "type": "bind", "source": d, "options": ["bind"]}));
    b.add_mount(
        json!({"destination": "/rb", "type": "bind", "source": d, "options": ["rbind", "ro"]}),
    );
    b.add_mount(json!({"destination": "/b", "type": "bind", "source": d, "options": ["bind"]}));
    b.add_mount(json!({"destination": "/etc/single.txt", "type": "bind",
                       "source": single.to_str().unwrap(), "options": ["bind", "ro"]}));
    let out = env.run(&b);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines,
        ["hello", "hello", "RW-OK", "inner", "0", "single"],
        "{out}"
    );
    assert!(
        data.join("new").exists(),
        "rw bind write did not reach the host"
    );
}

#[test]
fn masked_paths() {
    let env = Env::new("masked");
    let mut b = env.sh_bundle(
        "echo TIMER $(wc -c < /proc/timer_list); echo FW $(ls -A /sys/firmware | wc -l); \
         echo SECRET $(cat /etc/secret | wc -c); echo DIR $(ls -A /secretdir | wc -l); \
         echo KEYS $(wc -c < /proc/keys)",
    );
    fs::write(b.rootfs().join("etc/secret"), "top secret\n").unwrap();
    fs::create_dir_all(b.rootfs().join("secretdir")).unwrap();
    fs::write(b.rootfs().join("secretdir/f"), "x").unwrap();
    b.edit(|c| {
        let m = c["linux"]["maskedPaths"].as_array_mut().unwrap();
        m.push(json!("/etc/secret"));
        m.push(json!("/secretdir"));
        m.push(json!("/does/not/exist"));
    });
    let out = env.run(&b);
    out.assert_ok();
    for want in ["TIMER 0", "FW 0", "SECRET 0", "DIR 0", "KEYS 0"] {
        assert!(out.stdout.contains(want), "{want}: {out}");
    }
    // The rootfs itself is untouched.
    assert_eq!(
        fs::read_to_string(b.rootfs().join("etc/secret")).unwrap(),
        "top secret\n"
    );
}

#[test]
fn readonly_paths() {
    let env = Env::new("ropaths");
    let mut b = env.sh_bundle(
        "echo 1 > /proc/sys/kernel/ns_last_pid || echo PROCSYS-RO; \
         touch /rodir/x || echo RODIR-RO; touch /tmp/x && echo TMP-RW; cat /rodir/f",
    );
    fs::create_dir_all(b.rootfs().join("rodir")).unwrap();
    fs::write(b.rootfs().join("rodir/f"), "readable\n").unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["readonlyPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/rodir"));
    });
    let out = env.run(&b);
    out.assert_ok();
    for want in ["PROCSYS-RO", "RODIR-RO", "TMP-RW", "readable"] {
        assert!(out.stdout.contains(want), "{want}: {out}");
    }
    assert!(out.stderr.contains("Read-only"), "{out}");
}

#[test]
fn default_devices_and_dev_symlinks() {
    let env = Env::new("devices");
    let out = env.run_sh(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do echo LINK $l $(readlink /dev/$l); done; \
         echo x > /dev/null && echo NULL-OK; echo ZERO $(head -c 5 /dev/zero | wc -c); \
         echo RAND $(head -c 8 /dev/urandom | wc -c); echo x > /dev/full || echo FULL-ENOSPC",
    );
    out.assert_ok();
    for (d, dev) in [
        ("null", "1:3"),
        ("zero", "1:5"),
        ("full", "1:7"),
        ("random", "1:8"),
        ("urandom", "1:9"),
        ("tty", "5:0"),
    ] {
        let want = format!("/dev/{d} character special file {dev} 666");
        assert!(out.stdout.contains(&want), "{want}: {out}");
    }
    for (l, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let want = format!("LINK {l} {target}\n");
        assert!(out.stdout.contains(&want), "{want}: {out}");
    }
    for want in ["NULL-OK", "ZERO 5", "RAND 8", "FULL-ENOSPC"] {
        assert!(out.stdout.contains(want), "{want}: {out}");
    }
}

#[test]
fn linux_devices_are_created() {
    let env = Env::new("lindev");
    let mut b = env.sh_bundle(
        "stat -c '%F %t:%T %a %u %g' /dev/mynull; echo x > /dev/mynull && echo WRITE-OK",
    );
    b.edit(|c| {
        c["linux"]["devices"] = json!([{
            "path": "/dev/mynull", "type": "c", "major": 1, "minor": 3,
            "fileMode": 0o640, "uid": 1000, "gid": 1001
        }]);
        // The owner may write it (root without CAP_DAC_OVERRIDE may not).
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001});
    });
    let out = env.run(&b);
    out.assert_ok();
    assert_eq!(
        out.stdout, "character special file 1:3 640 1000 1001\nWRITE-OK\n",
        "{out}"
    );
    assert!(
        !Path::new(&b.rootfs().join("dev/mynull")).exists(),
        "device node made on the host rootfs"
    );
}

/// podman --read-only mounts tmpfs with `tmpcopyup` on /tmp, /var/tmp and /run: the new
/// tmpfs starts with the image's files there.
#[test]
fn tmpcopyup_copies_the_image_directory() {
    let env = Env::new("copyup");
    let mut b = env.sh_bundle(
        "cat /run/berth/hello; stat -c '%a %u' /run/berth; grep -c '^tmpfs /run tmpfs' /proc/mounts",
    );
    let run = b.rootfs().join("run/berth");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("hello"), "from-image\n").unwrap();
    std::os::unix::fs::chown(&run, Some(1234), Some(1234)).unwrap();
    // 0751: the default capabilities hold no CAP_DAC_OVERRIDE, so root needs the x bit.
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o751)).unwrap();
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/run", "type": "tmpfs", "source": "tmpfs",
            "options": ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"]
        }))
    });
    let out = env.run(&b);
    out.assert_ok();
    assert!(out.stdout.contains("from-image"), "{out}");
    assert!(out.stdout.contains("751 1234"), "{out}");
    assert!(
        out.stdout.lines().last() == Some("1"),
        "/run is not a tmpfs: {out}"
    );
}
