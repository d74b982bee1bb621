//! The OCI runtime through its command line (runc's contract): berth-runtime by default,
//! any runc-compatible binary with `--runtime`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};

pub struct Runtime {
    pub binary: PathBuf,
    /// The runtime's `--root` (its state directories).
    pub state_root: PathBuf,
}

impl Runtime {
    pub fn new(binary: &Path, state_root: &Path) -> Runtime {
        Runtime {
            binary: binary.to_path_buf(),
            state_root: state_root.to_path_buf(),
        }
    }

    /// A runtime invocation for `verb` (stdio left to the caller).
    pub fn command(&self, verb: &str) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.state_root).arg(verb);
        c
    }

    /// Run a verb to completion; a failure carries the runtime's own message.
    pub fn run(&self, verb: &str, args: &[&str]) -> Result<Vec<u8>> {
        let out = self
            .command(verb)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| Error::Spawn {
                program: self.binary.display().to_string(),
                source,
            })?;
        self.check(verb, out)
    }

    fn check(&self, verb: &str, out: Output) -> Result<Vec<u8>> {
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(Error::Runtime {
            runtime: self.binary.clone(),
            verb: verb.to_string(),
            message: error_message(&out.stderr),
        })
    }

    pub fn start(&self, id: &str) -> Result<()> {
        self.run("start", &[id]).map(drop)
    }

    pub fn kill(&self, id: &str, signal: &str) -> Result<()> {
        self.run("kill", &[id, signal]).map(drop)
    }

    /// Delete the runtime's container (killing what is left) if it has one.
    pub fn delete_force(&self, id: &str) -> Result<()> {
        if !self.state_root.join(id).exists() {
            return Ok(());
        }
        self.run("delete", &["--force", id]).map(drop)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        self.run("pause", &[id]).map(drop)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        self.run("resume", &[id]).map(drop)
    }

    /// The host pids of every process in the container.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let out = self.run("ps", &["--format", "json", id])?;
        serde_json::from_slice(&out).map_err(|e| Error::Runtime {
            runtime: self.binary.clone(),
            verb: "ps".into(),
            message: format!("unexpected output: {e}"),
        })
    }
}

/// The runtime's error line, without runc's logrus decoration
/// (`time="..." level=error msg="..."`) or our own `berth-runtime: ` prefix.
pub fn error_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    if let Some(i) = line.find("msg=\"") {
        let rest = &line[i + 5..];
        let end = rest.rfind('"').unwrap_or(rest.len());
        return rest[..end].replace("\\\"", "\"");
    }
    line.strip_prefix("berth-runtime: ")
        .unwrap_or(line)
        .to_string()
}

/// docker's reading of a failed start: the program isn't there (127), isn't executable
/// (126), or something else (125).
pub fn start_exit_code(message: &str) -> i32 {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found")
        || m.contains("no such executable")
        || m.contains("no such file or directory")
    {
        127
    } else if m.contains("permission denied") || m.contains("is a directory") {
        126
    } else {
        125
    }
}

/// The error for a failed start with docker's exit code `code`.
pub fn start_error(id: &str, code: i32, message: String) -> Error {
    match code {
        127 => Error::CommandNotFound(message),
        126 => Error::CommandNotExecutable(message),
        _ => Error::Monitor {
            id: id.to_string(),
            message,
        },
    }
}
