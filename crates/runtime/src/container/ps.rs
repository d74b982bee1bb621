//! `ps`: the processes of a container — host pids from its cgroup, or the host's `ps`
//! output narrowed to them (runc's table).

use super::pause::cgroup_of;
use crate::cgroup;
use crate::error::{Result, RuntimeError};
use crate::state::StateRoot;

/// Host pids of every process in the container's cgroup (and the cgroups below it),
/// sorted. The state lock is held only while reading the state.
pub fn pids(root: &StateRoot, id: &str) -> Result<Vec<i32>> {
    let config = {
        let (_locked, state) = root.open(id)?;
        cgroup_of(&state)?.clone()
    };
    let mut pids = cgroup::open(&config)?.pids()?;
    pids.sort_unstable();
    pids.dedup();
    Ok(pids)
}

/// runc's table: runs the host's `ps` with `ps_args` (default `-ef`) and keeps the header
/// and the lines whose PID column is one of `pids`.
pub fn table(pids: &[i32], ps_args: &[String]) -> Result<String> {
    let default = ["-ef".to_string()];
    let args = if ps_args.is_empty() {
        &default[..]
    } else {
        ps_args
    };
    let out = std::process::Command::new("ps")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| RuntimeError::Failed {
            what: "running ps".into(),
            msg: e.to_string(),
        })?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        return Err(RuntimeError::Failed {
            what: format!("ps {}", args.join(" ")),
            msg: format!("{}: {}", out.status, text.trim()),
        });
    }
    filter_table(&text, pids)
}

/// The header line and every line whose PID field is in `pids`.
pub fn filter_table(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let idx = header
        .split_whitespace()
        .position(|f| f == "PID")
        .ok_or_else(|| RuntimeError::Failed {
            what: "ps output".into(),
            msg: "couldn't find the PID field in its header".into(),
        })?;
    let mut out = String::with_capacity(text.len());
    out.push_str(header);
    out.push('\n');
    for line in lines.filter(|l| !l.is_empty()) {
        let field = line.split_whitespace().nth(idx).unwrap_or("");
        let pid: i32 = field.parse().map_err(|_| RuntimeError::Failed {
            what: "ps output".into(),
            msg: format!("unable to parse pid {field:?}"),
        })?;
        if pids.contains(&pid) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_matching_lines() {
        let text = "UID PID PPID C STIME TTY TIME CMD\n\
                    root 1 0 0 10:00 ? 00:00:01 /sbin/init\n\
                    root 42 1 0 10:00 ? 00:00:00 sleep 100\n\
                    root 43 42 0 10:00 ? 00:00:00 sh -c x y\n";
        let out = filter_table(text, &[42, 43]).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("UID PID"));
        assert!(lines[1].contains("sleep 100"));
        assert!(lines[2].contains("sh -c"));
        // PID in another column (ps aux / busybox ps).
        let text = "USER PID %CPU\nroot 7 0.0\nroot 8 0.0\n";
        assert_eq!(
            filter_table(text, &[8]).unwrap(),
            "USER PID %CPU\nroot 8 0.0\n"
        );
        assert!(filter_table("UID CMD\nroot x\n", &[1]).is_err());
        assert!(filter_table("PID\nabc\n", &[1]).is_err());
    }
}
