//! `berth` container commands: run, create, start, stop, kill, restart, rm, ps, top, exec,
//! logs, inspect, wait, stats, pause, unpause, port, rename, container prune, and the
//! hidden `container-monitor`. Arguments and output only: the work is berth-engine's.

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use berth_engine::container::exec::ExecRequest;
use berth_engine::logs::{parse_since, parse_until, LogOptions};
use berth_engine::{CreateRequest, Engine, NetworkMode};
use clap::{ArgAction, Args, Subcommand};

use super::Globals;

#[derive(Subcommand, Debug)]
pub enum ContainerCommands {
    /// Create and run a container from an image
    Run(Box<RunArgs>),
    /// Create a container from an image (it doesn't run until `start`)
    Create(Box<CreateArgs>),
    /// Start stopped or created containers
    Start(StartArgs),
    /// Attach to a running container's output (and stdin)
    Attach(AttachArgs),
    /// Stop running containers (stop signal, then SIGKILL after the timeout)
    Stop(StopArgs),
    /// Send a signal to running containers
    Kill(KillArgs),
    /// Restart containers
    Restart(StopArgs),
    /// Remove containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Show the processes of a container (host PIDs)
    Top(TopArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Show a container's output
    Logs(LogsArgs),
    /// Show containers (or images) as JSON
    Inspect(InspectArgs),
    /// Wait for containers to stop; print their exit codes
    Wait(NamesArgs),
    /// Live CPU, memory and pids of running containers
    Stats(StatsArgs),
    /// Freeze every process of containers
    Pause(NamesArgs),
    /// Thaw paused containers
    Unpause(NamesArgs),
    /// List a container's published ports
    Port(PortArgs),
    /// Give a container a new name
    Rename { container: String, new_name: String },
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// The per-container monitor (started by `start`; not for users)
    #[command(name = "container-monitor", hide = true)]
    ContainerMonitor(MonitorArgs),
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Remove every stopped container
    Prune {
        /// Don't ask (prune never asks)
        #[arg(short, long)]
        force: bool,
    },
    /// Create and run a container
    Run(Box<RunArgs>),
    /// Create a container
    Create(Box<CreateArgs>),
    /// Start containers
    Start(StartArgs),
    /// Attach to a running container
    Attach(AttachArgs),
    /// Stop containers
    Stop(StopArgs),
    /// Kill containers
    Kill(KillArgs),
    /// Restart containers
    Restart(StopArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Show a container's processes
    Top(TopArgs),
    /// Run a command in a container
    Exec(ExecArgs),
    /// Show a container's output
    Logs(LogsArgs),
    /// Show containers as JSON
    Inspect(InspectArgs),
    /// Wait for containers to stop
    Wait(NamesArgs),
    /// Resource usage
    Stats(StatsArgs),
    /// Freeze containers
    Pause(NamesArgs),
    /// Thaw containers
    Unpause(NamesArgs),
    /// Published ports
    Port(PortArgs),
    /// Rename a container
    Rename { container: String, new_name: String },
}

#[derive(Args, Debug)]
pub struct MonitorArgs {
    #[arg(long)]
    root: PathBuf,
    #[arg(long = "run-root")]
    run_root: PathBuf,
    id: String,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
    /// Keep stdin open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a terminal
    #[arg(short, long)]
    tty: bool,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Container name
    #[arg(long)]
    name: Option<String>,
    /// Set an environment variable (KEY=VALUE, or KEY to take ours)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines)
    #[arg(long = "env-file", value_name = "FILE")]
    env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    workdir: Option<String>,
    /// User (name|uid[:group|gid])
    #[arg(short, long)]
    user: Option<String>,
    /// Bind mount or volume: HOST:CTR[:ro], NAME:CTR[:ro], CTR
    #[arg(short, long = "volume")]
    volume: Vec<String>,
    /// Mount: type=bind|volume|tmpfs,source=..,target=..[,readonly]
    #[arg(long)]
    mount: Vec<String>,
    /// Mount a tmpfs: CTR[:options]
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Mount the root file system read-only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short, long, value_parser = parse_memory)]
    memory: Option<i64>,
    /// Number of CPUs (e.g. 1.5)
    #[arg(long)]
    cpus: Option<f64>,
    /// Maximum number of processes (-1: unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Add a Linux capability
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop a Linux capability
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Security options (no-new-privileges, seccomp=unconfined|PROFILE)
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Override the image's entrypoint ("" clears it)
    #[arg(long)]
    entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// OCI runtime binary (default: berth-runtime)
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// Network: bridge (default), NAME, none, host or container:NAME
    #[arg(long, visible_alias = "net")]
    network: Option<String>,
    /// Address on the network (user networks)
    #[arg(long)]
    ip: Option<std::net::Ipv4Addr>,
    /// More names the container answers to on its network
    #[arg(long = "network-alias", visible_alias = "net-alias")]
    network_alias: Vec<String>,
    /// Publish every port the image exposes on a free host port
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Name server for the container
    #[arg(long)]
    dns: Vec<String>,
    /// Add a line to /etc/hosts (NAME:IP)
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Set a label (KEY=VALUE)
    #[arg(short, long)]
    label: Vec<String>,
    /// Signal that stops the container (default: the image's, else SIGTERM)
    #[arg(long = "stop-signal")]
    stop_signal: Option<String>,
    /// Seconds to wait for the stop signal before SIGKILL
    #[arg(long = "stop-timeout")]
    stop_timeout: Option<u32>,
    /// Publish a port: [HOSTIP:][HOSTPORT:]PORT[/tcp|udp]
    #[arg(short, long)]
    publish: Vec<String>,
    /// IMAGE [COMMAND [ARG...]]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND]"
    )]
    image_and_command: Vec<String>,
}

#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Run in the background and print the container id
    #[arg(short, long)]
    detach: bool,
    #[command(flatten)]
    create: CreateArgs,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it
    #[arg(short, long)]
    attach: bool,
    /// Attach stdin
    #[arg(short, long)]
    interactive: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Don't forward our stdin
    #[arg(long = "no-stdin")]
    no_stdin: bool,
    container: String,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    time: Option<u32>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal (default SIGKILL)
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Kill and remove running containers
    #[arg(short, long)]
    force: bool,
    /// Remove the container's anonymous volumes too
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// All containers (default: running ones)
    #[arg(short, long)]
    all: bool,
    /// Only ids
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only the newest container
    #[arg(short = 'l', long)]
    latest: bool,
    /// "table", "json", or a template like "{{.ID}}\t{{.Names}}"
    #[arg(long)]
    format: Option<String>,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    container: String,
    /// ps options (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Run in the background
    #[arg(short, long)]
    detach: bool,
    /// Keep stdin open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a terminal
    #[arg(short, long)]
    tty: bool,
    /// User (name|uid[:group|gid])
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory
    #[arg(short, long)]
    workdir: Option<String>,
    /// Set an environment variable
    #[arg(short, long)]
    env: Vec<String>,
    container: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep following the output
    #[arg(short, long)]
    follow: bool,
    /// Only output since this time (RFC 3339, unix seconds, or a duration like 10m)
    #[arg(long)]
    since: Option<String>,
    /// Only output before this time (same forms as --since)
    #[arg(long)]
    until: Option<String>,
    /// Number of lines from the end ("all" for every line)
    #[arg(short = 'n', long)]
    tail: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    container: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Only containers or only images
    #[arg(long = "type")]
    kind: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Print one sample and exit
    #[arg(long = "no-stream")]
    no_stream: bool,
    /// Include stopped containers
    #[arg(short, long)]
    all: bool,
    /// Containers (default: every running one)
    containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    container: String,
    /// PORT[/PROTO]
    port: Option<String>,
}

fn parse_memory(s: &str) -> std::result::Result<i64, String> {
    berth_engine::spec::parse_memory(s).map_err(|e| e.to_string())
}

fn engine(g: &Globals) -> Result<Engine> {
    g.engine()
}

/// Runs a container command; the process exit status (docker's: 125 for engine errors,
/// 126/127 for a command that can't run, the container's own for foreground `run`).
pub fn run(g: &Globals, cmd: ContainerCommands) -> i32 {
    match dispatch(g, cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e:#}");
            e.downcast_ref::<berth_engine::Error>()
                .map_or(125, berth_engine::Error::exit_code)
        }
    }
}

fn dispatch(g: &Globals, cmd: ContainerCommands) -> Result<i32> {
    use ContainerCommand as C;
    use ContainerCommands as T;
    match cmd {
        T::ContainerMonitor(a) => Ok(berth_engine::monitor::monitor_main(
            a.root, a.run_root, a.id,
        )),
        T::Run(a) | T::Container(C::Run(a)) => run_container(g, *a),
        T::Create(a) | T::Container(C::Create(a)) => {
            let e = engine(g)?;
            let id = e.create(&create_request(*a)?)?;
            println!("{id}");
            Ok(0)
        }
        T::Start(a) | T::Container(C::Start(a)) => start(g, a),
        T::Attach(a) | T::Container(C::Attach(a)) => {
            let e = engine(g)?;
            let rec = e.find(&a.container)?;
            let started = e.attach(&rec.id)?;
            let stdin = !a.no_stdin && rec.config.open_stdin;
            attach(&e, started, rec.config.tty, stdin)
        }
        T::Stop(a) | T::Container(C::Stop(a)) => {
            each(&a.containers, |e, c| e.stop(c, a.time).map(drop), g)
        }
        T::Restart(a) | T::Container(C::Restart(a)) => {
            each(&a.containers, |e, c| e.restart(c, a.time).map(drop), g)
        }
        T::Kill(a) | T::Container(C::Kill(a)) => each(
            &a.containers,
            |e, c| e.kill(c, a.signal.as_deref()).map(drop),
            g,
        ),
        T::Rm(a) | T::Container(C::Rm(a)) => each(
            &a.containers,
            |e, c| e.remove(c, a.force, a.volumes).map(drop),
            g,
        ),
        T::Pause(a) | T::Container(C::Pause(a)) => {
            each(&a.containers, |e, c| e.pause(c).map(drop), g)
        }
        T::Unpause(a) | T::Container(C::Unpause(a)) => {
            each(&a.containers, |e, c| e.unpause(c).map(drop), g)
        }
        T::Ps(a) | T::Container(C::Ls(a)) => ps(g, a),
        T::Top(a) | T::Container(C::Top(a)) => top(g, a),
        T::Exec(a) | T::Container(C::Exec(a)) => exec(g, a),
        T::Logs(a) | T::Container(C::Logs(a)) => logs(g, a),
        T::Inspect(a) => inspect(g, a, true),
        T::Container(C::Inspect(a)) => inspect(g, a, false),
        T::Wait(a) | T::Container(C::Wait(a)) => {
            let e = engine(g)?;
            let mut failed = false;
            for c in &a.containers {
                match e.wait(c) {
                    Ok(code) => println!("{code}"),
                    Err(err) => {
                        eprintln!("berth: {err}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        T::Stats(a) | T::Container(C::Stats(a)) => stats(g, a),
        T::Port(a) | T::Container(C::Port(a)) => {
            let e = engine(g)?;
            for p in e.ports(&a.container)? {
                if a.port.as_ref().is_none_or(|want| {
                    p.container_port == *want || p.container_port == format!("{want}/tcp")
                }) {
                    println!("{} -> {}:{}", p.container_port, p.host_ip, p.host_port);
                }
            }
            Ok(0)
        }
        T::Rename {
            container,
            new_name,
        }
        | T::Container(C::Rename {
            container,
            new_name,
        }) => {
            engine(g)?.rename(&container, &new_name)?;
            Ok(0)
        }
        T::Container(C::Prune { .. }) => {
            let removed = engine(g)?.prune()?;
            if !removed.is_empty() {
                println!("Deleted Containers:");
                for id in &removed {
                    println!("{id}");
                }
                println!();
            }
            println!("Total reclaimed: {} containers", removed.len());
            Ok(0)
        }
    }
}

/// Run `f` on each named container, printing each name as docker does; 1 if any failed.
fn each(
    names: &[String],
    f: impl Fn(&Engine, &str) -> berth_engine::Result<()>,
    g: &Globals,
) -> Result<i32> {
    let e = engine(g)?;
    let mut failed = false;
    for n in names {
        match f(&e, n) {
            Ok(()) => println!("{n}"),
            Err(err) => {
                eprintln!("berth: {err}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `-e`/`--env-file` as docker's CLI reads them: `KEY` alone takes our value (or is
/// dropped if we have none), files hold KEY=VALUE lines, `#` comments.
fn env_list(a: &CreateArgs) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut add = |item: &str| {
        if item.contains('=') {
            out.push(item.to_string());
        } else if let Ok(v) = std::env::var(item) {
            out.push(format!("{item}={v}"));
        }
    };
    for f in &a.env_file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("--env-file {}", f.display()))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            add(line);
        }
    }
    for e in &a.env {
        if e.is_empty() || e.starts_with('=') {
            bail!("invalid environment variable: {e:?}");
        }
        add(e);
    }
    Ok(out)
}

fn create_request(a: CreateArgs) -> Result<CreateRequest> {
    let env = env_list(&a)?;
    let net = berth_engine::networking::NetworkOptions {
        aliases: a.network_alias,
        ip: a.ip,
        publish: a.publish,
        publish_all: a.publish_all,
        dns: a
            .dns
            .iter()
            .map(|d| berth_engine::networking::NetworkOptions::parse_dns(d))
            .collect::<berth_engine::Result<_>>()?,
        extra_hosts: a
            .add_host
            .iter()
            .map(|h| berth_engine::networking::NetworkOptions::parse_add_host(h))
            .collect::<berth_engine::Result<_>>()?,
        connected: Vec::new(),
    };
    let mut labels = Vec::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.push((k.to_string(), v.to_string()));
    }
    let mut words = a.image_and_command.into_iter();
    let image = words.next().context("no image given")?;
    Ok(CreateRequest {
        image,
        cmd: words.collect(),
        name: a.name,
        entrypoint: a.entrypoint,
        env,
        workdir: a.workdir,
        user: a.user,
        volumes: a.volume,
        mounts: a.mount,
        tmpfs: a.tmpfs,
        read_only: a.read_only,
        memory: a.memory,
        cpus: a.cpus,
        pids_limit: a.pids_limit,
        cap_add: a.cap_add,
        cap_drop: a.cap_drop,
        security_opt: a.security_opt,
        hostname: a.hostname,
        init: a.init,
        runtime: a.runtime,
        network: a.network.as_deref().map(NetworkMode::parse).transpose()?,
        net,
        tty: a.tty,
        console_size: a.tty.then(berth_engine::attach::terminal_size).flatten(),
        open_stdin: a.interactive,
        auto_remove: a.rm,
        labels,
        stop_signal: a.stop_signal,
        stop_timeout: a.stop_timeout,
    })
}

fn run_container(g: &Globals, a: RunArgs) -> Result<i32> {
    let e = engine(g)?;
    let detach = a.detach;
    let (tty, stdin) = (a.create.tty, a.create.interactive);
    let started = e.run(&create_request(a.create)?, !detach)?;
    if detach {
        println!("{}", started.id);
        return Ok(0);
    }
    attach(&e, started, tty, stdin)
}

/// Relay a started container's streams; its exit code.
fn attach(e: &Engine, started: berth_engine::Started, tty: bool, stdin: bool) -> Result<i32> {
    let Some(mut stream) = started.stream else {
        return Ok(0);
    };
    let id = started.id.clone();
    let opts = berth_engine::attach::RelayOptions { stdin, tty };
    let code = berth_engine::attach::relay(&mut stream, &opts, &mut |sig| {
        let _ = e.kill(&id, Some(sig.as_str()));
    })
    .context("attach")?;
    match code {
        Some(c) => Ok(c),
        // The monitor went away without an exit code (killed): what the record says.
        None => Ok(e.wait(&id).unwrap_or(125)),
    }
}

fn start(g: &Globals, a: StartArgs) -> Result<i32> {
    let e = engine(g)?;
    if a.attach || a.interactive {
        if a.containers.len() != 1 {
            bail!("start: you cannot attach to more than one container");
        }
        let rec = e.find(&a.containers[0])?;
        let mut started = e.start(&rec.id, true)?;
        if started.stream.is_none() {
            // It was running already: attach to it, as docker does.
            started = e.attach(&rec.id)?;
        }
        return attach(
            &e,
            started,
            rec.config.tty,
            a.interactive && rec.config.open_stdin,
        );
    }
    each(&a.containers, |e, c| e.start(c, false).map(drop), g)
}

fn ps(g: &Globals, a: PsArgs) -> Result<i32> {
    let e = engine(g)?;
    let mut list = e.list(a.all || a.latest)?;
    if a.latest {
        list.truncate(1);
    }
    let mut out = io::stdout().lock();
    if a.quiet {
        for c in &list {
            writeln!(out, "{}", if a.no_trunc { &c.id } else { &c.id[..12] })?;
        }
        return Ok(0);
    }
    let format = a.format.as_deref().unwrap_or("table");
    if format == "json" {
        for c in &list {
            writeln!(out, "{}", serde_json::to_string(&c)?)?;
        }
        return Ok(0);
    }
    let template = match format {
        "table" => "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
        t => t,
    };
    let (table, template) = match template.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start().to_string()),
        None => (false, template.to_string()),
    };
    let template = template.replace("\\t", "\t").replace("\\n", "\n");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let field = |c: &berth_engine::ContainerSummary, f: &str| -> Result<String> {
        Ok(match f {
            "ID" => {
                if a.no_trunc {
                    c.id.clone()
                } else {
                    c.id[..12].to_string()
                }
            }
            "Image" => c.image.clone(),
            "Command" => {
                let cmd = if a.no_trunc || c.command.chars().count() <= 20 {
                    c.command.clone()
                } else {
                    format!("{}…", c.command.chars().take(19).collect::<String>())
                };
                format!("\"{cmd}\"")
            }
            "RunningFor" => format!(
                "{} ago",
                berth_engine::container::ps::human_duration((now - c.created) * 1_000_000_000)
            ),
            "CreatedAt" => berth_engine::container::inspect::time_string(c.created * 1_000_000_000),
            "Status" => c.status.clone(),
            "State" => c.state.clone(),
            "Ports" => c.ports.join(", "),
            "Names" => c
                .names
                .iter()
                .map(|n| n.trim_start_matches('/'))
                .collect::<Vec<_>>()
                .join(","),
            "Labels" => c
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            other => bail!("ps --format: unknown field {other:?}"),
        })
    };
    let render = |get: &dyn Fn(&str) -> Result<String>| -> Result<String> {
        let mut s = String::new();
        let mut rest = template.as_str();
        while let Some(i) = rest.find("{{") {
            s.push_str(&rest[..i]);
            let Some(j) = rest[i..].find("}}") else {
                bail!("ps --format: unclosed {{{{ in {template:?}");
            };
            let name = rest[i + 2..i + j].trim().trim_start_matches('.');
            s.push_str(&get(name)?);
            rest = &rest[i + j + 2..];
        }
        s.push_str(rest);
        Ok(s)
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    if table {
        let header = render(&|f| {
            Ok(match f {
                "ID" => "CONTAINER ID",
                "RunningFor" => "CREATED",
                "CreatedAt" => "CREATED AT",
                other => return Ok(other.to_ascii_uppercase()),
            }
            .to_string())
        })?;
        rows.push(header.split('\t').map(str::to_string).collect());
    }
    for c in &list {
        let line = render(&|f| field(c, f))?;
        rows.push(line.split('\t').map(str::to_string).collect());
    }
    print_columns(&mut out, &rows)?;
    Ok(0)
}

/// Tab-separated cells as aligned columns (3 spaces apart, as docker's tabwriter).
fn print_columns(out: &mut dyn Write, rows: &[Vec<String>]) -> Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(width[i] - c.chars().count() + 3));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn top(g: &Globals, a: TopArgs) -> Result<i32> {
    let e = engine(g)?;
    let t = e.top(&a.container, &a.ps_args)?;
    let mut rows = vec![t.titles];
    rows.extend(t.processes);
    let rows: Vec<Vec<String>> = rows;
    print_columns(&mut io::stdout().lock(), &rows)?;
    Ok(0)
}

fn exec(g: &Globals, a: ExecArgs) -> Result<i32> {
    let e = engine(g)?;
    let code = e.exec(
        &a.container,
        &ExecRequest {
            cmd: a.command,
            tty: a.tty,
            interactive: a.interactive,
            detach: a.detach,
            user: a.user,
            workdir: a.workdir,
            env: a.env,
        },
    )?;
    Ok(code)
}

fn logs(g: &Globals, a: LogsArgs) -> Result<i32> {
    let e = engine(g)?;
    let since = a
        .since
        .as_deref()
        .map(|s| parse_since(s, SystemTime::now()))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_until(s, SystemTime::now()))
        .transpose()?;
    let tail = match a.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .with_context(|| format!("--tail {n}: not a number"))?,
        ),
    };
    let opts = LogOptions {
        follow: a.follow,
        since,
        until,
        tail,
        timestamps: a.timestamps,
    };
    e.logs(&a.container, &opts, &mut io::stdout(), &mut io::stderr())?;
    Ok(0)
}

fn inspect(g: &Globals, a: InspectArgs, images_too: bool) -> Result<i32> {
    let e = engine(g)?;
    let kind = a.kind.as_deref();
    if let Some(k) = kind {
        if k != "container" && k != "image" {
            bail!("inspect --type {k}: use container or image");
        }
    }
    let mut out = Vec::new();
    let mut failed = false;
    for n in &a.names {
        let as_container = (kind != Some("image")).then(|| e.inspect(n));
        match as_container {
            Some(Ok(v)) => {
                out.push(v);
                continue;
            }
            Some(Err(berth_engine::Error::NoSuchContainer(_))) | None => {}
            Some(Err(err)) => {
                eprintln!("berth: {err}");
                failed = true;
                continue;
            }
        }
        if images_too && kind != Some("container") {
            let store = berth_image::ImageStore::open(&g.root)?;
            if let Ok(d) = store.inspect(n) {
                out.push(serde_json::to_value(d)?);
                continue;
            }
        }
        eprintln!("berth: No such object: {n}");
        failed = true;
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(if failed { 1 } else { 0 })
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    // docker's units.BytesSize: 4 significant digits, no trailing zeros ("64MiB", "1.5GiB").
    let int_digits = (v.max(1.0).log10().floor() as usize) + 1;
    let s = format!("{v:.*}", 4usize.saturating_sub(int_digits));
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", UNITS[u])
}

fn stats(g: &Globals, a: StatsArgs) -> Result<i32> {
    let e = engine(g)?;
    let names: Vec<String> = if a.containers.is_empty() {
        e.list(a.all)?.into_iter().map(|c| c.id).collect()
    } else {
        for c in &a.containers {
            e.find(c)?;
        }
        a.containers.clone()
    };
    let cpus = berth_engine::stats::online_cpus();
    let sample_all = || -> Vec<Option<berth_engine::container::stats::ContainerStats>> {
        names.iter().map(|n| e.stats(n).ok()).collect()
    };
    let mut prev = sample_all();
    let mut out = io::stdout();
    loop {
        std::thread::sleep(Duration::from_millis(if a.no_stream { 500 } else { 1000 }));
        let now = sample_all();
        let mut rows = vec![vec![
            "CONTAINER ID".to_string(),
            "NAME".into(),
            "CPU %".into(),
            "MEM USAGE / LIMIT".into(),
            "MEM %".into(),
            "PIDS".into(),
        ]];
        for (i, n) in names.iter().enumerate() {
            match (&prev[i], &now[i]) {
                (Some(p), Some(c)) => {
                    let s = &c.stats;
                    let mem_pct = if s.memory_limit > 0 {
                        s.memory_usage as f64 * 100.0 / s.memory_limit as f64
                    } else {
                        0.0
                    };
                    rows.push(vec![
                        c.id[..12].to_string(),
                        c.name.clone(),
                        format!(
                            "{:.2}%",
                            berth_engine::stats::cpu_percent(&p.stats, s, cpus)
                        ),
                        format!(
                            "{} / {}",
                            human_bytes(s.memory_usage),
                            human_bytes(s.memory_limit)
                        ),
                        format!("{mem_pct:.2}%"),
                        s.pids.to_string(),
                    ]);
                }
                _ => rows.push(vec![
                    n.chars().take(12).collect(),
                    "--".into(),
                    "0.00%".into(),
                    "0B / 0B".into(),
                    "0.00%".into(),
                    "0".into(),
                ]),
            }
        }
        if !a.no_stream {
            // Clear the screen and home the cursor, as docker's live table.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        print_columns(&mut out, &rows)?;
        out.flush()?;
        if a.no_stream {
            return Ok(0);
        }
        prev = now;
    }
}
