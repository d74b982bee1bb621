//! `berth run --network ...`, `-p`, `berth network connect/disconnect` end to end, as root.
//!
//! Every test re-runs itself (this binary, `--exact NAME`) under `unshare --net --mount`:
//! bridges, veths, nftables rules, name servers and port proxies all live in a network
//! namespace the test made, and no packet goes to an address outside it. A busybox image
//! is imported into a private `--root`; the [`Env`] guard removes containers, networks,
//! stray processes of the namespace and directories, also when the test fails.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod berth_env;
use berth_env::{is_root, wait_output, Env, Suite};

static SUITE: Suite = Suite {
    prefix: "nt",
    default_network: None,
    private_netns: true,
};

/// Set in the child that runs a test's body inside its namespaces.
const INSIDE: &str = "BERTH_NETWORKS_TEST_INSIDE";

/// Run `body` inside fresh network + mount namespaces: outside, re-exec this test there
/// and check it passed; inside, run it.
fn in_netns(name: &str, body: impl FnOnce()) {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    if std::env::var(INSIDE).as_deref() == Ok(name) {
        let lo = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip");
        assert!(lo.success());
        body();
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let child = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private", "--"])
        .arg(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare");
    let out = wait_output(child, Duration::from_secs(300), &[name]);
    assert!(
        out.code == Some(0) && out.stdout.contains("1 passed"),
        "{name} inside its namespace failed ({:?}):\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
}

impl Env {
    /// A refused command: exit 125 and a one-line error naming `needle`.
    #[track_caller]
    fn refused(&self, args: &[&str], needle: &str) {
        let r = self.run(args);
        assert_eq!(
            r.code,
            Some(125),
            "berth {args:?}: {}\n{}",
            r.stderr,
            r.stdout
        );
        assert!(
            r.stderr.contains(needle),
            "berth {args:?}: error without {needle:?}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    }

    fn network(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["network", "inspect", name])).expect("json");
        v[0].clone()
    }

    fn ip_of(&self, ctr: &str) -> String {
        self.inspect(ctr)["NetworkSettings"]["IPAddress"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A container serving `text` over HTTP on port 7000 (busybox httpd).
    fn server(&self, extra: &[&str], text: &str) -> String {
        let script = format!(
            "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 7000 -h /www"
        );
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["bb", "sh", "-c", &script]);
        self.ok(&args).trim().to_string()
    }

    /// What `GET /` to `host:port` returns from a fresh container on `network` (busybox
    /// nc; retried for a second while the server comes up).
    fn fetch_from(&self, network: &str, host: &str) -> String {
        self.fetch_tries(network, host, 10)
    }

    /// The same, one try (for what must not be reachable).
    fn fetch_once(&self, network: &str, host: &str) -> String {
        self.fetch_tries(network, host, 1)
    }

    fn fetch_tries(&self, network: &str, host: &str, tries: u32) -> String {
        let script = format!(
            "for i in $(seq {tries}); do \
               printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 7000 && exit 0; \
               sleep 0.1; done; exit 1"
        );
        let r = self.run(&[
            "run",
            "--rm",
            "--network",
            network,
            "bb",
            "sh",
            "-c",
            &script,
        ]);
        r.stdout
    }

    fn netns_files(&self) -> Vec<String> {
        fs::read_dir(self.run_root.join("netns"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// No container record, namespace file or mount is left.
    #[track_caller]
    fn assert_nothing_half_made(&self) {
        assert_eq!(self.ids(), Vec::<String>::new(), "container records left");
        assert_eq!(self.netns_files(), Vec::<String>::new(), "netns files left");
        assert_eq!(self.mounts(), Vec::<String>::new(), "mounts left");
    }
}

fn links() -> String {
    let out: Output = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The host's links once removed containers' veths are gone. The kernel deletes a veth
/// with its namespace, in the background (rm doesn't wait for it: see
/// `NetworkStore::release`); on a busy machine that can take a moment.
fn links_after_rm() -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let l = links();
        if !l.contains("bth") || Instant::now() > deadline {
            return l;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ruleset() -> String {
    let out = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `GET /` over TCP from the test's side of the namespace.
fn http_get(addr: &str) -> Option<String> {
    let addr: SocketAddr = addr.parse().ok()?;
    // Generous: the server starts in a container on a possibly busy machine; a working
    // one answers at once.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let attempt = (|| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
            let mut body = String::new();
            s.read_to_string(&mut body).ok()?;
            Some(body).filter(|b| !b.is_empty())
        })();
        if attempt.is_some() || Instant::now() > deadline {
            return attempt;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn user_network_names_ping_tcp_and_isolation() {
    in_netns("user_network_names_ping_tcp_and_isolation", || {
        let env = Env::new(&SUITE, "names");
        env.ok(&["network", "create", "front"]);
        env.ok(&["network", "create", "back"]);
        env.server(
            &[
                "--name",
                "web",
                "--network",
                "front",
                "--network-alias",
                "www",
            ],
            "hello-from-web",
        );
        // By name and alias: ping and TCP.
        let ping = env.run(&[
            "run",
            "--rm",
            "--network",
            "front",
            "bb",
            "sh",
            "-c",
            "ping -c1 -W2 web && ping -c1 -W2 www",
        ]);
        assert_eq!(ping.code, Some(0), "{}{}", ping.stdout, ping.stderr);
        assert!(env.fetch_from("front", "web").contains("hello-from-web"));
        assert!(env.fetch_from("front", "www").contains("hello-from-web"));
        // Another network: neither the name nor the address reaches it.
        let ip = env.ip_of("web");
        assert!(ip.starts_with("172."), "{ip}");
        let other = env.run(&[
            "run",
            "--rm",
            "--network",
            "back",
            "bb",
            "sh",
            "-c",
            &format!("ping -c1 -W1 web; ping -c1 -W1 {ip} && echo REACHED; exit 0"),
        ]);
        assert!(!other.stdout.contains("REACHED"), "{}", other.stdout);
        assert!(!env.fetch_once("back", &ip).contains("hello-from-web"));
        // Its files: hosts with its own address, resolv.conf naming the network's server.
        let files = env.ok(&[
            "run",
            "--rm",
            "--network",
            "front",
            "--hostname",
            "box",
            "--add-host",
            "extra.test:10.9.8.7",
            "bb",
            "cat",
            "/etc/hosts",
            "/etc/resolv.conf",
            "/etc/hostname",
        ]);
        assert!(
            files.contains("10.9.8.7\textra.test") || files.contains("10.9.8.7 extra.test"),
            "{files}"
        );
        assert!(files.contains("\tbox") || files.contains(" box"), "{files}");
        assert!(files.contains("nameserver 172."), "{files}");
        // Renamed while running: the name server answers to the new name at once, and no
        // longer to the old one; the alias stays.
        env.ok(&["rename", "web", "web2"]);
        let renamed = env.run(&[
            "run",
            "--rm",
            "--network",
            "front",
            "bb",
            "sh",
            "-c",
            "ping -c1 -W2 web2 && ping -c1 -W2 www && if ping -c1 -W1 web; then echo OLD_NAME; fi",
        ]);
        assert_eq!(
            renamed.code,
            Some(0),
            "{}{}",
            renamed.stdout,
            renamed.stderr
        );
        assert!(!renamed.stdout.contains("OLD_NAME"), "{}", renamed.stdout);
        env.ok(&["rm", "-f", "web2"]);
    });
}

#[test]
fn published_port_reaches_the_container_from_the_host_side() {
    in_netns(
        "published_port_reaches_the_container_from_the_host_side",
        || {
            let env = Env::new(&SUITE, "ports");
            env.ok(&["network", "create", "pub"]);
            env.server(
                &[
                    "--name",
                    "srv",
                    "--network",
                    "pub",
                    "-p",
                    "8080:7000",
                    "-p",
                    "7000",
                ],
                "published-body",
            );
            let gw = env.network("pub")["IPAM"]["Config"][0]["Gateway"]
                .as_str()
                .expect("gateway")
                .to_string();
            // 127.0.0.1 (the proxy) and a non-loopback address of this namespace (DNAT).
            let body = http_get("127.0.0.1:8080").expect("127.0.0.1:8080");
            assert!(body.contains("published-body"), "{body}");
            let body = http_get(&format!("{gw}:8080")).expect("gateway:8080");
            assert!(body.contains("published-body"), "{body}");
            // `-p 7000` got a free port; `berth port` and inspect say which.
            let ports = env.ok(&["port", "srv"]);
            assert!(ports.contains("7000/tcp -> 0.0.0.0:8080"), "{ports}");
            let any = ports
                .lines()
                .find(|l| !l.ends_with(":8080"))
                .and_then(|l| l.rsplit(':').next())
                .expect("second port")
                .to_string();
            let body = http_get(&format!("127.0.0.1:{any}")).expect("free port");
            assert!(body.contains("published-body"));
            let settings = &env.inspect("srv")["NetworkSettings"];
            assert_eq!(settings["Ports"]["7000/tcp"][0]["HostPort"], "8080");
            assert!(settings["Networks"]["pub"]["IPAddress"]
                .as_str()
                .is_some_and(|ip| ip.starts_with("172.")));
            let ps = env.ok(&["ps"]);
            assert!(ps.contains("0.0.0.0:8080->7000/tcp"), "{ps}");
            // Stopped: the port is free again; a restart publishes it again.
            env.ok(&["stop", "-t", "1", "srv"]);
            assert!(http_get("127.0.0.1:8080").is_none());
            TcpListener::bind("0.0.0.0:8080")
                .expect("port 8080 free after stop")
                .set_nonblocking(true)
                .expect("listener");
            env.ok(&["start", "srv"]);
            let body = http_get("127.0.0.1:8080").expect("after restart");
            assert!(body.contains("published-body"));
            env.ok(&["rm", "-f", "srv"]);
            // -P: the image's EXPOSEd ports, each on a free host port.
            let ctx = env.root.join("exposing");
            fs::create_dir_all(&ctx).expect("context");
            fs::write(ctx.join("Dockerfile"), "FROM bb\nEXPOSE 7000/tcp\n").expect("Dockerfile");
            env.ok(&["build", "-q", "-t", "bbexp", ctx.to_str().expect("utf8")]);
            let script = "mkdir -p /www && echo exposed-body > /www/index.html && exec httpd -f -p 7000 -h /www";
            env.ok(&[
                "run",
                "-d",
                "--name",
                "exp",
                "--network",
                "pub",
                "-P",
                "bbexp",
                "sh",
                "-c",
                script,
            ]);
            let ports = env.ok(&["port", "exp"]);
            let port = ports
                .lines()
                .find(|l| l.starts_with("7000/tcp -> 0.0.0.0:"))
                .and_then(|l| l.rsplit(':').next())
                .unwrap_or_else(|| panic!("-P published nothing: {ports:?}"))
                .to_string();
            let body = http_get(&format!("127.0.0.1:{port}")).expect("-P port");
            assert!(body.contains("exposed-body"), "{body}");
            env.ok(&["rm", "-f", "exp"]);
        },
    );
}

#[test]
fn no_network_has_only_lo_and_it_is_up() {
    in_netns("no_network_has_only_lo_and_it_is_up", || {
        let env = Env::new(&SUITE, "none");
        let out = env.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "bb",
            "sh",
            "-c",
            "ip -o link; ip -o addr; ping -c1 -W1 127.0.0.1 >/dev/null && echo LO_OK",
        ]);
        let link_lines: Vec<&str> = out.lines().filter(|l| l.contains("link/")).collect();
        assert_eq!(link_lines.len(), 1, "{out}");
        assert!(
            link_lines[0].contains("lo:") && link_lines[0].contains("UP"),
            "{out}"
        );
        assert!(out.contains("127.0.0.1/8"), "{out}");
        assert!(out.contains("LO_OK"), "{out}");
        assert_eq!(env.netns_files(), Vec::<String>::new());
    });
}

#[test]
fn default_bridge_and_container_mode() {
    in_netns("default_bridge_and_container_mode", || {
        let env = Env::new(&SUITE, "default");
        let id = env.server(&["--name", "first", "--network", "bridge"], "default-body");
        let ip = env.ip_of("first");
        assert!(ip.starts_with("172.17."), "{ip}");
        // The default network has no name server: --dns (else the host's) in resolv.conf.
        // Without --network: the default bridge too, as docker.
        let addr = env.ok(&["run", "--rm", "bb", "ip", "-4", "addr"]);
        assert!(addr.contains("inet 172.17."), "{addr}");
        let resolv = env.ok(&[
            "run",
            "--rm",
            "--dns",
            "10.1.2.3",
            "bb",
            "cat",
            "/etc/resolv.conf",
        ]);
        assert!(resolv.contains("nameserver 10.1.2.3"), "{resolv}");
        assert_eq!(
            env.inspect("first")["HostConfig"]["NetworkMode"],
            "bridge",
            "the default network"
        );
        // The default network has no name server: by address.
        assert!(env.fetch_from("bridge", &ip).contains("default-body"));
        // container:NAME shares its namespace.
        let shared = env.ok(&[
            "run",
            "--rm",
            "--network",
            "container:first",
            "bb",
            "ip",
            "-o",
            "addr",
        ]);
        assert!(shared.contains(&ip), "{shared}");
        env.ok(&["rm", "-f", &id]);
    });
}

#[test]
fn connect_and_disconnect_a_running_container() {
    in_netns("connect_and_disconnect_a_running_container", || {
        let env = Env::new(&SUITE, "connect");
        env.ok(&["network", "create", "one"]);
        env.ok(&["network", "create", "two"]);
        env.server(&["--name", "multi", "--network", "one"], "multi-body");
        env.ok(&["network", "connect", "--alias", "m2", "two", "multi"]);
        assert!(env.fetch_from("two", "m2").contains("multi-body"));
        assert!(env.fetch_from("two", "multi").contains("multi-body"));
        let nets = env.inspect("multi")["NetworkSettings"]["Networks"].clone();
        assert!(nets["one"].is_object() && nets["two"].is_object(), "{nets}");
        env.ok(&["network", "disconnect", "two", "multi"]);
        assert!(!env.fetch_once("two", "multi").contains("multi-body"));
        assert!(env.fetch_from("one", "multi").contains("multi-body"));
        // A network a container is on can't be removed, even once it is stopped.
        env.ok(&["stop", "-t", "1", "multi"]);
        let r = env.run(&["network", "rm", "one"]);
        assert_ne!(r.code, Some(0));
        assert!(r.stderr.contains("multi"), "{}", r.stderr);
        // A stopped container joins on its next start.
        env.ok(&["network", "connect", "two", "multi"]);
        env.ok(&["start", "multi"]);
        assert!(env.fetch_from("two", "multi").contains("multi-body"));
        let host_config = env.inspect("multi")["HostConfig"].clone();
        assert_eq!(host_config["NetworkMode"], "one");
        env.ok(&["rm", "-f", "multi"]);
        env.ok(&["network", "rm", "one", "two"]);
    });
}

#[test]
fn after_rm_no_veth_rule_or_lease_remains() {
    in_netns("after_rm_no_veth_rule_or_lease_remains", || {
        let env = Env::new(&SUITE, "rm");
        env.ok(&["network", "create", "--subnet", "10.77.0.0/24", "clean"]);
        let before_links = links();
        env.server(
            &[
                "--name",
                "gone",
                "--network",
                "clean",
                "--ip",
                "10.77.0.50",
                "-p",
                "9090:7000",
            ],
            "x",
        );
        assert_eq!(env.ip_of("gone"), "10.77.0.50");
        assert!(links().contains("bth"), "{}", links());
        assert!(ruleset().contains("9090"), "{}", ruleset());
        assert_eq!(
            env.network("clean")["Containers"]
                .as_object()
                .map(|o| o.len()),
            Some(1)
        );
        // A restart keeps the asked-for address.
        env.ok(&["restart", "-t", "1", "gone"]);
        assert_eq!(env.ip_of("gone"), "10.77.0.50");
        env.ok(&["rm", "-f", "gone"]);
        let after = links_after_rm();
        assert!(!after.contains("bth"), "{after}");
        assert_eq!(after.lines().count(), before_links.lines().count());
        assert!(!ruleset().contains("9090"), "{}", ruleset());
        assert_eq!(
            env.network("clean")["Containers"]
                .as_object()
                .map(|o| o.len()),
            Some(0)
        );
        env.assert_nothing_half_made();
        // --rm after a normal exit too.
        env.ok(&[
            "run",
            "--rm",
            "--network",
            "clean",
            "-p",
            "9091:7000",
            "bb",
            "true",
        ]);
        let after = links_after_rm();
        assert!(!after.contains("bth"), "{after}");
        assert!(!ruleset().contains("9091"));
        env.assert_nothing_half_made();
        env.ok(&["network", "rm", "clean"]);
        assert!(!ruleset().contains("table ip berth"), "{}", ruleset());
    });
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    in_netns("bad_input_is_refused_and_leaves_nothing", || {
        let env = Env::new(&SUITE, "bad");
        env.refused(
            &["run", "--network", "nosuchnet", "bb", "true"],
            "nosuchnet",
        );
        env.assert_nothing_half_made();
        env.ok(&["network", "create", "--subnet", "10.88.0.0/24", "busy"]);
        let r = env.run(&["network", "create", "--subnet", "10.88.0.128/25", "overlap"]);
        assert_ne!(r.code, Some(0));
        assert!(r.stderr.contains("overlaps"), "{}", r.stderr);
        env.refused(
            &[
                "run",
                "--network",
                "busy",
                "--ip",
                "10.99.0.5",
                "bb",
                "true",
            ],
            "10.99.0.5",
        );
        env.refused(
            &["run", "--network", "none", "-p", "80", "bb", "true"],
            "-p",
        );
        env.refused(
            &["run", "--network", "busy", "-p", "80:99999", "bb", "true"],
            "99999",
        );
        env.assert_nothing_half_made();

        env.server(
            &[
                "--name",
                "holder",
                "--network",
                "busy",
                "--ip",
                "10.88.0.9",
                "-p",
                "8081:7000",
            ],
            "x",
        );
        let ids = env.ids();
        // Address in use.
        env.refused(
            &[
                "run",
                "--network",
                "busy",
                "--ip",
                "10.88.0.9",
                "bb",
                "true",
            ],
            "10.88.0.9",
        );
        // Port published by another container.
        env.refused(
            &["run", "--network", "busy", "-p", "8081:7000", "bb", "true"],
            "8081",
        );
        // Port bound by a process that isn't berth's.
        let _taken = TcpListener::bind("0.0.0.0:8082").expect("bind 8082");
        env.refused(
            &["run", "--network", "busy", "-p", "8082:7000", "bb", "true"],
            "8082",
        );
        assert_eq!(env.ids(), ids, "a refused run left a record");
        assert_eq!(env.netns_files().len(), 1, "{:?}", env.netns_files());
        assert_eq!(
            env.network("busy")["Containers"]
                .as_object()
                .map(|o| o.len()),
            Some(1)
        );
        env.ok(&["rm", "-f", "holder"]);
        env.assert_nothing_half_made();
    });
}

#[test]
fn a_killed_monitor_or_a_wiped_run_root_does_not_block_the_next_start() {
    in_netns(
        "a_killed_monitor_or_a_wiped_run_root_does_not_block_the_next_start",
        || {
            let env = Env::new(&SUITE, "crash");
            env.ok(&["network", "create", "--subnet", "10.66.0.0/24", "crashnet"]);
            let id = env.server(
                &[
                    "--name",
                    "crash",
                    "--network",
                    "crashnet",
                    "--ip",
                    "10.66.0.7",
                    "-p",
                    "8085:7000",
                ],
                "crash-body",
            );
            let kill_all = || {
                let pid = env.inspect("crash")["State"]["Pid"].as_i64().expect("pid");
                let monitor = Command::new("pgrep")
                    .args(["-f", &format!("container-monitor.*{id}")])
                    .output()
                    .expect("pgrep");
                for p in String::from_utf8_lossy(&monitor.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", p]).status();
                }
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                std::thread::sleep(Duration::from_millis(300));
            };
            // The monitor dies with the container: the next start releases and attaches.
            kill_all();
            env.ok(&["start", "crash"]);
            assert_eq!(env.ip_of("crash"), "10.66.0.7");
            assert!(http_get("127.0.0.1:8085").is_some_and(|b| b.contains("crash-body")));
            // As after a reboot: the run root's namespace files and markers are gone too.
            kill_all();
            for m in env.mounts().iter().filter(|m| m.contains("/netns/")) {
                nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH).expect("umount");
            }
            let _ = fs::remove_dir_all(env.run_root.join("netns"));
            let _ = fs::remove_file(
                env.run_root
                    .join("containers")
                    .join(&id)
                    .join("network-attached"),
            );
            env.ok(&["start", "crash"]);
            assert_eq!(env.ip_of("crash"), "10.66.0.7");
            assert!(http_get("127.0.0.1:8085").is_some_and(|b| b.contains("crash-body")));
            // A dead container's port and address are taken back by a container asking
            // for them (its name in the error while it is alive).
            env.refused(
                &[
                    "run",
                    "--network",
                    "crashnet",
                    "-p",
                    "8085:7000",
                    "bb",
                    "true",
                ],
                "by container crash",
            );
            kill_all();
            env.server(
                &[
                    "--name",
                    "taker",
                    "--network",
                    "crashnet",
                    "--ip",
                    "10.66.0.7",
                    "-p",
                    "8085:7000",
                ],
                "taker-body",
            );
            assert!(http_get("127.0.0.1:8085").is_some_and(|b| b.contains("taker-body")));
            env.ok(&["rm", "-f", "taker"]);
            // `network prune` reconciles: a dead container's ports and lease go back.
            env.ok(&["start", "crash"]);
            kill_all();
            env.ok(&["network", "prune", "-f"]);
            assert_eq!(
                env.network("crashnet")["Containers"]
                    .as_object()
                    .map(|o| o.len()),
                Some(0)
            );
            assert!(!ruleset().contains("8085"), "{}", ruleset());
            let after = links_after_rm();
            assert!(!after.contains("bth"), "{after}");
            // After a reboot (the run root's marker went with /run) the first command of
            // any kind releases what a dead container held.
            env.ok(&["start", "crash"]);
            kill_all();
            assert!(ruleset().contains("8085"), "{}", ruleset());
            fs::remove_file(env.run_root.join("reconciled")).expect("the boot marker");
            env.ok(&["ps", "-a"]);
            assert_eq!(
                env.network("crashnet")["Containers"]
                    .as_object()
                    .map(|o| o.len()),
                Some(0)
            );
            assert!(!ruleset().contains("8085"), "{}", ruleset());
            env.ok(&["rm", "crash"]);
            env.assert_nothing_half_made();
        },
    );
}
