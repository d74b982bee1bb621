//! The container's process: args, env, cwd, user, limits, privileges, capabilities, sysctl.

mod common;

use common::*;
use serde_json::json;

#[test]
fn args_are_passed_verbatim() {
    let env = Env::new("args");
    let b = env.bundle(&[
        "sh",
        "-c",
        "printf '[%s]' \"$@\"; echo",
        "arg0",
        "a b",
        "",
        "c'd",
    ]);
    let out = env.run(&b);
    out.assert_ok();
    assert_eq!(out.stdout, "[a b][][c'd]\n", "{out}");
}

#[test]
fn env_is_exactly_the_configured_one_plus_home() {
    let env = Env::new("env");
    let mut b = env.sh_bundle("env | sort");
    b.edit(|c| {
        c["process"]["env"] = json!([
            "PATH=/bin:/usr/bin",
            "FOO=bar baz",
            "EMPTY=",
            format!("{TAG_VAR}={}", env.tag)
        ])
    });
    let out = env.run(&b);
    out.assert_ok();
    let mut lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("PWD=") && !l.starts_with("SHLVL="))
        .collect();
    lines.retain(|l| !l.starts_with(TAG_VAR));
    assert_eq!(
        lines,
        ["EMPTY=", "FOO=bar baz", "HOME=/root", "PATH=/bin:/usr/bin"],
        "{out}"
    );
}

#[test]
fn cwd_is_used_and_created_if_missing() {
    let env = Env::new("cwd");
    let mut b = env.sh_bundle("pwd");
    b.edit(|c| c["process"]["cwd"] = json!("/work/deep/dir"));
    let out = env.run(&b);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "/work/deep/dir");
}

#[test]
fn user_uid_gid_umask_additional_gids() {
    let env = Env::new("user");
    let mut b = env.sh_bundle(
        "id -u; id -g; grep Groups /proc/self/status; umask; touch /tmp/f; stat -c %a /tmp/f; echo $HOME",
    );
    b.edit(|c| {
        c["root"]["readonly"] = json!(false);
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1001, "umask": 0o027, "additionalGids": [10, 20]});
    });
    let out = env.run(&b);
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "1000", "{out}");
    assert_eq!(lines[1], "1001", "{out}");
    let groups: Vec<&str> = lines[2]
        .trim_start_matches("Groups:")
        .split_whitespace()
        .collect();
    assert_eq!(groups, ["10", "20"], "{out}");
    assert_eq!(lines[3], "0027", "{out}");
    assert_eq!(lines[4], "640", "{out}");
    assert_eq!(lines[5], "/home/user", "HOME from /etc/passwd: {out}");
}

#[test]
fn rlimits_are_applied() {
    let env = Env::new("rlimits");
    let mut b = env.sh_bundle("grep -E 'Max (open files|core file size)' /proc/self/limits");
    b.edit(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096}
        ])
    });
    let out = env.run(&b);
    out.assert_ok();
    let nofile = out
        .stdout
        .lines()
        .find(|l| l.contains("open files"))
        .unwrap();
    let f: Vec<&str> = nofile.split_whitespace().collect();
    assert_eq!(&f[3..5], ["512", "2048"], "{out}");
    let core = out
        .stdout
        .lines()
        .find(|l| l.contains("core file"))
        .unwrap();
    let f: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&f[4..6], ["0", "4096"], "{out}");
}

#[test]
fn oom_score_adj() {
    let env = Env::new("oom");
    let mut b = env.sh_bundle("cat /proc/self/oom_score_adj");
    b.edit(|c| c["process"]["oomScoreAdj"] = json!(123));
    let out = env.run(&b);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), "123");
}

#[test]
fn no_new_privileges() {
    let env = Env::new("nnp");
    for (flag, want) in [(true, "1"), (false, "0")] {
        let mut b = env.sh_bundle("grep NoNewPrivs /proc/self/status");
        b.edit(|c| c["process"]["noNewPrivileges"] = json!(flag));
        let out = env.run(&b);
        out.assert_ok();
        assert_eq!(
            status_field(&out.stdout, "NoNewPrivs").as_deref(),
            Some(want),
            "noNewPrivileges={flag}: {out}"
        );
    }
}

fn caps_of(out: &Out) -> [u64; 5] {
    let get = |k: &str| {
        let v = status_field(&out.stdout, k).unwrap_or_else(|| panic!("no {k}: {out}"));
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

#[test]
fn capabilities_of_root() {
    let env = Env::new("capsroot");
    let mut b = env.sh_bundle("grep Cap /proc/self/status");
    let set = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"];
    b.edit(|c| {
        c["process"]["capabilities"] = json!({"bounding": set, "effective": set, "permitted": set});
    });
    let out = env.run(&b);
    out.assert_ok();
    let [inh, prm, eff, bnd, amb] = caps_of(&out);
    let m = cap_mask(&set);
    assert_eq!(bnd, m, "CapBnd {bnd:x}: {out}");
    assert_eq!(prm, m, "CapPrm {prm:x}: {out}");
    assert_eq!(eff, m, "CapEff {eff:x}: {out}");
    assert_eq!(inh, 0, "the inheritable set must start empty: {out}");
    assert_eq!(amb, 0, "{out}");
}

#[test]
fn capabilities_all_five_sets_for_a_user() {
    let env = Env::new("capsuser");
    let mut b = env.sh_bundle("grep Cap /proc/self/status");
    let bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_TIME"];
    let permitted = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"];
    let inheritable = ["CAP_KILL", "CAP_NET_RAW"];
    let ambient = ["CAP_KILL"];
    b.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["capabilities"] = json!({
            "bounding": bounding, "effective": permitted, "permitted": permitted,
            "inheritable": inheritable, "ambient": ambient
        });
    });
    let out = env.run(&b);
    out.assert_ok();
    let [inh, prm, eff, bnd, amb] = caps_of(&out);
    // After execve as a non-root user: permitted = effective = ambient.
    assert_eq!(bnd, cap_mask(&bounding), "CapBnd {bnd:x}: {out}");
    assert_eq!(inh, cap_mask(&inheritable), "CapInh {inh:x}: {out}");
    assert_eq!(amb, cap_mask(&ambient), "CapAmb {amb:x}: {out}");
    assert_eq!(prm, cap_mask(&ambient), "CapPrm {prm:x}: {out}");
    assert_eq!(eff, cap_mask(&ambient), "CapEff {eff:x}: {out}");
}

#[test]
fn sysctl_in_a_new_network_namespace() {
    let env = Env::new("sysctl");
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let want = if host.trim() == "1" { "0" } else { "1" };
    let mut b = env.sh_bundle("cat /proc/sys/net/ipv4/ip_forward");
    b.edit(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": want}));
    let out = env.run(&b);
    out.assert_ok();
    assert_eq!(out.stdout.trim(), want, "{out}");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host,
        "the host's value changed"
    );
}

#[test]
fn stdio_is_inherited_without_a_terminal() {
    let env = Env::new("stdio");
    let out = env.run_sh("echo to-out; echo to-err >&2; [ -t 0 ] || echo not-a-tty");
    out.assert_ok();
    assert_eq!(out.stdout, "to-out\nnot-a-tty\n");
    assert_eq!(out.stderr, "to-err\n");
}

#[test]
fn signals_start_unblocked_and_not_ignored() {
    // The runtime is a Rust program (SIGPIPE ignored at start-up); an ignored signal
    // would survive execve into the container's program.
    let env = Env::new("sigs");
    let out = env.run_sh("grep -E '^Sig(Blk|Ign)' /proc/self/status; yes | head -n 1");
    out.assert_ok();
    let field = |name: &str| {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {}", out.stdout));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap_or(""), 16)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
    };
    assert_eq!(field("SigBlk:"), 0, "{}", out.stdout);
    assert_eq!(
        field("SigIgn:") & (1 << (libc::SIGPIPE - 1)),
        0,
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("y\n"), "{}", out.stdout);
}
