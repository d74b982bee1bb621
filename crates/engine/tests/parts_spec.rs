//! build_spec's options taking effect in real containers, under berth-runtime and runc.

mod parts_common;

use berth_engine::oneshot::{container_id, run_spec};
use berth_engine::spec::{build_spec, MountKind, MountSpec, NetworkNamespace, SpecInput};
use berth_engine::user::resolve_user;
use parts_common::*;
use std::fs::File;
use std::path::Path;
use std::process::Stdio;

fn input(rootfs: &Path, script: &str, id: &str) -> SpecInput {
    SpecInput {
        rootfs: rootfs.to_path_buf(),
        args: vec!["sh".into(), "-c".into(), script.into()],
        env: vec![],
        cwd: String::new(),
        user: resolve_user(rootfs, "").unwrap(),
        hostname: "spec-test".into(),
        terminal: false,
        console_size: None,
        read_only_rootfs: false,
        mounts: vec![],
        memory: None,
        cpus: None,
        pids_limit: None,
        cap_add: vec![],
        cap_drop: vec![],
        security_opt: vec![],
        network: NetworkNamespace::New,
        cgroups_path: format!("/berth/{id}"),
        init: None,
        annotations: vec![],
    }
}

/// Runs the spec; (exit status, stdout, stderr). Checks nothing is left behind.
fn run(runtime: &Path, id: &str, spec: &oci_spec::runtime::Spec) -> (i32, String, String) {
    let dir = tempdir("spec");
    let scratch = dir.path().join("scratch");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let code = run_spec(
        runtime,
        &scratch,
        id,
        spec,
        Stdio::from(File::create(&out).unwrap()),
        Stdio::from(File::create(&err).unwrap()),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", runtime.display()));
    assert!(cgroups_named(id).is_empty(), "cgroups of {id} left");
    assert_eq!(std::fs::read_dir(scratch.join("state")).unwrap().count(), 0);
    (
        code,
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(err).unwrap(),
    )
}

#[test]
fn resources_mounts_and_security_options_take_effect() {
    if !is_root("resources_mounts_and_security_options_take_effect") {
        return;
    }
    let dir = tempdir("rootfs");
    let rootfs = dir.path().join("rootfs");
    make_rootfs(&rootfs);
    let volume = dir.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    std::fs::write(volume.join("data"), "from the host\n").unwrap();
    let script = "\
        cat /vol/data; \
        touch /vol/new 2>/dev/null && echo vol-writable || echo vol-ro; \
        touch /newfile 2>/dev/null && echo root-writable || echo root-ro; \
        echo x > /scratch/f && echo tmpfs-ok; \
        df -k /scratch | tail -n 1 | awk '{print \"tmpfs\", $2}'; \
        cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
        cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us; \
        cat /sys/fs/cgroup/pids/pids.max; \
        grep -E '^(CapBnd|NoNewPrivs|Seccomp):' /proc/self/status";
    for rt in runtimes() {
        let id = container_id();
        let mut i = input(&rootfs, script, &id);
        i.read_only_rootfs = true;
        i.mounts = vec![
            MountSpec {
                source: "".into(),
                destination: "/scratch".into(),
                kind: MountKind::Tmpfs {
                    options: vec!["size=1m".into()],
                },
            },
            MountSpec {
                source: volume.clone(),
                destination: "/vol".into(),
                kind: MountKind::Bind { read_only: true },
            },
        ];
        i.memory = Some(64 << 20);
        i.cpus = Some(0.5);
        i.pids_limit = Some(50);
        i.cap_add = vec!["NET_ADMIN".into()];
        i.cap_drop = vec!["ALL".into()];
        i.security_opt = vec!["no-new-privileges".into(), "seccomp=unconfined".into()];
        let spec = build_spec(&i).unwrap();
        let (code, out, err) = run(&rt, &id, &spec);
        assert_eq!(code, 0, "{}: {err}", rt.display());
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "from the host",
                "vol-ro",
                "root-ro",
                "tmpfs-ok",
                "tmpfs 1024",
                "67108864",
                "50000",
                "100000",
                "50",
                // CAP_NET_ADMIN is bit 12.
                "CapBnd:\t0000000000001000",
                "NoNewPrivs:\t1",
                "Seccomp:\t0",
            ],
            "{}",
            rt.display()
        );
        assert!(!volume.join("new").exists());
    }
}

#[test]
fn the_default_seccomp_profile_follows_capabilities() {
    if !is_root("the_default_seccomp_profile_follows_capabilities") {
        return;
    }
    let dir = tempdir("rootfs");
    let rootfs = dir.path().join("rootfs");
    make_rootfs(&rootfs);
    // With CAP_SYS_ADMIN the profile lets mount and unshare through (as docker's does).
    let script = "unshare -m true && echo unshare-ok; mkdir /tmp/m; mount -t tmpfs t /tmp/m && echo mount-ok; \
                  hostname other && echo hostname-ok";
    for rt in runtimes() {
        let id = container_id();
        let mut i = input(&rootfs, script, &id);
        i.cap_add = vec!["SYS_ADMIN".into()];
        let (code, out, err) = run(&rt, &id, &build_spec(&i).unwrap());
        assert_eq!(code, 0, "{}: {err}", rt.display());
        assert_eq!(
            out,
            "unshare-ok\nmount-ok\nhostname-ok\n",
            "{}",
            rt.display()
        );

        let id = container_id();
        let i = input(&rootfs, script, &id);
        let (_, out, _) = run(&rt, &id, &build_spec(&i).unwrap());
        assert_eq!(out, "", "{}", rt.display());

        // A user namespace needs no capability: only the profile keeps it from a default
        // container.
        let userns = "unshare -U true && echo userns-ok";
        let id = container_id();
        let (_, out, _) = run(&rt, &id, &build_spec(&input(&rootfs, userns, &id)).unwrap());
        assert_eq!(out, "", "{}", rt.display());
        let id = container_id();
        let mut i = input(&rootfs, userns, &id);
        i.security_opt = vec!["seccomp=unconfined".into()];
        let (_, out, err) = run(&rt, &id, &build_spec(&i).unwrap());
        assert_eq!(out, "userns-ok\n", "{}: {err}", rt.display());
    }
}

#[test]
fn a_seccomp_profile_file_in_dockers_format_is_applied() {
    if !is_root("a_seccomp_profile_file_in_dockers_format_is_applied") {
        return;
    }
    let dir = tempdir("rootfs");
    let rootfs = dir.path().join("rootfs");
    make_rootfs(&rootfs);
    let profile = dir.path().join("profile.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
            "syscalls": [
              {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
              {"names": ["chmod", "fchmodat"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
            ]}"#,
    )
    .unwrap();
    let script =
        "mkdir /tmp/d 2>&1 || echo mkdir-denied; touch /tmp/f; chmod 600 /tmp/f && echo chmod-ok";
    for rt in runtimes() {
        let id = container_id();
        let mut i = input(&rootfs, script, &id);
        i.security_opt = vec![format!("seccomp={}", profile.display())];
        let (code, out, err) = run(&rt, &id, &build_spec(&i).unwrap());
        assert_eq!(code, 0, "{}: {err}", rt.display());
        assert_eq!(
            out,
            "mkdir: can't create directory '/tmp/d': Permission denied\nmkdir-denied\nchmod-ok\n",
            "{}",
            rt.display()
        );
    }
}
