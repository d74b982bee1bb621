//! `exec`: another process in a running container, through the runtime's `exec`.

use std::io::{Read, Write};
use std::process::Stdio;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::runtime::{error_message, start_exit_code};
use crate::user;

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub cmd: Vec<String>,
    /// `-t`: a terminal (the runtime relays it in the foreground).
    pub tty: bool,
    /// `-i`: our stdin goes to the process.
    pub interactive: bool,
    /// `-d`: don't wait.
    pub detach: bool,
    /// `-u` (default: the container's user).
    pub user: Option<String>,
    /// `-w` (default: the container's working directory).
    pub workdir: Option<String>,
    pub env: Vec<String>,
}

/// The exit status a runtime uses for its own failures (runc: 255 for exec errors).
const RUNTIME_FAILURE: [i32; 2] = [1, 255];

impl Engine {
    /// Run `req.cmd` in the container; its exit code (0 once started with `detach`).
    pub fn exec(&self, what: &str, req: &ExecRequest) -> Result<i32> {
        if req.cmd.is_empty() {
            return Err(Error::InvalidOption("exec: no command given".into()));
        }
        if req.detach && req.tty {
            return Err(Error::InvalidOption(
                "exec: -d with -t is not supported (a detached exec has no terminal to attach to)"
                    .into(),
            ));
        }
        let rec = self.db.find(what)?;
        self.require_running(&rec)?;
        let rootfs = self.paths.rootfs(&rec.id);
        let spec = req.user.as_deref().unwrap_or(&rec.config.user);
        let u = user::resolve_user(&rootfs, spec)?;
        let cwd = req
            .workdir
            .clone()
            .filter(|w| !w.is_empty())
            .or_else(|| Some(rec.config.working_dir.clone()).filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into());
        let rt = self.runtime_of(&rec);
        let mut cmd = rt.command("exec");
        cmd.arg("--cwd").arg(&cwd);
        cmd.arg("--user").arg(format!("{}:{}", u.uid, u.gid));
        for g in &u.additional_gids {
            cmd.arg("--additional-gids").arg(g.to_string());
        }
        if req.user.is_some() && !req.env.iter().any(|e| e.starts_with("HOME=")) {
            cmd.arg("--env").arg(format!("HOME={}", u.home));
        }
        for e in &req.env {
            cmd.arg("--env").arg(e);
        }
        if req.tty {
            cmd.arg("--tty");
        }
        if req.detach {
            cmd.arg("--detach");
        }
        cmd.arg(&rec.id).args(&req.cmd);
        cmd.stdin(if req.interactive && !req.detach {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        if req.detach {
            cmd.stdout(Stdio::null());
        }
        // stderr passes through us so a failed exec's message can be read; with -d the
        // process keeps whatever it inherits, so there it is an unlinked file instead of
        // a pipe that would never reach end of file.
        let detached_err = if req.detach {
            use std::os::unix::fs::OpenOptionsExt;
            let dir = self.paths.run_dir(&rec.id);
            let f = std::fs::File::options()
                .read(true)
                .write(true)
                .custom_flags(libc::O_TMPFILE)
                .open(&dir)
                .map_err(|source| Error::Io { path: dir, source })?;
            let w = f.try_clone().map_err(|source| Error::Io {
                path: self.paths.run_dir(&rec.id),
                source,
            })?;
            cmd.stderr(Stdio::from(w));
            Some(f)
        } else {
            cmd.stderr(Stdio::piped());
            None
        };
        let mut child = cmd.spawn().map_err(|source| Error::Spawn {
            program: rt.binary.display().to_string(),
            source,
        })?;
        let mut tail = Vec::new();
        if let Some(mut e) = child.stderr.take() {
            let mut buf = [0u8; 8192];
            let mut stderr = std::io::stderr();
            loop {
                match e.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        tail.extend_from_slice(&buf[..n]);
                        if tail.len() > 8192 {
                            tail.drain(..tail.len() - 8192);
                        }
                        if !req.detach {
                            let _ = stderr.write_all(&buf[..n]);
                        }
                    }
                }
            }
        }
        let status = child.wait().map_err(|source| Error::Spawn {
            program: rt.binary.display().to_string(),
            source,
        })?;
        let code = status.code().unwrap_or(125);
        if let Some(mut f) = detached_err {
            use std::io::Seek;
            let _ = f.rewind();
            let _ = f.take(8192).read_to_end(&mut tail);
        }
        if req.detach {
            if !status.success() {
                let msg = error_message(&tail);
                return Err(crate::runtime::start_error(
                    &rec.id,
                    start_exit_code(&msg),
                    msg,
                ));
            }
            return Ok(0);
        }
        if RUNTIME_FAILURE.contains(&code) {
            let msg = error_message(&tail);
            if msg.contains("exec: ") || msg.contains("executable") {
                return Ok(match start_exit_code(&msg) {
                    125 => code,
                    c => c,
                });
            }
        }
        Ok(code)
    }
}
