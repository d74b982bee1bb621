//! The network layer end to end, each case in a network namespace (and mount namespace) of
//! its own that this binary makes: bridges, firewall and name servers live there, the
//! "containers" are network namespace files with busybox processes started in them through
//! nsenter. No packet goes to an address outside the case's namespaces.
//!
//! A custom harness (harness = false) because the cases need a fresh namespace each, made
//! before any thread exists, and because the network layer's helper processes (name server,
//! port proxy) are started from the running executable: this binary runs them too.
//! `topology [FILTER...]` runs every case (each in a child `topology --case NAME`).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_net::{
    firewall, netns, parse_publish, AttachRequest, Attachment, CreateOptions, Error, HelperCommand,
    NetworkAttach, NetworkStore,
};
use nix::sched::CloneFlags;

type Case = (&'static str, fn(&Ctx));

const CASES: &[Case] = &[
    ("user_network_names_ping_tcp_and_isolation", user_network),
    ("published_ports_reach_the_container", published_ports),
    ("no_network_namespace_has_only_lo", no_network),
    ("bad_input_leaves_nothing", bad_input),
    ("connect_and_disconnect", connect_disconnect),
    (
        "reconcile_and_prune_clean_up_after_a_crash",
        reconcile_and_prune,
    ),
    (
        "release_frees_everything_and_restart_is_immediate",
        release_and_restart,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some(berth_net::dns::ROLE) => berth_net::dns::serve_main(&args[2..]),
        Some(berth_net::proxy::ROLE) => berth_net::proxy::proxy_main(&args[2..]),
        Some("--case") => run_case(args.get(2).map(String::as_str).unwrap_or("")),
        _ => run_all(&args[1..]),
    };
    std::process::exit(code);
}

fn run_all(args: &[String]) -> i32 {
    if args.iter().any(|a| a == "--list") {
        for (name, _) in CASES {
            println!("{name}: test");
        }
        return 0;
    }
    // libtest's options: filters, --skip F, --exact; the rest (--test-threads N,
    // --nocapture, ...) mean nothing here.
    let (mut filters, mut skips, mut exact) = (Vec::new(), Vec::new(), false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--skip" => skips.extend(it.next().cloned()),
            "--exact" => exact = true,
            "--test-threads" | "--color" | "--format" | "--logfile" | "-Z" => {
                it.next();
            }
            a if a.starts_with('-') => {}
            a => filters.push(a.to_string()),
        }
    }
    let matches = |n: &str, f: &String| {
        if exact {
            n == f
        } else {
            n.contains(f.as_str())
        }
    };
    let exe = std::env::current_exe().expect("current exe");
    let selected: Vec<&Case> = CASES
        .iter()
        .filter(|(n, _)| filters.is_empty() || filters.iter().any(|f| matches(n, f)))
        .filter(|(n, _)| !skips.iter().any(|f| matches(n, f)))
        .collect();
    if !nix::unistd::geteuid().is_root() {
        println!("\nrunning 0 tests (network namespaces need root: skipped)");
        println!("\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n");
        return 0;
    }
    println!("\nrunning {} tests", selected.len());
    let (mut passed, mut failed) = (0, Vec::new());
    for (name, _) in selected {
        let start = Instant::now();
        let out = run_with_timeout(&exe, name, Duration::from_secs(180));
        if out.status.success() {
            println!("test {name} ... ok ({:.1}s)", start.elapsed().as_secs_f64());
            passed += 1;
        } else {
            println!("test {name} ... FAILED");
            failed.push((name, out));
        }
    }
    for (name, out) in &failed {
        println!(
            "\n---- {name} stdout ----\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        println!(
            "---- {name} stderr ----\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; 0 filtered out\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len()
    );
    i32::from(!failed.is_empty())
}

/// A case in its own process; one that hangs is killed (with the name servers it started,
/// found by its temporary directory) and fails.
fn run_with_timeout(exe: &Path, name: &str, limit: Duration) -> Output {
    let mut child = Command::new(exe)
        .args(["--case", name])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run case");
    let pid = child.id();
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_end(&mut s);
        }
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_end(&mut s);
        }
        s
    });
    let deadline = Instant::now() + limit;
    let mut timed_out = false;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            let tmp = format!("berth-net-test-{pid}");
            for (helper, cmd) in all_processes() {
                if cmd.contains(&tmp) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(helper),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            let _ = std::fs::remove_dir_all(std::env::temp_dir().join(tmp));
            break child.wait().expect("wait case");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = err_reader.join().unwrap_or_default();
    if timed_out {
        stderr.extend_from_slice(format!("timed out after {limit:?}\n").as_bytes());
    }
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr,
    }
}

/// (pid, command line) of every process.
fn all_processes() -> Vec<(i32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect()
}

/// One case: private network and mount namespaces, this process the subreaper of every
/// helper it starts; afterwards any process still around is a leak (and killed).
fn run_case(name: &str) -> i32 {
    let Some((_, case)) = CASES.iter().find(|(n, _)| *n == name) else {
        eprintln!("no case {name}");
        return 2;
    };
    nix::sched::unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS).expect("unshare");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
    nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
    run(&["busybox", "ip", "link", "set", "lo", "up"]);
    let ctx = Ctx::new();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&ctx)));
    drop(ctx);
    let leftovers = kill_children();
    match res {
        Ok(()) if leftovers.is_empty() => 0,
        Ok(()) => {
            eprintln!("processes left behind: {leftovers:?}");
            1
        }
        Err(_) => 101,
    }
}

/// Kill and reap every child still there (helpers adopted by this subreaper included).
fn kill_children() -> Vec<String> {
    let mut left = Vec::new();
    let me = std::process::id();
    let children =
        std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
    for pid in children
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let pid = nix::unistd::Pid::from_raw(pid);
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z"))
            .unwrap_or(true);
        if !zombie {
            left.push(cmd);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        let _ = nix::sys::wait::waitpid(pid, None);
    }
    left
}

// ---- fixtures -----------------------------------------------------------------------

struct Ctx {
    dir: PathBuf,
    root: PathBuf,
    run_root: PathBuf,
    store: NetworkStore,
}

impl Ctx {
    fn new() -> Ctx {
        let dir = std::env::temp_dir().join(format!("berth-net-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let root = dir.join("root");
        let run_root = dir.join("run");
        let resolv = dir.join("host-resolv.conf");
        std::fs::write(
            &resolv,
            "search test.invalid\nnameserver 127.0.0.53\nnameserver 10.9.9.9\n",
        )
        .expect("write resolv.conf");
        let store = NetworkStore::open(&root, &run_root)
            .expect("open store")
            .with_helper(HelperCommand::current_exe().expect("exe"))
            .with_dns_upstream(Vec::new())
            .with_host_resolv_conf(&resolv);
        Ctx {
            dir,
            root,
            run_root,
            store,
        }
    }

    fn container(&self, name: &str) -> Ctr<'_> {
        let id = format!("{name}{}", "0123456789abcdef".repeat(4))[..64].to_string();
        let netns = netns::create(&self.run_root, &id).expect("create netns");
        Ctr {
            ctx: self,
            id,
            name: name.to_string(),
            netns,
            procs: Vec::new(),
        }
    }

    fn create(&self, name: &str, subnet: Option<&str>) -> berth_net::Network {
        self.store
            .create(&CreateOptions {
                name: name.into(),
                subnet: subnet.map(Into::into),
                gateway: None,
            })
            .expect("create network")
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if let Ok(nets) = self.store.list() {
            for n in nets {
                let _ = self.store.remove(&n.name);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = &self.root;
    }
}

/// A "container": a netns file, processes started in it; dropping it detaches it.
struct Ctr<'a> {
    ctx: &'a Ctx,
    id: String,
    name: String,
    netns: PathBuf,
    procs: Vec<Child>,
}

impl Ctr<'_> {
    fn request(
        &self,
        networks: &[(&str, &[&str], Option<Ipv4Addr>)],
        ports: &[&str],
    ) -> AttachRequest<'_> {
        AttachRequest {
            container_id: &self.id,
            container_name: &self.name,
            hostname: &self.id[..12],
            netns: &self.netns,
            networks: networks
                .iter()
                .map(|(n, aliases, ip)| NetworkAttach {
                    name: n.to_string(),
                    aliases: aliases.iter().map(|a| a.to_string()).collect(),
                    ip: *ip,
                })
                .collect(),
            ports: ports
                .iter()
                .map(|p| parse_publish(p).expect("publish"))
                .collect(),
            dns: Vec::new(),
            extra_hosts: vec![("extra".into(), IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))],
        }
    }

    fn attach(&self, network: &str, aliases: &[&str]) -> Attachment {
        self.ctx
            .store
            .attach(&self.request(&[(network, aliases, None)], &[]))
            .expect("attach")
    }

    /// busybox httpd serving "hello from NAME" on `port`.
    fn serve(&mut self, port: u16) {
        let www = self.ctx.dir.join(format!("www-{}", self.name));
        std::fs::create_dir_all(&www).expect("mkdir www");
        std::fs::write(
            www.join("index.html"),
            format!("hello from {}\n", self.name),
        )
        .expect("index");
        let child = Command::new("nsenter")
            .arg(format!("--net={}", self.netns.display()))
            .args(["busybox", "httpd", "-f", "-p", &port.to_string(), "-h"])
            .arg(&www)
            .stdin(Stdio::null())
            .spawn()
            .expect("start httpd");
        self.procs.push(child);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self
            .exec(&["busybox", "netstat", "-ltn"])
            .contains(&format!(":{port} "))
        {
            assert!(Instant::now() < deadline, "httpd on {port} never listened");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn exec_output(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net={}", self.netns.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// stdout + stderr of a command in the container's network namespace.
    fn exec(&self, args: &[&str]) -> String {
        let o = self.exec_output(args);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    fn ok(&self, args: &[&str]) -> bool {
        self.exec_output(args).status.success()
    }

    fn links(&self) -> Vec<String> {
        link_names(&self.exec(&["busybox", "ip", "-o", "link"]))
    }

    /// HTTP GET from inside the container with busybox nc (busybox-static's wget
    /// crashes here); the body, None when the connection fails.
    fn http_get(&self, addr: &str) -> Option<String> {
        let (host, port) = addr.rsplit_once(':')?;
        let script = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 2 {host} {port}");
        let o = self.exec_output(&["busybox", "sh", "-c", &script]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        (o.status.success() && out.starts_with("HTTP/1.1 200"))
            .then(|| out.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
    }
}

impl Ctr<'_> {
    fn stop(&mut self) {
        for mut p in self.procs.drain(..) {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl Drop for Ctr<'_> {
    fn drop(&mut self) {
        self.stop();
        let _ = self.ctx.store.detach(&self.id);
        let _ = netns::remove(&self.netns);
    }
}

fn run(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn link_names(ip_o_link: &str) -> Vec<String> {
    ip_o_link
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

fn host_links() -> Vec<String> {
    link_names(&run(&["busybox", "ip", "-o", "link"]))
}

fn berth_veths() -> Vec<String> {
    host_links()
        .into_iter()
        .filter(|l| berth_net::veth::is_host_veth_name(l))
        .collect()
}

/// A host-side HTTP GET (this case's namespace), None when the connection fails.
fn http_get(addr: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// An A question over TCP to `server` (from the host side), by hand: busybox's nslookup
/// only speaks UDP.
fn tcp_lookup(server: Ipv4Addr, name: &str) -> Option<Ipv4Addr> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.push(name.len() as u8);
    q.extend_from_slice(name.as_bytes());
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut s = TcpStream::connect_timeout(&(server, 53).into(), Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(&(q.len() as u16).to_be_bytes()).ok()?;
    s.write_all(&q).ok()?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut reply).ok()?;
    let answers = u16::from_be_bytes([reply[6], reply[7]]);
    (reply[..2] == [0x12, 0x34] && answers == 1).then(|| {
        let ip = &reply[reply.len() - 4..];
        Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])
    })
}

fn nslookup(from: &Ctr, name: &str, server: Ipv4Addr) -> Option<Ipv4Addr> {
    let out = from.exec(&["busybox", "nslookup", "-type=a", name, &server.to_string()]);
    // busybox prints the server first ("Server: x", "Address: x:53"), then the answers.
    out.split("Name:")
        .nth(1)?
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Address:"))
        .filter_map(|a| a.trim().parse().ok())
        .next()
}

// ---- cases --------------------------------------------------------------------------

fn user_network(ctx: &Ctx) {
    let front = ctx.create("front", None);
    let back = ctx.create("back", Some("10.77.0.0/24"));
    assert_eq!(front.subnet.to_string(), "172.18.0.0/24");
    assert_eq!(back.gateway, Ipv4Addr::new(10, 77, 0, 1));
    assert!(host_links().contains(&front.bridge));

    let a = ctx.container("alpha");
    let mut b = ctx.container("beta");
    let mut c = ctx.container("gamma");
    let att_a = a.attach("front", &[]);
    let att_b = b.attach("front", &["db"]);
    let att_c = c.attach("back", &[]);
    let (ip_a, ip_b) = (att_a.interfaces[0].ip, att_b.interfaces[0].ip);
    assert_eq!(ip_a, Ipv4Addr::new(172, 18, 0, 2));
    assert_eq!(ip_b, Ipv4Addr::new(172, 18, 0, 3));
    assert_eq!(att_a.interfaces[0].mac, "02:42:ac:12:00:02");
    assert_eq!(
        att_a.resolv_conf,
        "search test.invalid\nnameserver 172.18.0.1\n"
    );
    assert!(att_b
        .hosts
        .ends_with(&format!("10.1.2.3\textra\n{ip_b}\t{}\n", &b.id[..12])));
    assert_eq!(att_b.hostname, format!("{}\n", &b.id[..12]));
    assert_eq!(a.links(), vec!["lo", "eth0"]);
    assert!(a
        .exec(&["busybox", "ip", "route"])
        .contains("default via 172.18.0.1 dev eth0"));
    b.serve(7000);
    c.serve(7000);

    // Names and aliases through the network's name server.
    let gw = front.gateway;
    assert_eq!(nslookup(&a, "beta", gw), Some(ip_b));
    assert_eq!(nslookup(&a, "DB", gw), Some(ip_b));
    assert_eq!(nslookup(&b, "alpha", gw), Some(ip_a));
    assert_eq!(nslookup(&a, &b.id[..12], gw), Some(ip_b));
    assert_eq!(
        nslookup(&a, "gamma", gw),
        None,
        "gamma is on another network"
    );
    assert_eq!(nslookup(&c, "beta", back.gateway), None);
    assert_eq!(
        nslookup(&c, "beta", gw),
        None,
        "another network's server refuses"
    );

    // Ping and TCP by name (the name resolved by the network's server, as the
    // container's resolver would).
    assert!(a.ok(&["busybox", "ping", "-c", "1", "-W", "2", &ip_b.to_string()]));
    assert!(b.ok(&["busybox", "ping", "-c", "1", "-W", "2", &ip_a.to_string()]));
    let by_name = nslookup(&a, "db", gw).expect("db resolves");
    assert_eq!(
        a.http_get(&format!("{by_name}:7000")).as_deref(),
        Some("hello from beta\n")
    );

    // Another network can't reach them, and they can't reach it.
    let ip_c = att_c.interfaces[0].ip;
    assert!(!c.ok(&["busybox", "ping", "-c", "1", "-W", "1", &ip_b.to_string()]));
    assert_eq!(c.http_get(&format!("{ip_b}:7000")), None);
    assert!(!a.ok(&["busybox", "ping", "-c", "1", "-W", "1", &ip_c.to_string()]));
    assert_eq!(a.http_get(&format!("{ip_c}:7000")), None);
    // ... while the host side reaches both (routing works; only bridge-to-bridge is cut).
    assert!(http_get(&format!("{ip_c}:7000")).is_some());

    assert_eq!(tcp_lookup(gw, "beta"), Some(ip_b), "DNS over TCP");
    assert_eq!(tcp_lookup(gw, "gamma"), None);

    // Names a network's server doesn't know go to the asking container's --dns (here
    // the other network's server, on the host side), else nowhere (no upstream here).
    let d = ctx.container("delta");
    let mut req = d.request(&[("back", &[], None)], &[]);
    req.dns = vec![IpAddr::V4(gw)];
    let att_d = ctx.store.attach(&req).expect("attach delta");
    assert_eq!(
        att_d.resolv_conf,
        "search test.invalid\nnameserver 10.77.0.1\n"
    );
    assert_eq!(nslookup(&d, "alpha", back.gateway), Some(ip_a));
    assert_eq!(nslookup(&c, "alpha", back.gateway), None);
    assert_eq!(nslookup(&d, "gamma", back.gateway), Some(ip_c));
    ctx.store.detach(&d.id).expect("detach delta");

    // The name server follows containers going away.
    ctx.store.detach(&b.id).expect("detach beta");
    assert_eq!(nslookup(&a, "beta", gw), None);
    assert!(!b.links().contains(&"eth0".to_string()));
    ctx.store.detach(&a.id).expect("detach alpha");
    ctx.store.detach(&c.id).expect("detach gamma");
    assert!(berth_veths().is_empty(), "veths left: {:?}", berth_veths());
    assert!(ctx.store.inspect("front").unwrap().containers.is_empty());

    // rm takes bridge, rules and name server.
    ctx.store.remove("front").expect("rm front");
    ctx.store
        .remove(&back.id[..8])
        .expect("rm back by id prefix");
    let links = host_links();
    assert!(!links.contains(&front.bridge) && !links.contains(&back.bridge));
    assert_eq!(firewall::list_table(), "", "no firewall table left");
    assert!(matches!(
        ctx.store.inspect("front"),
        Err(Error::NetworkNotFound(_))
    ));
}

fn published_ports(ctx: &Ctx) {
    let mut s = ctx.container("server");
    let att = ctx
        .store
        .attach(&s.request(
            &[("bridge", &[], None)],
            &["8080:7000", "127.0.0.1:8081:7000", "7000", "5353:7000/udp"],
        ))
        .expect("attach with ports");
    let ip = att.interfaces[0].ip;
    assert_eq!(ip, Ipv4Addr::new(172, 17, 0, 2));
    assert!(host_links().contains(&"berth0".to_string()));
    // The default network has no name server: the host's resolvers (minus loopback).
    assert_eq!(
        att.resolv_conf,
        "search test.invalid\nnameserver 10.9.9.9\n"
    );
    assert_eq!(att.ports[0].host_port, 8080);
    let random = att.ports[2].host_port;
    assert!(random != 0 && random != 7000);
    s.serve(7000);

    // Through DNAT (a non-loopback address of the host side) and through the proxy.
    let gw = att.interfaces[0].gateway;
    for addr in [
        format!("{gw}:8080"),
        "127.0.0.1:8080".into(),
        "127.0.0.1:8081".into(),
        format!("127.0.0.1:{random}"),
    ] {
        let body = http_get(&addr).unwrap_or_else(|| panic!("{addr} unreachable"));
        assert!(body.contains("hello from server"), "{addr}: {body}");
    }
    assert!(
        http_get(&format!("{gw}:8081")).is_none(),
        "8081 is bound to 127.0.0.1 only"
    );
    let table = firewall::list_table();
    assert!(table.contains("8080 : 172.17.0.2 . 7000"), "{table}");
    assert_eq!(ctx.store.ports(&s.id).unwrap(), att.ports);

    // The same port again: refused, nothing of the second container left.
    let t = ctx.container("taken");
    let err = ctx
        .store
        .attach(&t.request(&[("bridge", &[], None)], &["8080:80"]))
        .expect_err("port in use");
    assert!(
        matches!(
            err,
            Error::PortAllocated {
                host_port: 8080,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&s.id), "{err}");
    // A port another program holds.
    let _holder = TcpListener::bind("0.0.0.0:9090").expect("bind 9090");
    let err = ctx
        .store
        .attach(&t.request(&[("bridge", &[], None)], &["9090:80"]))
        .expect_err("port bound");
    assert!(
        matches!(
            err,
            Error::PortBind {
                host_port: 9090,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("9090"), "{err}");
    assert_eq!(ctx.store.inspect("bridge").unwrap().containers.len(), 1);
    assert_eq!(t.links(), vec!["lo"]);
    assert_eq!(berth_veths().len(), 1);

    // Detach: no DNAT element, no proxy, no lease, no veth.
    ctx.store.detach(&s.id).expect("detach");
    let table = firewall::list_table();
    assert!(!table.contains("172.17.0.2"), "{table}");
    assert!(http_get("127.0.0.1:8080").is_none());
    assert!(http_get(&format!("{gw}:8080")).is_none());
    assert!(ctx.store.ports(&s.id).unwrap().is_empty());
    assert!(berth_veths().is_empty());
    assert!(ctx.store.inspect("bridge").unwrap().containers.is_empty());
    // The port is free for another container now.
    let again = ctx
        .store
        .attach(&t.request(&[("bridge", &[], None)], &["8080:80"]))
        .expect("port free again");
    assert_eq!(
        again.interfaces[0].ip,
        Ipv4Addr::new(172, 17, 0, 2),
        "lease reused"
    );
}

fn no_network(ctx: &Ctx) {
    let n = ctx.container("lonely");
    assert_eq!(n.links(), vec!["lo"]);
    assert!(n.exec(&["busybox", "ip", "-o", "link"]).contains("UP"));
    assert!(n.ok(&["busybox", "ping", "-c", "1", "-W", "1", "127.0.0.1"]));
    // No networks: only the files.
    let att = ctx
        .store
        .attach(&n.request(&[], &[]))
        .expect("attach nothing");
    assert!(att.interfaces.is_empty());
    assert!(att.hosts.starts_with("127.0.0.1\tlocalhost\n"));
    let err = ctx
        .store
        .attach(&n.request(&[], &["80:80"]))
        .expect_err("ports need a network");
    assert!(matches!(err, Error::PortsNeedNetwork));
    // A second namespace file of the same name is refused; remove is idempotent.
    assert!(netns::create(&ctx.run_root, &n.id).is_err());
    assert!(netns::exists(&n.netns));
}

fn bad_input(ctx: &Ctx) {
    let net = ctx.create("one", Some("10.50.0.0/16"));
    let bridges = || {
        host_links()
            .into_iter()
            .filter(|l| l.starts_with("br-"))
            .count()
    };
    let check = |opts: CreateOptions, want: &str| {
        let before = ctx.store.list().unwrap().len();
        let err = ctx.store.create(&opts).expect_err(want);
        assert!(err.to_string().contains(want), "{err} (want {want:?})");
        assert_eq!(ctx.store.list().unwrap().len(), before);
        assert_eq!(bridges(), 1);
    };
    let opts = |name: &str, subnet: Option<&str>, gateway: Option<&str>| CreateOptions {
        name: name.into(),
        subnet: subnet.map(Into::into),
        gateway: gateway.map(Into::into),
    };
    check(
        opts("two", Some("10.50.3.0/24"), None),
        "overlaps with network one (10.50.0.0/16)",
    );
    check(
        opts("two", Some("10.0.0.0/8"), None),
        "overlaps with network one",
    );
    check(opts("one", None, None), "already exists");
    check(opts("bridge", None, None), "already exists");
    check(opts("host", None, None), "pre-defined");
    check(opts("bad name", None, None), "invalid network name");
    check(opts("two", Some("10.60.0.1/24"), None), "invalid subnet");
    check(opts("two", Some("10.60.0.0/33"), None), "invalid subnet");
    check(
        opts("two", Some("10.60.0.0/24"), Some("10.61.0.1")),
        "is not a host address",
    );
    check(
        opts("two", Some("10.60.0.0/24"), Some("nope")),
        "invalid address",
    );
    // A route of the host side (a LAN) is not overlapped either.
    run(&[
        "ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1",
    ]);
    run(&["ip", "addr", "add", "192.168.77.1/24", "dev", "lan0"]);
    run(&["ip", "link", "set", "lan1", "up"]);
    run(&["ip", "link", "set", "lan0", "up"]);
    check(
        opts("two", Some("192.168.0.0/16"), None),
        "overlaps with a route of the host on lan0 (192.168.77.0/24)",
    );

    // Attach errors leave no veth, lease, or interface in the container.
    let a = ctx.container("first");
    let b = ctx.container("second");
    let ip = Some(Ipv4Addr::new(10, 50, 0, 9));
    ctx.store
        .attach(&a.request(&[("one", &[], ip)], &[]))
        .expect("fixed address");
    let cases: Vec<(AttachRequest, &str)> = vec![
        (
            b.request(&[("one", &[], ip)], &[]),
            "address 10.50.0.9 is already in use",
        ),
        (
            b.request(&[("one", &[], Some(Ipv4Addr::new(10, 50, 0, 1)))], &[]),
            "already in use",
        ),
        (
            b.request(&[("one", &[], Some(Ipv4Addr::new(10, 51, 0, 2)))], &[]),
            "not in subnet",
        ),
        (
            b.request(&[("nowhere", &[], None)], &[]),
            "network nowhere: no such network",
        ),
        (
            b.request(&[("one", &[], None), ("nowhere", &[], None)], &[]),
            "no such network",
        ),
        (
            b.request(&[("one", &[], None), ("one", &[], None)], &[]),
            "already connected",
        ),
    ];
    for (req, want) in cases {
        let err = ctx.store.attach(&req).expect_err(want);
        assert!(err.to_string().contains(want), "{err} (want {want:?})");
        assert_eq!(b.links(), vec!["lo"], "{want}");
        assert_eq!(berth_veths().len(), 1, "{want}");
        assert_eq!(
            ctx.store.inspect("one").unwrap().containers.len(),
            1,
            "{want}"
        );
    }
    // A second attach of an attached container is refused and undoes nothing.
    let err = ctx
        .store
        .attach(&a.request(&[("one", &[], None)], &[]))
        .expect_err("twice");
    assert!(matches!(err, Error::AlreadyConnected { .. }), "{err}");
    assert_eq!(a.links(), vec!["lo", "eth0"]);
    assert_eq!(ctx.store.inspect("one").unwrap().containers.len(), 1);
    let err = ctx.store.remove("one").expect_err("in use");
    assert!(
        err.to_string().contains("has active endpoints (first)"),
        "{err}"
    );
    assert!(matches!(
        ctx.store.remove("bridge"),
        Err(Error::Predefined(..))
    ));
    assert!(matches!(
        ctx.store.remove("nowhere"),
        Err(Error::NetworkNotFound(_))
    ));
    assert!(host_links().contains(&net.bridge));
}

fn connect_disconnect(ctx: &Ctx) {
    ctx.create("n1", None);
    let n2 = ctx.create("n2", None);
    let a = ctx.container("multi");
    let peer = ctx.container("peer");
    a.attach("n1", &[]);
    let att_peer = peer.attach("n2", &[]);
    let iface = ctx
        .store
        .connect(
            &a.id,
            &a.name,
            &a.netns,
            &NetworkAttach {
                name: "n2".into(),
                aliases: vec!["second".into()],
                ip: None,
            },
        )
        .expect("connect");
    assert_eq!(iface.ifname, "eth1");
    assert!(n2.subnet.contains(iface.ip));
    assert_eq!(a.links(), vec!["lo", "eth0", "eth1"]);
    assert!(a.ok(&[
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        &att_peer.interfaces[0].ip.to_string()
    ]));
    assert_eq!(nslookup(&peer, "second", n2.gateway), Some(iface.ip));
    let again = ctx.store.connect(
        &a.id,
        &a.name,
        &a.netns,
        &NetworkAttach {
            name: "n2".into(),
            ..Default::default()
        },
    );
    assert!(matches!(again, Err(Error::AlreadyConnected { .. })));
    assert_eq!(ctx.store.interfaces(&a.id).unwrap().len(), 2);
    ctx.store.disconnect(&a.id, "n2").expect("disconnect");
    assert_eq!(a.links(), vec!["lo", "eth0"]);
    assert_eq!(nslookup(&peer, "second", n2.gateway), None);
    assert!(matches!(
        ctx.store.disconnect(&a.id, "n2"),
        Err(Error::NotConnected { .. })
    ));
}

fn reconcile_and_prune(ctx: &Ctx) {
    let used = ctx.create("used", None);
    ctx.create("unused", None);
    let live = ctx.container("live");
    let crashed = ctx.container("crashed");
    live.attach("used", &[]);
    ctx.store
        .attach(&crashed.request(&[("used", &[], None)], &["8088:80"]))
        .expect("attach crashed");
    // A crash: the container's namespace is gone, its records and proxy are not; a stray
    // veth from an attach that died half-way.
    netns::remove(&crashed.netns).expect("rm netns");
    run(&[
        "ip",
        "link",
        "add",
        "bth0123456789ab",
        "type",
        "veth",
        "peer",
        "name",
        "strayp",
    ]);
    // The name server died too.
    let helpers = helper_pids();
    assert_eq!(helpers.len(), 3, "2 name servers and a proxy: {helpers:?}");
    assert_eq!(ctx.store.inspect("used").unwrap().containers.len(), 2);
    let dns = helpers
        .iter()
        .find(|(_, cmd)| cmd.contains("network-dns") && cmd.contains(&used.id))
        .expect("name server of used");
    run(&["kill", "-9", &dns.0.to_string()]);
    std::thread::sleep(Duration::from_millis(100));
    let done = ctx
        .store
        .reconcile(&[live.id.clone(), crashed.id.clone()])
        .expect("reconcile");
    assert_eq!(done.containers, vec![crashed.id.clone()]);
    assert_eq!(done.stray_links, vec!["bth0123456789ab".to_string()]);
    assert_eq!(done.name_servers_restarted, vec!["used".to_string()]);
    assert_eq!(ctx.store.inspect("used").unwrap().containers.len(), 1);
    assert!(!firewall::list_table().contains("8088"));
    assert!(http_get("127.0.0.1:8088").is_none(), "proxy gone");
    assert_eq!(berth_veths().len(), 1);
    assert_eq!(
        nslookup(&live, "live", used.gateway),
        Some(Ipv4Addr::new(172, 18, 0, 2))
    );

    // A container that is no longer live at all.
    let done = ctx.store.reconcile(&[]).expect("reconcile none live");
    assert_eq!(done.containers, vec![live.id.clone()]);
    assert!(berth_veths().is_empty());

    let mut pruned = ctx.store.prune().expect("prune");
    pruned.sort();
    assert_eq!(pruned, vec!["unused", "used"]);
    let names: Vec<String> = ctx
        .store
        .list()
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect();
    assert_eq!(names, vec!["bridge"]);
}

fn release_and_restart(ctx: &Ctx) {
    ctx.create("rel", None);
    let mut a = ctx.container("again");
    let att = ctx
        .store
        .attach(&a.request(&[("rel", &["x"], None)], &["8090:7000"]))
        .expect("attach");
    let veth = berth_veths();
    assert_eq!(veth.len(), 1);
    // Stop: ports, leases and the namespace go; the veth goes with the namespace.
    ctx.store.release(&a.id, &a.netns).expect("release");
    assert!(!a.netns.exists());
    assert!(ctx.store.inspect("rel").unwrap().containers.is_empty());
    assert!(http_get("127.0.0.1:8090").is_none());
    assert!(!firewall::list_table().contains("8090"));
    // Start again at once, same id, same name: a veth still in the kernel's clean-up is
    // replaced.
    a.netns = netns::create(&ctx.run_root, &a.id).expect("netns again");
    let again = ctx
        .store
        .attach(&a.request(&[("rel", &["x"], None)], &["8090:7000"]))
        .expect("attach again");
    assert_eq!(again.interfaces[0].ip, att.interfaces[0].ip);
    assert_eq!(berth_veths(), veth);
    a.serve(7000);
    assert!(http_get("127.0.0.1:8090").is_some_and(|b| b.contains("hello from again")));
    a.stop(); // the container's processes end before its namespace is released
    ctx.store.release(&a.id, &a.netns).expect("release again");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !berth_veths().is_empty() {
        assert!(
            Instant::now() < deadline,
            "veth outlived its namespace: {:?}",
            berth_veths()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (pid, command line) of every helper process running in this case.
fn helper_pids() -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z"))
            .unwrap_or(true);
        let exe = std::env::current_exe().unwrap_or_default();
        if !zombie
            && cmd.starts_with(&*exe.to_string_lossy())
            && (cmd.contains(" network-dns ") || cmd.contains(" port-proxy "))
        {
            out.push((pid, cmd));
        }
    }
    out
}
