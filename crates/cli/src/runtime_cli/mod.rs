//! `berth-runtime`: runc's command line over the runtime library.

mod args;
mod cgroup_verbs;
mod log;
mod spec_template;

use anyhow::{bail, Context, Result};
use args::{Cli, Command, ListFormat};
use berth_runtime::container::{self, create::CreateOptions};
use berth_runtime::StateRoot;
use clap::Parser;
use std::io::Write;

pub fn main() -> i32 {
    let cli = Cli::parse();
    log::init(&cli);
    let started = std::time::Instant::now();
    log::debug(&format!("argv {:?}", std::env::args().collect::<Vec<_>>()));
    match dispatch(&cli) {
        Ok(code) => {
            log::debug(&format!("done in {:?}, exit {code}", started.elapsed()));
            code
        }
        Err(e) => {
            log::error(&one_line(&e));
            1
        }
    }
}

fn dispatch(cli: &Cli) -> Result<i32> {
    let root = StateRoot::new(&cli.root);
    match &cli.command {
        Command::Spec { bundle, rootless } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("{} exists; remove it first", path.display());
            }
            let spec = spec_template::default_spec(*rootless);
            let text = serde_json::to_string_pretty(&spec)?;
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Command::Create(c) => {
            refuse_systemd(cli)?;
            container::create::create(&root, &c.options(false))?;
        }
        Command::Run(r) => {
            refuse_systemd(cli)?;
            return Ok(container::run::run(
                &root,
                &r.create.options(true),
                r.detach,
            )?);
        }
        Command::Start { id } => container::start::start(&root, id)?,
        Command::State { id } => {
            let st = container::state::read(&root, id)?;
            println!("{}", container::state::oci_json(&st)?);
        }
        Command::Kill { id, signal, all } => {
            let sig = container::parse_signal(signal)?;
            container::kill::kill(&root, id, sig, *all)?;
        }
        Command::Delete { id, force } => container::delete::delete(&root, id, *force)?,
        Command::List { format, quiet } => list(&root, *format, *quiet)?,
        Command::Pause(_)
        | Command::Resume(_)
        | Command::Ps(_)
        | Command::Events(_)
        | Command::Update(_) => return cgroup_verbs::dispatch(&root, &cli.command),
        Command::Exec(e) => return exec(&root, e),
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&berth_runtime::features::features())?
            );
        }
    }
    Ok(0)
}

/// The error and its causes on one line, without repeating a cause that an error's own
/// message already quotes (the library's errors name their source in their text).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.contains(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

fn exec(root: &StateRoot, e: &args::ExecArgs) -> Result<i32> {
    let process = match &e.process {
        Some(path) => {
            let raw = std::fs::read(path)
                .with_context(|| format!("reading --process {}", path.display()))?;
            Some(serde_json::from_slice(&raw).with_context(|| {
                format!("--process {}: not a runtime-spec process", path.display())
            })?)
        }
        None => None,
    };
    let user = match &e.user {
        Some(u) => {
            let (uid, gid) = match u.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (u.as_str(), None),
            };
            let uid = uid
                .parse()
                .with_context(|| format!("--user {u:?}: uid must be a number"))?;
            let gid = gid
                .map(|g| g.parse())
                .transpose()
                .with_context(|| format!("--user {u:?}: gid must be a number"))?;
            Some((uid, gid))
        }
        None => None,
    };
    let opts = container::exec::ExecOptions {
        id: &e.id,
        process,
        args: e.command.clone(),
        tty: e.tty,
        console_socket: e.console_socket.as_deref(),
        detach: e.detach,
        pid_file: e.pid_file.as_deref(),
        cwd: e.cwd.as_deref(),
        env: e.env.clone(),
        user,
        additional_gids: e.additional_gids.clone(),
        caps: e.cap.clone(),
        no_new_privs: e.no_new_privs,
        preserve_fds: e.preserve_fds,
    };
    Ok(container::exec::exec(root, &opts)?)
}

fn refuse_systemd(cli: &Cli) -> Result<()> {
    if cli.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not supported; use cgroupfs paths (omit the flag)");
    }
    Ok(())
}

impl args::CreateArgs {
    fn options(&self, foreground: bool) -> CreateOptions<'_> {
        CreateOptions {
            id: &self.id,
            bundle: &self.bundle,
            pid_file: self.pid_file.as_deref(),
            console_socket: self.console_socket.as_deref(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
            foreground,
        }
    }
}

/// runc's OWNER column: who owns the container's state directory (its name from
/// /etc/passwd — no NSS in a static binary — else "#uid").
fn owner(root: &StateRoot, id: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(root.dir(id)).map(|m| m.uid()) else {
        return String::new();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

fn list(root: &StateRoot, format: ListFormat, quiet: bool) -> Result<()> {
    let states = container::list::list(root)?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for s in &states {
            writeln!(out, "{}", s.id)?;
        }
        return Ok(());
    }
    match format {
        ListFormat::Json => {
            let items: Vec<serde_json::Value> = states
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "ociVersion": berth_runtime::state::OCI_VERSION,
                        "id": s.id,
                        "pid": if s.status == berth_runtime::Status::Stopped { 0 } else { s.pid },
                        "status": s.status.as_str(),
                        "bundle": s.bundle,
                        "rootfs": s.rootfs,
                        "created": s.created,
                        "owner": owner(root, &s.id),
                        "annotations": s.annotations,
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string(&items)?)?;
        }
        ListFormat::Table => {
            writeln!(
                out,
                "{:<20} {:<8} {:<10} {:<40} {:<31} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            )?;
            for s in &states {
                let pid = if s.status == berth_runtime::Status::Stopped {
                    0
                } else {
                    s.pid
                };
                writeln!(
                    out,
                    "{:<20} {:<8} {:<10} {:<40} {:<31} {}",
                    s.id,
                    pid,
                    s.status.as_str(),
                    s.bundle.display(),
                    s.created,
                    owner(root, &s.id)
                )?;
            }
        }
    }
    Ok(())
}
