//! `berth top`: the host's `ps` (docker's default `-ef`, or the user's ps options), keeping
//! the rows of the container's processes (host PIDs, from its cgroup), as `docker top`.

use crate::error::{Error, Result};
use std::process::Command;

/// A table as `ps` printed it: column titles, then one row per process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// Runs `ps ps_args` (`-ef` when empty) and keeps the rows whose PID is in `pids`.
pub fn top(pids: &[i32], ps_args: &[String]) -> Result<Top> {
    let default = ["-ef".to_string()];
    let args: &[String] = if ps_args.is_empty() {
        &default
    } else {
        ps_args
    };
    // Like docker: ask ps for just these pids first (fast on a busy host); some options
    // (e.g. `f`) can't be combined with -q, so on failure run ps without it.
    let pid_list = pids
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut output = None;
    if !pids.is_empty() {
        if let Ok(out) = ps(args.iter().cloned().chain(["-q".into(), pid_list])) {
            output = Some(out);
        }
    }
    let output = match output {
        Some(o) => o,
        None => ps(args.iter().cloned())?,
    };
    parse_ps(&output, pids)
}

fn ps(args: impl Iterator<Item = String>) -> Result<String> {
    let out = Command::new("ps")
        .args(args)
        .output()
        .map_err(|source| Error::Spawn {
            program: "ps".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::CommandFailed {
            program: "ps".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// docker's parsePSOutput: the PID column is found by its title; the last column (the
/// command) keeps its spaces.
fn parse_ps(output: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let pid_index = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::InvalidOption("Couldn't find PID field in ps output".to_string()))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_index).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let last = titles.len().saturating_sub(1);
        let mut row: Vec<String> = fields.iter().take(last).map(|f| f.to_string()).collect();
        if fields.len() > last {
            row.push(fields[last..].join(" "));
        }
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Child, Stdio};

    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn sleeper(arg: &str) -> Kill {
        Kill(
            Command::new("sleep")
                .arg(arg)
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    #[test]
    fn lists_only_the_given_processes_with_ps_columns() {
        let a = sleeper("301");
        let b = sleeper("302");
        let _other = sleeper("303");
        let pids = [a.0.id() as i32, b.0.id() as i32];
        let t = top(&pids, &[]).unwrap();
        assert_eq!(t.titles[..2], ["UID", "PID"]);
        assert_eq!(t.titles.last().unwrap(), "CMD");
        assert_eq!(t.processes.len(), 2, "{t:?}");
        for (row, pid) in t.processes.iter().zip(pids) {
            assert_eq!(row.len(), t.titles.len());
            assert_eq!(row[1], pid.to_string());
        }
        assert_eq!(t.processes[0].last().unwrap(), "sleep 301");

        // ps options as docker top passes them through; "f" (forest) can't be mixed with -q.
        let t = top(&pids, &["aux".into()]).unwrap();
        assert_eq!(t.titles[1], "PID");
        assert_eq!(t.processes.len(), 2);
        let t = top(
            &pids,
            &["-e".into(), "-o".into(), "pid,comm".into(), "f".into()],
        )
        .unwrap();
        assert_eq!(t.processes.len(), 2, "{t:?}");
    }

    #[test]
    fn errors_name_the_problem() {
        let a = sleeper("304");
        let pid = [a.0.id() as i32];
        let e = top(&pid, &["-o".into(), "comm".into()]).unwrap_err();
        assert_eq!(e.to_string(), "Couldn't find PID field in ps output");
        let e = top(&pid, &["--no-such-option".into()]).unwrap_err();
        assert!(e.to_string().starts_with("ps failed"), "{e}");
        // No processes: titles only.
        assert!(top(&[], &[]).unwrap().processes.is_empty());
    }
}
