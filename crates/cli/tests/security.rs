//! Capabilities (all five sets, for run and exec) and one test per CVE class the runtime
//! must mitigate. Each CVE test says how it would catch a runtime without the mitigation.

mod common;

use common::*;
use serde_json::{json, Value};
use std::fs;
use std::path::Path;
use std::time::Duration;

fn caps_of(text: &str) -> [u64; 5] {
    let get = |k: &str| {
        let v = status_field(text, k).unwrap_or_else(|| panic!("no {k} in {text:?}"));
        u64::from_str_radix(&v, 16).unwrap()
    };
    [
        get("CapInh"),
        get("CapPrm"),
        get("CapEff"),
        get("CapBnd"),
        get("CapAmb"),
    ]
}

/// A detached container running `sleep 1000`: (id, init pid).
fn sleeper(env: &Env, b: &Bundle) -> (String, i32) {
    let id = env.id("sec");
    env.rt(&["run", "-d", "--bundle", b.path(), &id])
        .assert_ok();
    let st = env.state(&id);
    assert_eq!(st["status"], "running", "{st}");
    (id, st["pid"].as_i64().unwrap() as i32)
}

fn write_process_json(env: &Env, name: &str, p: Value) -> String {
    let path = env.path(name);
    fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------

#[test]
fn exec_applies_all_five_capability_sets() {
    let env = Env::new("capexec");
    let b = env.bundle(&["sleep", "1000"]);
    let (id, _) = sleeper(&env, &b);
    let bounding = [
        "CAP_CHOWN",
        "CAP_KILL",
        "CAP_NET_RAW",
        "CAP_SYS_CHROOT",
        "CAP_SETUID",
    ];
    let permitted = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"];
    let inheritable = ["CAP_KILL", "CAP_NET_RAW"];
    // CAP_SYS_CHROOT is permitted but not inheritable: it must not become ambient.
    let ambient = ["CAP_KILL", "CAP_SYS_CHROOT"];
    let p = write_process_json(
        &env,
        "caps.json",
        json!({
            "user": {"uid": 1000, "gid": 1000},
            "args": ["grep", "Cap", "/proc/self/status"],
            "env": ["PATH=/bin:/usr/bin", format!("{TAG_VAR}={}", env.tag)],
            "cwd": "/",
            "capabilities": {
                "bounding": bounding, "effective": permitted, "permitted": permitted,
                "inheritable": inheritable, "ambient": ambient
            }
        }),
    );
    let out = env.rt(&["exec", "--process", &p, &id]);
    out.assert_ok();
    let [inh, prm, eff, bnd, amb] = caps_of(&out.stdout);
    assert_eq!(bnd, cap_mask(&bounding), "CapBnd {bnd:x}: {out}");
    assert_eq!(inh, cap_mask(&inheritable), "CapInh {inh:x}: {out}");
    assert_eq!(amb, cap_mask(&["CAP_KILL"]), "CapAmb {amb:x}: {out}");
    // A non-root user after execve: permitted = effective = ambient.
    assert_eq!(prm, cap_mask(&["CAP_KILL"]), "CapPrm {prm:x}: {out}");
    assert_eq!(eff, cap_mask(&["CAP_KILL"]), "CapEff {eff:x}: {out}");

    // Root: the bounding set is the permitted/effective one, inheritable as configured.
    let p = write_process_json(
        &env,
        "caps-root.json",
        json!({
            "user": {"uid": 0, "gid": 0},
            "args": ["grep", "Cap", "/proc/self/status"],
            "env": ["PATH=/bin:/usr/bin", format!("{TAG_VAR}={}", env.tag)],
            "cwd": "/",
            "capabilities": {
                "bounding": bounding, "effective": bounding, "permitted": bounding,
                "inheritable": inheritable
            }
        }),
    );
    let out = env.rt(&["exec", "--process", &p, &id]);
    out.assert_ok();
    let [inh, prm, eff, bnd, amb] = caps_of(&out.stdout);
    assert_eq!(bnd, cap_mask(&bounding), "{out}");
    assert_eq!(prm, cap_mask(&bounding), "{out}");
    assert_eq!(eff, cap_mask(&bounding), "{out}");
    assert_eq!(inh, cap_mask(&inheritable), "{out}");
    assert_eq!(amb, 0, "{out}");
}

#[test]
fn ambient_needs_inheritable_and_permitted_in_run() {
    let env = Env::new("capamb");
    let mut b = env.sh_bundle("grep Cap /proc/self/status");
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"],
            "effective": ["CAP_KILL", "CAP_CHOWN"],
            "permitted": ["CAP_KILL", "CAP_CHOWN"],
            "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
            // NET_RAW: inheritable, not permitted; CHOWN: permitted, not inheritable.
            "ambient": ["CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"]
        });
    });
    let out = env.run(&b);
    out.assert_ok();
    let [_, prm, eff, _, amb] = caps_of(&out.stdout);
    assert_eq!(amb, cap_mask(&["CAP_KILL"]), "CapAmb {amb:x}: {out}");
    assert_eq!(prm, cap_mask(&["CAP_KILL"]), "{out}");
    assert_eq!(eff, cap_mask(&["CAP_KILL"]), "{out}");
}

#[test]
fn unknown_capability_in_config_is_an_error() {
    let env = Env::new("capbad");
    for set in ["bounding", "effective", "inheritable", "ambient"] {
        let mut b = env.bundle(&["true"]);
        b.edit(|c| c["process"]["capabilities"][set] = json!(["CAP_KILL", "CAP_NOT_A_CAP"]));
        let id = env.id("capbad");
        env.rt(&["create", &id, "--bundle", b.path()])
            .assert_clear_error(&["CAP_NOT_A_CAP"]);
        env.assert_nothing_left(&id, &b);
    }
}

/// CVE-2022-29162 (class 4f): runc < 1.1.2 gave the container process a full inheritable
/// set; a non-root process exec'ing a file with inheritable file capabilities then gained
/// them. With `spec`'s default config (no inheritable list) CapInh must be 0 — for run, for
/// exec, and for exec with --cap (which adds to bounding/effective/permitted only). A
/// vulnerable runtime shows a non-zero CapInh here.
#[test]
fn cve_2022_29162_inheritable_is_empty_by_default() {
    let env = Env::new("cve29162");
    let out = env.run_sh("grep Cap /proc/self/status");
    out.assert_ok();
    let [inh, _, _, _, amb] = caps_of(&out.stdout);
    assert_eq!(inh, 0, "run: CapInh {inh:x}: {out}");
    assert_eq!(amb, 0, "run: CapAmb {amb:x}: {out}");

    let b = env.bundle(&["sleep", "1000"]);
    let (id, _) = sleeper(&env, &b);
    for extra in [&[][..], &["--cap", "CAP_NET_ADMIN"][..]] {
        for user in ["0:0", "1000:1000"] {
            let mut args = vec!["exec", "--user", user];
            args.extend_from_slice(extra);
            args.extend_from_slice(&[&id, "grep", "Cap", "/proc/self/status"]);
            let out = env.rt(&args);
            out.assert_ok();
            let [inh, prm, _, bnd, amb] = caps_of(&out.stdout);
            assert_eq!(inh, 0, "exec {args:?}: CapInh {inh:x}: {out}");
            assert_eq!(amb, 0, "exec {args:?}: CapAmb {amb:x}: {out}");
            if user == "1000:1000" {
                assert_eq!(prm, 0, "non-root exec keeps caps: {out}");
            }
            if !extra.is_empty() {
                assert_ne!(bnd & cap_mask(&["CAP_NET_ADMIN"]), 0, "{out}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// CVE-2019-5736: /proc/<pid>/exe of a process that is still the runtime
// ---------------------------------------------------------------------------------------

/// While a container is `created` its init is still a copy of berth-runtime. A process
/// exec'd into it must not be able to open /proc/1/exe (the runtime binary: the original
/// attack reopened it for writing once the runtime exited) or /proc/1/fd/*. A runtime that
/// leaves its init dumpable fails this: root in the container (same uid, no
/// CAP_SYS_PTRACE needed for a dumpable task) can open both. The same holds for the
/// short-lived exec children that are still the runtime: a scanner inside the container
/// looks at every /proc/<pid>/exe while the host starts many execs, and must never see the
/// runtime binary.
#[test]
fn cve_2019_5736_runtime_exe_is_not_reachable_from_the_container() {
    let env = Env::new("cve5736");
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("created");
    let init = env.create(&id, &b);
    assert!(
        fs::read_link(format!("/proc/{init}/exe"))
            .unwrap()
            .to_string_lossy()
            .contains("berth-runtime"),
        "the created init is expected to still be the runtime"
    );
    let out = env.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/1/cmdline >/dev/null && echo pid1-visible; \
         cat /proc/1/exe >/dev/null 2>&1; echo exe=$?; \
         readlink /proc/1/exe >/dev/null 2>&1; echo link=$?; \
         n=0; for f in /proc/1/fd/*; do n=$((n+1)); \
           cat $f </dev/null >/dev/null 2>&1 && echo OPENED $f; \
           readlink $f >/dev/null 2>&1 && echo LINK $f; done; echo fds=$n; \
         cat /proc/1/exe 2>&1 >/dev/null | head -n1",
    ]);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "pid1-visible", "{out}");
    assert_eq!(
        lines[1], "exe=1",
        "/proc/1/exe (the runtime) could be opened: {out}"
    );
    assert_eq!(lines[2], "link=1", "/proc/1/exe could be read: {out}");
    // Listing /proc/1/fd is allowed (root owns it), opening or reading its links is not.
    assert!(lines[3].starts_with("fds=") && lines[3] != "fds=0", "{out}");
    assert!(
        !out.stdout.contains("OPENED"),
        "an fd of the init could be opened: {out}"
    );
    assert!(
        !out.stdout.contains("LINK"),
        "an fd link of the init could be read: {out}"
    );
    assert!(
        out.stdout.contains("Permission denied") || out.stdout.contains("not permitted"),
        "expected EACCES/EPERM: {out}"
    );
    // The exe opened for writing neither.
    let out = env.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo x >>/proc/1/exe && echo WROTE; true",
    ]);
    out.assert_ok();
    assert!(!out.stdout.contains("WROTE"), "{out}");
    assert_eq!(env.status(&id), "created");

    // Scanner: while it runs, the host starts execs; none of their pre-execve children
    // (copies of the runtime) may show their exe.
    let scanner = std::thread::spawn({
        let root = env.root.clone();
        let base = env.base.clone();
        let tag = env.tag.clone();
        let id = id.clone();
        move || {
            run_bin(
                &[
                    "--root",
                    root.to_str().unwrap(),
                    "exec",
                    &id,
                    "sh",
                    "-c",
                    "end=$(( $(date +%s) + 4 )); n=0; \
                     while [ $(date +%s) -lt $end ]; do n=$((n+1)); \
                     for p in /proc/[0-9]*; do \
                       l=$(readlink $p/exe 2>/dev/null) || continue; \
                       case $l in *berth*) echo HIT $p $l;; esac; \
                     done; done; echo scans=$n",
                ],
                &base,
                &tag,
                Opts::default(),
            )
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..30 {
        env.rt(&["exec", &id, "true"]).assert_ok();
    }
    let out = scanner.join().unwrap();
    out.assert_ok();
    assert!(!out.stdout.contains("HIT"), "runtime exe visible: {out}");
    assert!(out.stdout.contains("scans="), "{out}");
    eprintln!("scanner: {}", out.stdout.trim());
}

// ---------------------------------------------------------------------------------------
// CVE-2024-21626: leaked descriptors and a cwd outside the container
// ---------------------------------------------------------------------------------------

/// runc 1.1.11 leaked a descriptor of the host's /sys/fs/cgroup into the container; with
/// process.cwd = /proc/self/fd/7 the process started with a host directory as its cwd. Two
/// checks: (1) only 0, 1, 2 (+ --preserve-fds) are open in the new process, for run and
/// exec; a leaking runtime shows more entries; (2) a cwd of /proc/self/fd/N either fails
/// or is a directory inside the container: its device:inode equals that of the path
/// readlink reports, resolved inside the container. A host directory as cwd shows a path
/// that inside the container is something else (or nothing).
#[test]
fn cve_2024_21626_only_stdio_is_open() {
    let env = Env::new("cve21626fd");
    let out = env.run_sh("ls /proc/self/fd | tr '\\n' ' '");
    out.assert_ok();
    // ls's own directory descriptor is 3.
    assert_eq!(out.stdout.trim(), "0 1 2 3", "run: {out}");

    let files = || -> Vec<std::os::fd::OwnedFd> {
        (0..2)
            .map(|i| {
                fs::File::create(env.path(&format!("pfd-{i}")))
                    .unwrap()
                    .into()
            })
            .collect()
    };
    let b = env.sh_bundle("ls /proc/self/fd | tr '\\n' ' '");
    let id = env.id("pfd");
    let out = env.rt_opts(
        &["run", "--preserve-fds", "2", "--bundle", b.path(), &id],
        Opts {
            extra_fds: files(),
            ..Opts::default()
        },
    );
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        "0 1 2 3 4 5",
        "run --preserve-fds 2: {out}"
    );

    let b = env.bundle(&["sleep", "1000"]);
    let (id, _) = sleeper(&env, &b);
    let out = env.rt(&["exec", &id, "sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"]);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "0 1 2 3", "exec: {out}");
    let out = env.rt_opts(
        &[
            "exec",
            "--preserve-fds",
            "2",
            &id,
            "sh",
            "-c",
            "ls /proc/self/fd | tr '\\n' ' '",
        ],
        Opts {
            extra_fds: files(),
            ..Opts::default()
        },
    );
    out.assert_ok();
    assert_eq!(
        out.stdout.trim(),
        "0 1 2 3 4 5",
        "exec --preserve-fds 2: {out}"
    );
}

/// Prints the cwd, its dev:inode, and the dev:inode of that path resolved in the container.
const CWD_PROBE: &str = "c=$(readlink /proc/self/cwd); echo \"cwd=$c\"; \
    echo \"here=$(stat -c %d:%i .)\"; echo \"there=$(stat -c %d:%i \"$c\" 2>&1)\"";

fn assert_cwd_inside(text: &str, what: &str) {
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or_else(|| panic!("{what}: no {k} in {text:?}"))
            .to_string()
    };
    let (cwd, here, there) = (get("cwd"), get("here"), get("there"));
    assert!(
        cwd.starts_with('/') && !cwd.contains("unreachable"),
        "{what}: cwd {cwd:?}"
    );
    assert_eq!(
        here, there,
        "{what}: the cwd {cwd:?} is not the container's {cwd:?} (a host directory?): {text}"
    );
}

#[test]
fn cve_2024_21626_cwd_through_proc_self_fd() {
    let env = Env::new("cve21626cwd");
    // process.cwd in config.json (create + start).
    for n in 3..=9 {
        let mut b = env.sh_bundle(&format!("{{ {CWD_PROBE}; }} >/result 2>&1"));
        b.edit(|c| {
            c["root"]["readonly"] = json!(false);
            c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}"));
        });
        let id = env.id("cwd");
        let out = env.rt(&["create", &id, "--bundle", b.path()]);
        if !out.ok() {
            out.assert_clear_error(&[]);
            eprintln!("refused (safe): {}", out.stderr.trim());
            env.assert_nothing_left(&id, &b);
            continue;
        }
        env.rt(&["start", &id]).assert_ok();
        let done = wait_for(Duration::from_secs(10), || {
            (env.status(&id) == "stopped").then_some(())
        });
        assert!(done.is_some());
        let text = fs::read_to_string(b.rootfs().join("result")).unwrap_or_default();
        assert_cwd_inside(&text, &format!("create with cwd /proc/self/fd/{n}"));
    }
    // --cwd of exec.
    let b = env.bundle(&["sleep", "1000"]);
    let (id, init) = sleeper(&env, &b);
    for n in 3..=9 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = env.rt(&["exec", "--cwd", &cwd, &id, "sh", "-c", CWD_PROBE]);
        if !out.ok() {
            out.assert_clear_error(&[]);
            eprintln!("refused (safe): {}", out.stderr.trim());
            continue;
        }
        assert_cwd_inside(&out.stdout, &format!("exec --cwd {cwd}"));
    }
    let left: Vec<i32> = pids_in_cgroup_of(&id)
        .into_iter()
        .filter(|p| *p != init && !is_zombie(*p))
        .collect();
    assert!(left.is_empty(), "failed execs left {left:?}");
}

// ---------------------------------------------------------------------------------------
// CVE-2021-30465: symlinks at mount destinations
// ---------------------------------------------------------------------------------------

fn host_mount_points() -> Vec<String> {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

/// rootfs/mnt/evil is a symlink to /../../../../<host dir>; a runtime that follows it on
/// the host (runc <= 1.0.0-rc94 raced/followed it) mounts over the host directory. The
/// mounts must land inside the rootfs: inside the container, mountinfo shows the tmpfs
/// and the bind at the symlink's target resolved in the rootfs, the host directories stay
/// empty of container files, and the host's mountinfo has nothing at them (the container
/// uses rshared propagation, so a mount made on a host path would show up on the host).
///
/// With `targets_exist`, the symlinks' targets also exist inside the rootfs (like
/// /var/run -> /run in real images); without, they dangle inside the rootfs and the
/// runtime has to create them there (as runc does). Refusing is safe, but only accepted
/// with `refusal_ok`.
fn symlinked_destinations(name: &str, targets_exist: bool) {
    let env = Env::new(name);
    let mut b = env.bundle(&["sleep", "1000"]);
    let hosts: Vec<_> = ["h-tmpfs", "h-bind", "h-parent"]
        .iter()
        .map(|n| {
            let d = env.path(n);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("host-only"), "host\n").unwrap();
            d
        })
        .collect();
    let up = "/../../../../../../../..";
    let r = b.rootfs();
    fs::create_dir_all(r.join("mnt")).unwrap();
    std::os::unix::fs::symlink(format!("{up}{}", hosts[0].display()), r.join("mnt/evil")).unwrap();
    std::os::unix::fs::symlink(
        format!("{up}{}", hosts[1].display()),
        r.join("mnt/evilbind"),
    )
    .unwrap();
    std::os::unix::fs::symlink(format!("{up}{}", hosts[2].display()), r.join("mnt/par")).unwrap();
    if targets_exist {
        for h in &hosts {
            fs::create_dir_all(r.join(h.strip_prefix("/").unwrap())).unwrap();
        }
    }
    let vol = b.dir.join("vol");
    fs::create_dir_all(&vol).unwrap();
    fs::write(vol.join("from-vol"), "vol\n").unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["linux"]["rootfsPropagation"] = json!("rshared");
    });
    b.add_mount(
        json!({"destination": "/mnt/evil", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "size=1m"]}),
    );
    b.add_mount(json!({"destination": "/mnt/evilbind", "type": "bind",
                       "source": vol.to_str().unwrap(), "options": ["rbind", "rw"]}));
    b.add_mount(
        json!({"destination": "/mnt/par/sub", "type": "tmpfs", "source": "tmpfs",
                       "options": ["size=1m"]}),
    );
    let id = env.id("evil");
    let out = env.rt(&["run", "-d", "--bundle", b.path(), &id]);
    // Refusing would be safe, but a symlinked destination is legitimate (the runtime
    // must resolve it inside the rootfs and create what is missing there).
    out.assert_ok();
    {
        let points = host_mount_points();
        for h in &hosts {
            let hs = h.to_str().unwrap();
            assert!(
                !points.iter().any(|p| p.starts_with(hs)),
                "something is mounted on the host at {hs}"
            );
        }
        let script = format!(
            "touch /mnt/evil/in-tmpfs /mnt/par/sub/in-sub; cat /mnt/evilbind/from-vol; \
             grep -E ' ({}|{}|{}/sub) ' /proc/self/mountinfo | cut -d' ' -f5,9",
            hosts[0].display(),
            hosts[1].display(),
            hosts[2].display()
        );
        let out = env.rt(&["exec", &id, "sh", "-c", &script]);
        out.assert_ok();
        assert!(out.stdout.contains("vol"), "bind not visible: {out}");
        let want = [
            format!("{} tmpfs", hosts[0].display()),
            format!("{} ", hosts[1].display()),
            format!("{}/sub tmpfs", hosts[2].display()),
        ];
        for w in &want {
            assert!(
                out.stdout.lines().any(|l| l.starts_with(w.as_str())),
                "no mount at {w:?} inside the container: {out}"
            );
        }
        let points = host_mount_points();
        for h in &hosts {
            let hs = h.to_str().unwrap();
            assert!(
                !points.iter().any(|p| p.starts_with(hs)),
                "something is mounted on the host at {hs}"
            );
        }
    }
    for h in &hosts {
        let names: Vec<String> = fs::read_dir(h)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["host-only"], "host dir {} was touched", h.display());
    }
    assert!(!hosts[2].join("sub").exists());
    // Everything landed under the rootfs.
    for h in &hosts {
        assert!(r.join(h.strip_prefix("/").unwrap()).is_dir());
    }
}

#[test]
fn cve_2021_30465_symlinked_mount_destinations_stay_in_the_rootfs() {
    symlinked_destinations("cve30465", true);
}

#[test]
fn cve_2021_30465_dangling_symlinked_destinations_are_created_in_the_rootfs() {
    symlinked_destinations("cve30465d", false);
}

// ---------------------------------------------------------------------------------------
// CVE-2025-31133 / CVE-2025-52565: the container's /dev/null and /dev/console
// ---------------------------------------------------------------------------------------

/// Drops the /dev tmpfs so the image's own /dev (with the planted symlinks) is used.
fn without_dev_tmpfs(b: &mut Bundle) {
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != "/dev");
    });
}

/// The image's /dev/null is a symlink to /etc/secret. A runtime that masks paths by
/// bind-mounting the container's /dev/null (runc < 1.2.8) would bind /etc/secret over
/// them: /proc/kcore (or timer_list) would read "SECRET-DATA" (or, if the bind fails and is ignored, stay
/// unmasked: open fails with EPERM as we lack CAP_SYS_RAWIO). Masked paths must read empty
/// as the real null device, and /etc/secret must keep its content (no device bound over
/// the link's target).
#[test]
fn cve_2025_31133_dev_null_symlink_does_not_unmask() {
    let env = Env::new("cve31133");
    // A masked /proc file this kernel has (kcore is not built everywhere).
    let proc_file = ["/proc/kcore", "/proc/timer_list", "/proc/sched_debug"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("no maskable /proc file on this host");
    let mut b = env.sh_bundle(&format!(
        "echo kcore=$(wc -c <{proc_file}) $(stat -L -c %t:%T {proc_file}); \
         echo masked=$(cat /etc/masked-file); echo secret=$(cat /etc/secret); \
         echo keys=$(wc -c </proc/keys 2>&1)"
    ));
    without_dev_tmpfs(&mut b);
    let r = b.rootfs();
    fs::write(r.join("etc/secret"), "SECRET-DATA\n").unwrap();
    fs::write(r.join("etc/masked-file"), "MASKED-CONTENT\n").unwrap();
    std::os::unix::fs::symlink("/etc/secret", r.join("dev/null")).unwrap();
    b.edit(|c| {
        let mp = c["linux"]["maskedPaths"].as_array_mut().unwrap();
        mp.push(json!("/etc/masked-file"));
        if !mp.iter().any(|p| p == proc_file) {
            mp.push(json!(proc_file));
        }
        if !mp.iter().any(|p| p == "/proc/keys") {
            mp.push(json!("/proc/keys"));
        }
    });
    let out = env.run(&b);
    if !out.ok() {
        // Refusing the image is safe too.
        out.assert_clear_error(&[]);
        eprintln!("refused (safe): {}", out.stderr.trim());
    } else {
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], "kcore=0 1:3", "{proc_file} unmasked: {out}");
        assert_eq!(lines[1], "masked=", "masked file readable: {out}");
        assert_eq!(lines[2], "secret=SECRET-DATA", "{out}");
        assert_eq!(lines[3], "keys=0", "/proc/keys unmasked: {out}");
    }
    assert_eq!(
        fs::read_to_string(r.join("etc/secret")).unwrap(),
        "SECRET-DATA\n"
    );
}

/// The image's /dev/console is a symlink to /etc/hostname. A runtime that bind-mounts the
/// pty onto the path /dev/console follows the link and mounts the pty over /etc/hostname
/// (CVE-2025-52565). Inside, /dev/console must be the pty and /etc/hostname a regular file
/// with its content.
#[test]
fn cve_2025_52565_dev_console_symlink_is_not_followed() {
    let env = Env::new("cve52565");
    let mut b = env.sh_bundle(
        "echo console=$(stat -c '%F %t' /dev/console); echo hostname=$(stat -c %F /etc/hostname) \
         $(cat /etc/hostname); echo DONE",
    );
    without_dev_tmpfs(&mut b);
    let r = b.rootfs();
    fs::write(r.join("etc/hostname"), "ORIGINAL-HOSTNAME\n").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", r.join("dev/console")).unwrap();
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let mut sock = ConsoleSocket::listen(env.path("console.sock"));
    let id = env.id("console");
    let out = env.rt(&[
        "create",
        &id,
        "--bundle",
        b.path(),
        "--console-socket",
        sock.path.to_str().unwrap(),
    ]);
    if !out.ok() {
        out.assert_clear_error(&[]);
        eprintln!("refused (safe): {}", out.stderr.trim());
        env.assert_nothing_left(&id, &b);
    } else {
        let master = sock.master(Duration::from_secs(10));
        env.rt(&["start", &id]).assert_ok();
        let text = read_pty_until(&master, "DONE", Duration::from_secs(10));
        assert!(
            text.contains("console=character special file 88"),
            "/dev/console is not the pty: {text:?}"
        );
        assert!(
            text.contains("hostname=regular file ORIGINAL-HOSTNAME"),
            "/etc/hostname was covered: {text:?}"
        );
    }
    assert_eq!(
        fs::read_to_string(r.join("etc/hostname")).unwrap(),
        "ORIGINAL-HOSTNAME\n"
    );
}

// ---------------------------------------------------------------------------------------
// CVE-2019-16884 / CVE-2025-52881: /proc writes redirected by mounts
// ---------------------------------------------------------------------------------------

fn netns_sysctl(pid: i32, key: &str) -> String {
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .args(["cat", &format!("/proc/sys/{}", key.replace('.', "/"))])
        .output()
        .expect("nsenter");
    assert!(out.status.success(), "nsenter: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A config whose mounts cover the /proc files the runtime writes: a decoy file bound over
/// /proc/sys/net/ipv4/ip_forward (and over /proc/self/oom_score_adj), or a tmpfs over
/// /proc/sys. A runtime that writes sysctls by path (runc < 1.2.8) writes the decoy (its
/// content changes) and the real sysctl keeps its default. Here the write either fails
/// with a clear error or reaches the real sysctl of the container's network namespace
/// (read from the host through nsenter), the decoys are untouched, and oomScoreAdj is
/// applied to the init.
fn sysctl_redirect_case(name: &str, mounts: Vec<Value>) {
    let env = Env::new(name);
    let mut b = env.bundle(&["sleep", "1000"]);
    let decoy = b.dir.join("decoy");
    fs::write(&decoy, "decoy\n").unwrap();
    let decoy2 = b.dir.join("decoy-oom");
    fs::write(&decoy2, "decoy\n").unwrap();
    for mut m in mounts {
        if m["source"] == "DECOY" {
            m["source"] = json!(decoy.to_str().unwrap());
        }
        if m["source"] == "DECOY2" {
            m["source"] = json!(decoy2.to_str().unwrap());
        }
        b.add_mount(m);
    }
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "net.ipv4.tcp_syncookies": "0"});
        c["process"]["oomScoreAdj"] = json!(123);
    });
    let id = env.id("sysctl");
    let out = env.rt(&["run", "-d", "--bundle", b.path(), &id]);
    if !out.ok() {
        out.assert_clear_error(&[]);
        eprintln!("refused (safe): {}", out.stderr.trim());
        env.assert_nothing_left(&id, &b);
    } else {
        let pid = env.state(&id)["pid"].as_i64().unwrap() as i32;
        assert_eq!(netns_sysctl(pid, "net.ipv4.ip_forward"), "1");
        assert_eq!(netns_sysctl(pid, "net.ipv4.tcp_syncookies"), "0");
        assert_eq!(
            fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
                .unwrap()
                .trim(),
            "123"
        );
    }
    assert_eq!(
        fs::read_to_string(&decoy).unwrap(),
        "decoy\n",
        "decoy written"
    );
    assert_eq!(
        fs::read_to_string(&decoy2).unwrap(),
        "decoy\n",
        "decoy written"
    );
}

#[test]
fn cve_2019_16884_file_bound_over_a_sysctl() {
    sysctl_redirect_case(
        "cve16884bind",
        vec![
            json!({"destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
                   "source": "DECOY", "options": ["bind", "rw"]}),
            json!({"destination": "/proc/self/oom_score_adj", "type": "bind",
                   "source": "DECOY2", "options": ["bind", "rw"]}),
        ],
    );
}

#[test]
fn cve_2025_52881_tmpfs_over_proc_sys() {
    sysctl_redirect_case(
        "cve52881tmpfs",
        vec![
            json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs",
                    "options": ["size=1m"]}),
        ],
    );
}
