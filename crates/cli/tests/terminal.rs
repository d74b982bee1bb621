//! Terminals: a pty made in the container, its master sent over --console-socket, the
//! console size, /dev/console, and `run` relaying a terminal in the foreground.

mod common;

use common::*;
use serde_json::json;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

#[test]
fn console_socket_receives_the_pty_master() {
    let env = Env::new("consock");
    let mut b = env.sh_bundle(
        "stty size; tty; stat -c 'CONSOLE %F %t' /dev/console; [ -t 0 ] && [ -t 1 ] && echo STDIO-TTY; \
         read line; echo got:$line",
    );
    b.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 31, "width": 97});
    });
    let mut sock = ConsoleSocket::listen(env.path("console.sock"));
    let id = env.id("con");
    env.rt(&[
        "create",
        &id,
        "--bundle",
        b.path(),
        "--console-socket",
        sock.path.to_str().unwrap(),
    ])
    .assert_ok();
    let master = sock.master(Duration::from_secs(10));
    env.rt(&["start", &id]).assert_ok();
    let text = read_pty_until(&master, "STDIO-TTY", Duration::from_secs(10));
    assert!(text.contains("31 97"), "consoleSize not applied: {text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
    // /dev/console is the pty (devpts major 136 = 0x88).
    assert!(
        text.contains("CONSOLE character special file 88"),
        "{text:?}"
    );
    assert!(text.contains("STDIO-TTY"), "{text:?}");
    nix::unistd::write(&master, b"hello-pty\n").unwrap();
    let text = read_pty_until(&master, "got:hello-pty", Duration::from_secs(10));
    assert!(text.contains("got:hello-pty"), "{text:?}");
    let stopped = wait_for(Duration::from_secs(10), || {
        (env.status(&id) == "stopped").then_some(())
    });
    assert!(stopped.is_some());
}

#[test]
fn terminal_without_console_socket_is_refused_by_create() {
    let env = Env::new("noconsock");
    let mut b = env.sh_bundle("true");
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let id = env.id("nocon");
    env.rt(&["create", &id, "--bundle", b.path()])
        .assert_clear_error(&["console"]);
    env.assert_nothing_left(&id, &b);
}

fn openpty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let p = nix::pty::openpty(Some(&ws), None).expect("openpty");
    (p.master, p.slave)
}

#[test]
fn run_in_the_foreground_relays_the_terminal() {
    let env = Env::new("fgtty");
    let mut b = env.sh_bundle("stty size; [ -t 0 ] && echo IN-TTY; read x; echo got:$x; exit 5");
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let (master, slave) = openpty(33, 101);
    let id = env.id("fg");
    let mut child = env
        .command(&["run", &id, "--bundle", b.path()])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap())
        .spawn()
        .unwrap();
    let text = read_pty_until(&master, "IN-TTY", Duration::from_secs(15));
    assert!(text.contains("33 101"), "window size not copied: {text:?}");
    assert!(text.contains("IN-TTY"), "{text:?}");
    nix::unistd::write(master.as_fd(), b"typed\r").unwrap();
    let text = read_pty_until(&master, "got:typed", Duration::from_secs(10));
    assert!(text.contains("got:typed"), "input not relayed: {text:?}");
    let (st, timed_out) = wait_timeout(&mut child, Duration::from_secs(15));
    assert!(!timed_out, "run did not return");
    assert_eq!(st.and_then(|s| s.code()), Some(5));
    // Our terminal is restored from raw mode.
    let t = nix::sys::termios::tcgetattr(slave.as_fd()).unwrap();
    assert!(
        t.local_flags
            .contains(nix::sys::termios::LocalFlags::ICANON),
        "terminal left in raw mode"
    );
}

/// containerd's shim runs `create --console-socket` with stdout/stderr on a pipe and waits
/// for the pipe to close: with a terminal, the init must not keep the caller's stdio until
/// `start` (it did, and `ctr run -t`/`docker run -t` hung).
#[test]
fn create_with_terminal_closes_the_callers_stdio() {
    use std::io::Read;
    let env = Env::new("ttystdio");
    let mut b = env.sh_bundle("echo started");
    b.edit(|c| c["process"]["terminal"] = json!(true));
    let mut sock = ConsoleSocket::listen(env.path("console.sock"));
    let id = env.id("ttyio");
    let mut child = env
        .command(&[
            "create",
            &id,
            "--bundle",
            b.path(),
            "--console-socket",
            sock.path.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let _master = sock.master(Duration::from_secs(10));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let closed = rx.recv_timeout(Duration::from_secs(10));
    let status = child.wait().unwrap();
    assert!(status.success(), "create failed");
    assert!(
        closed.is_ok(),
        "create's stdout stayed open (held by the waiting init) until start"
    );
    assert_eq!(env.status(&id), "created");
}
