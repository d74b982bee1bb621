//! The per-container monitor (what conmon is to podman): one process per running
//! container, started by `start`, that outlives the CLI.
//!
//! It is the `berth` binary re-executed as the hidden `container-monitor` command (a fork
//! without exec would be unsafe once a front-end has threads), made a session leader and
//! child subreaper, so the container's init becomes its child once the runtime's `create`
//! exits. It creates and starts the container through the runtime, holds the container's
//! stdio (pipes, or the pty master received over `--console-socket`), writes the json-file
//! log, relays to the front-end that started it, reaps the init, records the exit code and
//! time, deletes the runtime's container, unmounts the rootfs and, with `--rm`, removes
//! the container. Its stdin is the first front-end's attach stream (see `attach.rs`); its
//! stdout/stderr go to `monitor.log` in the container directory.
//!
//! `monitor.lock` (run dir) is locked exclusively for the monitor's whole life: a running
//! monitor is one whose lock is held, which stays true after a reboot or a SIGKILL.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::attach::{self, Kind};
use crate::container::cleanup;
use crate::error::{Error, Result};
use crate::logs::{LogWriter, Stream};
use crate::paths::Paths;
use crate::records::{ContainerRecord, Records};
use crate::runtime::{self, Runtime};
use crate::sys;
use crate::volumes::VolumeStore;

/// The hidden command the front-end binary must route to [`monitor_main`].
pub const MONITOR_COMMAND: &str = "container-monitor";

/// Unix nanoseconds now.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Spawn the monitor of container `id`: `exe container-monitor --root R --run-root RR ID`,
/// with `conn` as its stdin. Returns once it is spawned; the caller reads `conn`.
pub fn spawn(exe: &std::path::Path, paths: &Paths, id: &str, conn: UnixStream) -> Result<()> {
    let log_path = paths.monitor_log(id);
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|source| Error::Io {
            path: log_path.clone(),
            source,
        })?;
    let log2 = log.try_clone().map_err(|source| Error::Io {
        path: log_path,
        source,
    })?;
    // The monitor forks once more and its first process exits at once (reaped here), so
    // no front-end, however long it lives, is left with a monitor to reap.
    let mut child = Command::new(exe)
        .arg(MONITOR_COMMAND)
        .arg("--root")
        .arg(&paths.root)
        .arg("--run-root")
        .arg(&paths.run_root)
        .arg(id)
        .stdin(Stdio::from(OwnedFd::from(conn)))
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|source| Error::Spawn {
            program: exe.display().to_string(),
            source,
        })?;
    let _ = child.wait();
    Ok(())
}

/// The monitor process: returns its exit status.
pub fn monitor_main(root: PathBuf, run_root: PathBuf, id: String) -> i32 {
    // Detach from the front-end: the first process exits (its parent reaps it), the
    // second is reparented to init (or the nearest subreaper) and leaves the front-end's
    // session, so a closing terminal doesn't take the container along.
    match sys::fork_single_threaded() {
        Ok(true) => {}
        Ok(false) => return 0,
        Err(e) => {
            eprintln!("berth monitor {id}: fork: {e}");
            return 1;
        }
    }
    let _ = nix::unistd::setsid();
    let conn = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(UnixStream::from);
    let paths = Paths::new(&root, &run_root);
    let mut m = Monitor {
        paths,
        id,
        clients: conn.into_iter().map(Some).collect(),
    };
    match m.run() {
        Ok(()) => 0,
        Err(e) => {
            let msg = e.to_string();
            eprintln!("berth monitor {}: {msg}", m.id);
            m.send(Kind::Failed, &failed_payload(125, &msg));
            1
        }
    }
}

fn failed_payload(code: i32, message: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(message.as_bytes());
    p
}

struct Monitor {
    paths: Paths,
    id: String,
    /// The attached front-ends: the one that started us (while it listens) and any that
    /// connected to the attach socket since; `None` once gone (compacted each round).
    clients: Vec<Option<UnixStream>>,
}

/// What a ready descriptor in the monitor's poll is.
#[derive(Clone, Copy)]
enum Source {
    Output(usize),
    Signal,
    Listener,
    Client(usize),
}

/// The container's stdio as the monitor holds it.
enum ContainerStdio {
    Pipes {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    Pty(OwnedFd),
}

impl Monitor {
    fn send(&mut self, kind: Kind, payload: &[u8]) {
        for slot in self.clients.iter_mut() {
            if let Some(c) = slot {
                if attach::write_frame(c, kind, payload).is_err() {
                    *slot = None;
                }
            }
        }
    }

    fn io_err(&self, path: PathBuf) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { path, source }
    }

    fn run(&mut self) -> Result<()> {
        let id = self.id.clone();
        let lock_path = self.paths.monitor_lock(&id);
        let lock_file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(self.io_err(lock_path.clone()))?;
        let _lock =
            Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|_| Error::State {
                id: id.clone(),
                reason: "is already running".into(),
            })?;

        nix::sys::prctl::set_child_subreaper(true).map_err(|e| Error::Monitor {
            id: id.clone(),
            message: format!("PR_SET_CHILD_SUBREAPER: {e}"),
        })?;
        let db = Records::open(&self.paths.database())?;
        let rec = db
            .get(&id)?
            .ok_or_else(|| Error::NoSuchContainer(id.clone()))?;
        let rt = Runtime::new(&rec.config.runtime, &self.paths.runtime_root());

        let (stdio, pid) = match self.create_and_start(&rec, &rt) {
            Ok(v) => v,
            Err((code, message)) => {
                let _ = db.set_start_error(&id, code, &message);
                if let Err(e) = cleanup::teardown(&self.paths, &rt, &id) {
                    eprintln!("berth monitor {id}: cleanup after failed start: {e}");
                }
                self.send(Kind::Failed, &failed_payload(code, &message));
                return Ok(());
            }
        };
        // SIGCHLD is blocked (into a signalfd) only now: a blocked mask is inherited by
        // what we spawn, and the runtime would pass it on to the container. An exit before
        // this point left a zombie that the first reap in `serve` collects.
        let mut chld = SigSet::empty();
        chld.add(Signal::SIGCHLD);
        chld.thread_block().map_err(|e| Error::Monitor {
            id: id.clone(),
            message: format!("blocking SIGCHLD: {e}"),
        })?;
        let sfd = SignalFd::with_flags(&chld, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(|e| Error::Monitor {
                id: id.clone(),
                message: format!("signalfd: {e}"),
            })?;

        db.set_running(&id, pid, now_ns())?;
        self.send(Kind::Started, &pid.to_be_bytes());

        let code = self.serve(&rec, stdio, pid, &sfd);
        db.set_exited(&id, code, now_ns())?;
        if let Err(e) = cleanup::teardown(&self.paths, &rt, &id) {
            eprintln!("berth monitor {id}: cleanup: {e}");
        }
        if rec.config.auto_remove {
            if let Err(e) = remove_auto(&self.paths, &db, &rec) {
                eprintln!("berth monitor {id}: --rm: {e}");
            }
        }
        self.send(Kind::Exit, &code.to_be_bytes());
        Ok(())
    }

    /// `runtime create` then `start`; on failure docker's exit code and the runtime's
    /// message.
    fn create_and_start(
        &mut self,
        rec: &ContainerRecord,
        rt: &Runtime,
    ) -> std::result::Result<(ContainerStdio, i32), (i32, String)> {
        let id = &rec.id;
        let fail = |e: &dyn std::fmt::Display| (125, e.to_string());
        let run_dir = self.paths.run_dir(id);
        let pid_file = self.paths.pid_file(id);
        let mut cmd = rt.command("create");
        cmd.arg("--bundle")
            .arg(&run_dir)
            .arg("--pid-file")
            .arg(&pid_file);

        // What the runtime writes to stderr when create fails (in pipe mode the container's
        // stderr pipe: nothing of the container has run before create returns).
        let (err_r, err_w) = nix::unistd::pipe().map_err(|e| fail(&e))?;
        let mut console = None;
        let mut pipes = None;
        if rec.config.tty {
            let sock = self.paths.console_socket(id);
            let _ = fs::remove_file(&sock);
            let listener = UnixListener::bind(&sock)
                .map_err(|e| (125, format!("console socket {}: {e}", sock.display())))?;
            cmd.arg("--console-socket").arg(&sock);
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
            console = Some(listener);
        } else {
            let (out_r, out_w) = nix::unistd::pipe().map_err(|e| fail(&e))?;
            let stdin = if rec.config.open_stdin {
                let (in_r, in_w) = nix::unistd::pipe().map_err(|e| fail(&e))?;
                cmd.stdin(Stdio::from(in_r));
                Some(in_w)
            } else {
                cmd.stdin(Stdio::null());
                None
            };
            cmd.stdout(Stdio::from(out_w));
            pipes = Some((stdin, out_r));
        }
        cmd.stderr(Stdio::from(err_w));
        cmd.arg(id);
        let status = cmd
            .status()
            .map_err(|e| (125, format!("running {}: {e}", rt.binary.display())));
        // Our copies of the write ends go with the Command.
        drop(cmd);
        let status = status?;
        if !status.success() {
            let msg = runtime::error_message(&read_available(err_r.as_fd()));
            let msg = if msg.is_empty() {
                format!("{} create failed ({status})", rt.binary.display())
            } else {
                msg
            };
            return Err((runtime::start_exit_code(&msg), msg));
        }
        let pid = fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .ok_or_else(|| {
                (
                    125,
                    format!("runtime wrote no pid to {}", pid_file.display()),
                )
            })?;

        let stdio = match (console, pipes) {
            (Some(listener), _) => {
                let master = receive_master(&listener)
                    .map_err(|e| (125, format!("receiving the terminal: {e}")))?;
                drop(listener);
                let _ = fs::remove_file(self.paths.console_socket(id));
                ContainerStdio::Pty(master)
            }
            (None, Some((stdin, stdout))) => ContainerStdio::Pipes {
                stdin,
                stdout,
                stderr: err_r,
            },
            (None, None) => return Err((125, "no stdio".into())),
        };
        if let Err(e) = rt.start(id) {
            let msg = match e {
                Error::Runtime { message, .. } => message,
                e => e.to_string(),
            };
            return Err((runtime::start_exit_code(&msg), msg));
        }
        Ok((stdio, pid))
    }

    /// Relay and log until the init exits and its output is drained; its exit code.
    fn serve(
        &mut self,
        rec: &ContainerRecord,
        stdio: ContainerStdio,
        pid: i32,
        sfd: &SignalFd,
    ) -> i32 {
        let log_path = self.paths.log_file(&rec.id);
        let mut log = match LogWriter::new(&log_path) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("berth monitor {}: log {}: {e}", rec.id, log_path.display());
                None
            }
        };
        let (mut stdin, outputs, master) = match stdio {
            ContainerStdio::Pipes {
                stdin,
                stdout,
                stderr,
            } => (
                stdin,
                vec![(Stream::Stdout, stdout), (Stream::Stderr, stderr)],
                None,
            ),
            ContainerStdio::Pty(m) => {
                let dup = m.try_clone().ok();
                (dup, Vec::new(), Some(m))
            }
        };
        let mut outputs: Vec<(Stream, Option<OwnedFd>)> =
            outputs.into_iter().map(|(s, f)| (s, Some(f))).collect();
        if let Some(m) = &master {
            if let Ok(dup) = m.try_clone() {
                outputs.push((Stream::Stdout, Some(dup)));
            }
        }
        // Later front-ends (`berth attach`, `start -a` of a running container) connect here.
        let sock = self.paths.attach_socket(&rec.id);
        let _ = fs::remove_file(&sock);
        let listener = match UnixListener::bind(&sock) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!(
                    "berth monitor {}: attach socket {}: {e}",
                    rec.id,
                    sock.display()
                );
                None
            }
        };
        let mut exit: Option<i32> = reap(pid);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let open_outputs = outputs.iter().filter(|(_, f)| f.is_some()).count();
            if exit.is_some() && open_outputs == 0 {
                break;
            }
            let mut fds: Vec<PollFd> = Vec::new();
            let mut which: Vec<Source> = Vec::new();
            for (i, (_, f)) in outputs.iter().enumerate() {
                if let Some(f) = f {
                    fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    which.push(Source::Output(i));
                }
            }
            if exit.is_none() {
                fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
                which.push(Source::Signal);
                if let Some(l) = &listener {
                    fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                    which.push(Source::Listener);
                }
            }
            let client_fds: Vec<(usize, OwnedFd)> = self
                .clients
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    c.as_ref()
                        .and_then(|c| c.as_fd().try_clone_to_owned().ok())
                        .map(|f| (i, f))
                })
                .collect();
            for (i, f) in &client_fds {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                which.push(Source::Client(*i));
            }
            // Once the init is gone its output ends as soon as the kernel has killed the
            // rest of its pid namespace; the timeout only guards against a writer that
            // escaped it.
            let timeout = if exit.is_some() {
                PollTimeout::from(2000u16)
            } else {
                PollTimeout::NONE
            };
            let n = match poll(&mut fds, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!("berth monitor {}: poll: {e}", rec.id);
                    0
                }
            };
            if n == 0 && exit.is_some() {
                break;
            }
            let ready: Vec<Source> = fds
                .iter()
                .zip(&which)
                .filter(|(f, _)| f.revents().is_some_and(|r| !r.is_empty()))
                .map(|(_, w)| *w)
                .collect();
            drop(fds);
            for w in ready {
                let w = match w {
                    Source::Signal => {
                        while sfd.read_signal().ok().flatten().is_some() {}
                        if let Some(code) = reap(pid) {
                            exit = Some(code);
                        }
                        continue;
                    }
                    Source::Listener => {
                        if let Some(Ok((c, _))) = listener.as_ref().map(UnixListener::accept) {
                            self.clients.push(Some(c));
                        }
                        continue;
                    }
                    Source::Client(i) => {
                        self.client_input(i, &mut stdin, master.as_ref().map(|m| m.as_fd()));
                        continue;
                    }
                    Source::Output(w) => w,
                };
                {
                    let (stream, fd) = &mut outputs[w];
                    let got = fd
                        .as_ref()
                        .map(|f| nix::unistd::read(f.as_fd(), &mut buf))
                        .unwrap_or(Ok(0));
                    match got {
                        Ok(0) | Err(_) => *fd = None, // EOF, or EIO from a pty with no slave
                        Ok(n) => {
                            if let Some(l) = log.as_mut() {
                                if let Err(e) = l.write(*stream, &buf[..n]) {
                                    eprintln!("berth monitor {}: log: {e}", rec.id);
                                    log = None;
                                }
                            }
                            let kind = match stream {
                                Stream::Stderr => Kind::Stderr,
                                _ => Kind::Stdout,
                            };
                            let data = buf[..n].to_vec();
                            self.send(kind, &data);
                        }
                    }
                }
            }
            self.clients.retain(Option::is_some);
            if exit.is_none() {
                // A SIGCHLD may have been merged with one read already.
                if let Some(code) = reap(pid) {
                    exit = Some(code);
                }
            }
        }
        exit.unwrap_or(255)
    }

    /// One frame from the front-end: stdin data, end of stdin, or a resize.
    fn client_input(&mut self, i: usize, stdin: &mut Option<OwnedFd>, master: Option<BorrowedFd>) {
        let Some(Some(c)) = self.clients.get_mut(i) else {
            return;
        };
        match attach::read_frame(c) {
            Ok(Some((Kind::Stdin, data))) => {
                if let Some(f) = stdin.as_ref() {
                    if write_all(f.as_fd(), &data).is_err() {
                        *stdin = None;
                    }
                }
            }
            Ok(Some((Kind::CloseStdin, _))) => {
                if master.is_some() {
                    // A terminal has no end of file of its own: send the EOF character.
                    if let Some(f) = stdin.as_ref() {
                        let _ = nix::unistd::write(f, &[4u8]);
                    }
                } else {
                    *stdin = None;
                }
            }
            Ok(Some((Kind::Resize, p))) if p.len() == 4 => {
                if let Some(m) = master {
                    let rows = u16::from_be_bytes([p[0], p[1]]);
                    let cols = u16::from_be_bytes([p[2], p[3]]);
                    let _ = sys::set_window_size(m, rows, cols);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => self.clients[i] = None,
        }
    }
}

/// Reap every exited child; the init's exit code once it is among them (128+n for a
/// signal, as docker).
fn reap(init: i32) -> Option<i32> {
    let mut code = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == init => code = Some(c),
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == init => code = Some(128 + s as i32),
            Ok(WaitStatus::StillAlive) | Err(_) => return code,
            Ok(_) => {}
        }
    }
}

/// Whatever is readable on `fd` now (the runtime has exited, so this ends).
fn read_available(fd: BorrowedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(1000u16)) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if out.len() > 64 * 1024 {
            break;
        }
    }
    out
}

/// The pty master the runtime sends over the console socket (runc's protocol: one
/// message, the fd as SCM_RIGHTS).
fn receive_master(listener: &UnixListener) -> io::Result<OwnedFd> {
    // The runtime connected during create (which has returned): accept won't block, but
    // a runtime that never connects must not hang us.
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::from(5000u16))? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the runtime sent no terminal",
        ));
    }
    let (conn, _) = listener.accept()?;
    let mut name = [0u8; 4096];
    let mut iov = [io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                for &extra in &fds[1..] {
                    let _ = nix::unistd::close(extra);
                }
                return Ok(sys::received_fd(fd));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "the console socket message held no descriptor",
    ))
}

/// `--rm`: the record, the files and the anonymous volumes go.
fn remove_auto(paths: &Paths, db: &Records, rec: &ContainerRecord) -> Result<()> {
    cleanup::remove_files(paths, &rec.id)?;
    db.remove(&rec.id)?;
    let anonymous: Vec<&str> = rec
        .config
        .mounts
        .iter()
        .filter(|m| m.anonymous)
        .map(|m| m.source.as_str())
        .collect();
    if !anonymous.is_empty() {
        let store = VolumeStore::open(&paths.root)?;
        for v in anonymous {
            store.remove(v, &[])?;
        }
    }
    Ok(())
}

fn write_all(fd: BorrowedFd, mut data: &[u8]) -> nix::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
