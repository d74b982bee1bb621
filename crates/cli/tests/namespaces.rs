//! Namespaces inside the container: new ones, joined ones, and what each isolates.

mod common;

use common::*;
use serde_json::json;
use std::collections::HashMap;

const KINDS: [&str; 8] = ["mnt", "pid", "net", "ipc", "uts", "user", "cgroup", "time"];

/// `kind -> ns link` from lines "kind link" printed by the container.
fn ns_links(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("NS "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const PRINT_NS: &str = "for n in mnt pid net ipc uts user cgroup time; do echo NS $n $(readlink /proc/self/ns/$n); done";

fn with_userns(b: &mut Bundle) {
    b.set_namespace("user", None);
    b.edit(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
}

#[test]
fn all_eight_namespaces_are_new() {
    let env = Env::new("allns");
    let mut b = env.sh_bundle(&format!(
        "{PRINT_NS}; echo UIDMAP $(cat /proc/self/uid_map); echo GIDMAP $(cat /proc/self/gid_map)"
    ));
    with_userns(&mut b);
    b.set_namespace("time", None);
    let out = env.run(&b);
    out.assert_ok();
    let links = ns_links(&out.stdout);
    for k in KINDS {
        let inside = links.get(k).unwrap_or_else(|| panic!("no {k} line: {out}"));
        assert!(inside.starts_with(&format!("{k}:[")), "{k}: {inside}");
        assert_ne!(inside, &host_ns(k), "{k} namespace is the host's");
    }
    assert!(out.stdout.contains("UIDMAP 0 100000 65536"), "{out}");
    assert!(out.stdout.contains("GIDMAP 0 100000 65536"), "{out}");
}

#[test]
fn default_namespaces_are_new_and_others_shared() {
    let env = Env::new("defns");
    let out = env.run_sh(PRINT_NS);
    out.assert_ok();
    let links = ns_links(&out.stdout);
    for k in ["mnt", "pid", "net", "ipc", "uts", "cgroup"] {
        assert_ne!(links[k], host_ns(k), "{k} should be new: {out}");
    }
    for k in ["user", "time"] {
        assert_eq!(links[k], host_ns(k), "{k} should be the host's: {out}");
    }
}

#[test]
fn user_namespace_maps_ids() {
    let env = Env::new("userns");
    let mut b = env.sh_bundle("id -u; id -g; cat /proc/self/uid_map; sleep 1000");
    with_userns(&mut b);
    let id = env.id("userns");
    let pid = env.create(&id, &b);
    // Seen from the host, the container's root is uid 100000.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = status_field(&status, "Uid").unwrap();
    assert_eq!(uid.split_whitespace().next(), Some("100000"), "{status}");
    let gid = status_field(&status, "Gid").unwrap();
    assert_eq!(gid.split_whitespace().next(), Some("100000"), "{status}");
    assert_ne!(proc_ns(pid, "user"), host_ns("user"));
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields, ["0", "100000", "65536"], "{map}");
    env.rt(&["delete", "--force", &id]).assert_ok();
    env.assert_nothing_left(&id, &b);

    // And from inside: root.
    let mut b = env.sh_bundle("id -u; id -g");
    with_userns(&mut b);
    let out = env.run(&b);
    out.assert_ok();
    assert_eq!(
        out.stdout.split_whitespace().collect::<Vec<_>>(),
        ["0", "0"]
    );
}

#[test]
fn network_namespace_has_only_lo() {
    let env = Env::new("netns");
    let out = env.run_sh("tail -n +3 /proc/net/dev | cut -d: -f1; echo SYS $(ls /sys/class/net)");
    out.assert_ok();
    let ifaces: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("SYS"))
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{out}");
    assert!(out.stdout.contains("SYS lo\n"), "{out}");
}

#[test]
fn pid_namespace_makes_the_program_pid_1() {
    let env = Env::new("pidns");
    let out = env.run_sh("echo PID $$; ps -o pid | tail -n +2 | wc -l");
    out.assert_ok();
    assert!(out.stdout.contains("PID 1\n"), "{out}");
    let n: usize = out.stdout.lines().nth(1).unwrap().trim().parse().unwrap();
    // sh, ps, tail, wc: nothing of the host.
    assert!(n <= 4, "the container sees {n} processes: {out}");

    // From the host, the init's pid is a normal host pid in a child pid namespace.
    let b = env.bundle(&["sleep", "1000"]);
    let id = env.id("pidns");
    let pid = env.create(&id, &b);
    assert!(pid > 1);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status_field(&status, "NSpid").unwrap();
    let v: Vec<&str> = nspid.split_whitespace().collect();
    assert_eq!(v, [pid.to_string().as_str(), "1"], "{status}");
}

#[test]
fn uts_namespace_hostname_and_domainname() {
    let env = Env::new("uts");
    let mut b = env.sh_bundle("hostname; cat /proc/sys/kernel/domainname");
    b.edit(|c| {
        c["hostname"] = json!("berth-test-host");
        c["domainname"] = json!("example.test");
    });
    let host_before = nix::unistd::gethostname().unwrap();
    let out = env.run(&b);
    out.assert_ok();
    assert_eq!(
        out.stdout.lines().collect::<Vec<_>>(),
        ["berth-test-host", "example.test"],
        "{out}"
    );
    assert_eq!(nix::unistd::gethostname().unwrap(), host_before);
}

#[test]
fn ipc_namespace_is_private() {
    let env = Env::new("ipc");
    let out = env.run_sh("cat /proc/sysvipc/shm | wc -l; readlink /proc/self/ns/ipc");
    out.assert_ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    // Only the header: no segment of the host.
    assert_eq!(lines[0].trim(), "1", "{out}");
    assert_ne!(lines[1], host_ns("ipc"));
}

#[test]
fn cgroup_namespace_roots_the_container_cgroup() {
    let env = Env::new("cgns");
    let out = env.run_sh("cat /proc/self/cgroup");
    out.assert_ok();
    for l in out.stdout.lines() {
        let path = l.rsplit(':').next().unwrap();
        assert_eq!(
            path, "/",
            "cgroup namespace not rooted at the container: {out}"
        );
    }
    // Without a cgroup namespace the real path shows: /berth/<id>.
    let mut b = env.sh_bundle("cat /proc/self/cgroup");
    b.remove_namespace("cgroup");
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["type"] != "cgroup")
    });
    let id = env.id("nocgns");
    let out = env.rt(&["run", &id, "--bundle", b.path()]);
    out.assert_ok();
    assert!(
        out.stdout.contains(&format!("/berth/{id}")),
        "expected the default cgroup parent /berth: {out}"
    );
}

#[test]
fn time_namespace_applies_offsets() {
    let env = Env::new("timens");
    let mut b = env.sh_bundle("cat /proc/self/timens_offsets; cat /proc/uptime");
    b.set_namespace("time", None);
    b.edit(|c| {
        c["linux"]["timeOffsets"] = json!({
            "boottime": {"secs": 864000, "nanosecs": 0},
            "monotonic": {"secs": 86400, "nanosecs": 0}
        })
    });
    let host_uptime = || -> f64 {
        std::fs::read_to_string("/proc/uptime")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let before = host_uptime();
    let out = env.run(&b);
    let after = host_uptime();
    out.assert_ok();
    let mut offsets = HashMap::new();
    for l in out.stdout.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 3 && (f[0] == "boottime" || f[0] == "monotonic") {
            offsets.insert(f[0].to_string(), f[1].to_string());
        }
    }
    assert_eq!(
        offsets.get("boottime").map(String::as_str),
        Some("864000"),
        "{out}"
    );
    assert_eq!(
        offsets.get("monotonic").map(String::as_str),
        Some("86400"),
        "{out}"
    );
    let uptime: f64 = out
        .stdout
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime >= before + 864000.0 - 1.0 && uptime <= after + 864000.0 + 1.0,
        "uptime {uptime} inside vs host {before}..{after}: {out}"
    );
}

#[test]
fn join_namespaces_of_another_container_by_path() {
    let env = Env::new("joinns");
    let mut a = env.bundle(&["sleep", "1000"]);
    a.edit(|c| c["hostname"] = json!("owner-host"));
    let a_id = env.id("owner");
    let a_pid = env.create(&a_id, &a);
    env.rt(&["start", &a_id]).assert_ok();

    let mut b = env.sh_bundle(&format!("{PRINT_NS}; hostname; ps -o comm | grep -c sleep"));
    for (typ, link) in [
        ("network", "net"),
        ("uts", "uts"),
        ("ipc", "ipc"),
        ("pid", "pid"),
    ] {
        b.set_namespace(typ, Some(&format!("/proc/{a_pid}/ns/{link}")));
    }
    b.edit(|c| {
        c.as_object_mut().unwrap().remove("hostname");
    });
    let out = env.run(&b);
    out.assert_ok();
    let links = ns_links(&out.stdout);
    for k in ["net", "uts", "ipc", "pid"] {
        assert_eq!(links[k], proc_ns(a_pid, k), "{k} not joined: {out}");
    }
    assert_ne!(
        links["mnt"],
        proc_ns(a_pid, "mnt"),
        "mount ns should be new"
    );
    let rest: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("NS "))
        .collect();
    assert_eq!(rest[0], "owner-host", "{out}");
    assert_eq!(
        rest[1], "1",
        "the owner's sleep is not visible in the joined pid ns: {out}"
    );
}

#[test]
fn join_user_namespace_by_path() {
    let env = Env::new("joinuser");
    let mut a = env.bundle(&["sleep", "1000"]);
    with_userns(&mut a);
    let a_id = env.id("uowner");
    let a_pid = env.create(&a_id, &a);

    let mut b = env.sh_bundle(&format!("{PRINT_NS}; echo PID $$; id -u"));
    b.set_namespace("user", Some(&format!("/proc/{a_pid}/ns/user")));
    let out = env.run(&b);
    out.assert_ok();
    let links = ns_links(&out.stdout);
    assert_eq!(links["user"], proc_ns(a_pid, "user"), "{out}");
    for k in ["pid", "net", "mnt", "ipc", "uts"] {
        assert_ne!(links[k], proc_ns(a_pid, k), "{k} should be new: {out}");
    }
    assert!(out.stdout.contains("PID 1\n"), "{out}");
    assert!(out.stdout.ends_with("0\n"), "{out}");
}
