//! What the registry tests share: Debian's docker-registry on a free loopback port (with
//! extra config: TLS, htpasswd, token auth), a tiny HTTP server for fake registries and
//! token servers, a raw HTTP client, openssl-made certificates, and event recording.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use berth_image::registry::Progress;
use berth_image::Digest;
use serde_json::{json, Value};

use crate::common::TestImage;

pub struct Registry {
    child: Child,
    pub addr: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// docker-registry with its storage in `dir`; `http_extra` is indented under `http:`,
/// `top_extra` goes at the top level (e.g. `auth:`). None when it isn't installed.
pub fn start_registry(dir: &Path, http_extra: &str, top_extra: &str) -> Option<Registry> {
    let bin = ["/usr/bin/docker-registry", "/usr/bin/registry"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.join("config.yml");
    let storage = dir.join("storage");
    fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{http_extra}{top_extra}",
            storage.display()
        ),
    )
    .expect("write registry config");
    let log = fs::File::create(dir.join("registry.log")).expect("log");
    let child = Command::new(bin)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start docker-registry");
    let reg = Registry { child, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(&reg.addr).is_ok() {
            return Some(reg);
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "docker-registry did not start: {}",
        fs::read_to_string(dir.join("registry.log")).unwrap_or_default()
    );
}

// ---------------------------------------------------------------- certificates

/// Run openssl in `dir`; `args` split on spaces (so no spaces inside one argument).
pub fn openssl(args: &str, dir: &Path) {
    let out = Command::new("openssl")
        .args(args.split_whitespace())
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.crt`) and what it signed in `dir`: a server certificate for
/// 127.0.0.1/localhost (`server.crt`, `server.key`) and a client one (`client.*`).
pub fn make_certs(dir: &Path) {
    fs::create_dir_all(dir).expect("mkdir");
    openssl(
        "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=berth-test-CA",
        dir,
    );
    fs::write(
        dir.join("server.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    fs::write(
        dir.join("client.cnf"),
        "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
    )
    .expect("ext");
    for (name, subject) in [("server", "/CN=127.0.0.1"), ("client", "/CN=berth-client")] {
        openssl(
            &format!(
                "req -newkey rsa:2048 -nodes -keyout {name}.key -out {name}.csr -subj {subject}"
            ),
            dir,
        );
        openssl(
            &format!("x509 -req -in {name}.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out {name}.crt -days 2 -extfile {name}.cnf"),
            dir,
        );
    }
}

// ---------------------------------------------------------------- tiny HTTP server

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(|s| s.as_str())
    }
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Content-Length to claim, when it should differ from the body (a truncated reply).
    pub claimed_len: Option<usize>,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            claimed_len: None,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

/// An HTTP/1.1 server on a loopback port, one thread per connection, `Connection: close`.
pub struct Server {
    pub addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let handler = handler.clone();
                thread::spawn(move || {
                    let _ = serve_one(conn, &*handler);
                });
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(conn: TcpStream, handler: &dyn Fn(&Request) -> Reply) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    let req = Request {
        method,
        target,
        headers,
        body,
    };
    let reply = handler(&req);
    let mut out = conn;
    let mut head = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.claimed_len.unwrap_or(reply.body.len())
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if req.method != "HEAD" {
        out.write_all(&reply.body)?;
    }
    out.flush()
}

/// One raw HTTP request (Connection: close): status and body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    s.write_all(body).expect("send body");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}

// ---------------------------------------------------------------- fake registry

/// A read-only registry serving `images` under `repo` (tags as given), with `tamper` to
/// change a reply before it goes out.
pub fn fake_registry(
    repo: &str,
    images: &[(&TestImage, &str)],
    tamper: impl Fn(&Request, Reply) -> Reply + Send + Sync + 'static,
) -> Server {
    let mut manifests: HashMap<String, Vec<u8>> = HashMap::new();
    let mut blobs: HashMap<String, Vec<u8>> = HashMap::new();
    for (img, tag) in images {
        manifests.insert(tag.to_string(), img.manifest.clone());
        manifests.insert(Digest::of(&img.manifest).to_string(), img.manifest.clone());
        blobs.insert(Digest::of(&img.config).to_string(), img.config.clone());
        for (b, _) in &img.layers {
            blobs.insert(Digest::of(b).to_string(), b.clone());
        }
    }
    let prefix = format!("/v2/{repo}/");
    Server::start(move |req| {
        let path = req.path();
        let reply = if path == "/v2/" {
            Reply::new(200, "{}")
        } else if let Some(m) = path
            .strip_prefix(&prefix)
            .and_then(|p| p.strip_prefix("manifests/"))
        {
            match manifests.get(m) {
                Some(b) => Reply::new(200, b.clone())
                    .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    .header("Docker-Content-Digest", Digest::of(b).as_str()),
                None => Reply::new(
                    404,
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                ),
            }
        } else if let Some(d) = path
            .strip_prefix(&prefix)
            .and_then(|p| p.strip_prefix("blobs/"))
        {
            match blobs.get(d) {
                Some(b) => Reply::new(200, b.clone()),
                None => Reply::new(404, ""),
            }
        } else {
            Reply::new(404, "")
        };
        tamper(req, reply)
    })
}

// ---------------------------------------------------------------- images and events

/// The same image with another architecture in its config (and so other digests).
pub fn with_arch(img: &TestImage, arch: &str) -> TestImage {
    let mut config: Value = serde_json::from_slice(&img.config).expect("config");
    config["architecture"] = json!(arch);
    let config = serde_json::to_vec(&config).expect("json");
    let mut manifest: Value = serde_json::from_slice(&img.manifest).expect("manifest");
    manifest["config"]["digest"] = json!(Digest::of(&config).to_string());
    manifest["config"]["size"] = json!(config.len());
    TestImage {
        layers: img.layers.clone(),
        config,
        manifest: serde_json::to_vec(&manifest).expect("json"),
    }
}

/// Collects progress events from any thread.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<Progress>>);

impl Events {
    pub fn take(&self) -> Vec<Progress> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
    pub fn record(&self) -> impl Fn(Progress) + Sync + '_ {
        move |p| self.0.lock().expect("lock").push(p)
    }
}

/// Everything under the store that a failed pull must not leave: blobs, layers, tmp.
pub fn store_contents(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["blobs/sha256", "layers", "tmp"] {
        if let Ok(rd) = fs::read_dir(root.join(sub)) {
            out.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
        }
    }
    out.sort();
    out
}
