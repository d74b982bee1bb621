//! `berth network ...` end to end, inside network and mount namespaces a holder process
//! keeps (every berth invocation enters them with nsenter): nothing touches the host's
//! network. The topology itself (containers, DNS, ports) is tested in crates/net.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_berth");

struct Ns {
    holder: Child,
    dir: PathBuf,
}

impl Ns {
    fn new() -> Option<Ns> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("berth-cli-net-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "sleep",
                "600",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let ns = Ns { holder, dir };
        let ours = std::fs::read_link("/proc/self/ns/net").expect("own netns");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_link(ns.proc("net")).ok().as_ref() == Some(&ours)
            || std::fs::read_link(ns.proc("net")).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "unshare never made its namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        ns.enter(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    fn proc(&self, ns: &str) -> PathBuf {
        Path::new("/proc")
            .join(self.holder.id().to_string())
            .join("ns")
            .join(ns)
    }

    fn enter(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.proc("net").display()))
            .arg(format!("--mount={}", self.proc("mnt").display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    fn berth(&self, args: &[&str]) -> (i32, String, String) {
        let root = self.dir.join("root");
        let run = self.dir.join("run");
        let mut all = vec![
            BIN,
            "--root",
            root.to_str().expect("utf8"),
            "--runroot",
            run.to_str().expect("utf8"),
        ];
        all.extend_from_slice(args);
        let o = self.enter(&all);
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn links(&self) -> String {
        String::from_utf8_lossy(&self.enter(&["ip", "-o", "link"]).stdout).into_owned()
    }

    /// Name servers started for this test's root.
    fn name_servers(&self) -> usize {
        let root = self.dir.join("root");
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(" network-dns ") && c.contains(root.to_str().unwrap_or("")))
            .count()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.berth(&["network", "prune"]);
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn network_commands() {
    let Some(ns) = Ns::new() else { return };
    let (code, id, err) = ns.berth(&["network", "create", "--subnet", "10.89.0.0/24", "web"]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    assert!(ns.links().contains(&format!("br-{}", &id[..12])));
    assert_eq!(ns.name_servers(), 1);

    let (code, out, _) = ns.berth(&["network", "ls"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("NETWORK ID"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with(&id[..12]) && l.contains(" web ")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.contains(" bridge ")), "{out}");

    let (code, out, _) = ns.berth(&["network", "inspect", "web"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.89.0.0/24");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "10.89.0.1");
    assert_eq!(v[0]["Containers"], serde_json::json!({}));

    // Bad input: one line, exit 1, nothing made.
    for (args, want) in [
        (
            vec!["network", "create", "web"],
            "network with name web already exists",
        ),
        (
            vec!["network", "create", "--subnet", "10.89.0.128/25", "other"],
            "subnet 10.89.0.128/25 overlaps with network web (10.89.0.0/24)",
        ),
        (
            vec![
                "network",
                "create",
                "--subnet",
                "10.90.0.0/24",
                "--gateway",
                "10.1.1.1",
                "x",
            ],
            "gateway 10.1.1.1 is not a host address of subnet 10.90.0.0/24",
        ),
        (
            vec!["network", "create", "--subnet", "banana", "x"],
            "invalid subnet \"banana\"",
        ),
        (
            vec!["network", "create", "-d", "macvlan", "x"],
            "driver \"macvlan\" is not supported",
        ),
        (
            vec!["network", "inspect", "nope"],
            "network nope: no such network",
        ),
        (
            vec!["network", "rm", "bridge"],
            "bridge is a pre-defined network",
        ),
    ] {
        let (code, _, err) = ns.berth(&args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let (_, out, _) = ns.berth(&["network", "ls", "-q"]);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert_eq!(ns.links().matches("br-").count(), 1);

    let (code, _, err) = ns.berth(&["network", "create", "web2"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = ns.berth(&["network", "rm", "web2", "nope"]);
    assert_eq!(code, 1);
    assert_eq!(out, "web2\n");
    assert!(err.contains("network nope: no such network"), "{err}");
    let (code, out, _) = ns.berth(&["network", "prune", "-f"]);
    assert_eq!(code, 0);
    assert_eq!(out, "Deleted Networks:\nweb\n");
    let (_, out, _) = ns.berth(&["network", "ls", "-q"]);
    assert_eq!(out.lines().count(), 1, "only the default network: {out}");
    assert!(!ns.links().contains("br-"));
    assert_eq!(ns.name_servers(), 0);
    let tables = ns.enter(&["nft", "list", "tables"]);
    assert_eq!(String::from_utf8_lossy(&tables.stdout), "");
}
