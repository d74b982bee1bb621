//! The verbs that work on a live container's cgroup: `pause`, `resume`, `ps`, `events`,
//! `update` — their flags (runc's) and output.

use super::args::{Command, ListFormat};
use anyhow::{bail, Context, Result};
use berth_runtime::container::{events, pause, ps, update};
use berth_runtime::StateRoot;
use clap::Args;
use std::io::{Read, Write};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct IdArg {
    /// Container id
    pub id: String,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Output format: table (the host's ps output for the container's processes) or json
    /// (an array of host pids)
    #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
    pub format: ListFormat,
    /// Container id
    pub id: String,
    /// Options for ps (default -ef); everything after the id goes to ps
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Container id
    pub id: String,
    /// Print the container's stats once, then exit
    #[arg(long)]
    pub stats: bool,
    /// Stats collection interval (Go duration: 5s, 100ms, 1m30s)
    #[arg(long, default_value = "5s")]
    pub interval: String,
}

const RESOURCES_HELP: &str = "\
File with the resources to update (runtime-spec LinuxResources JSON), or '-' for standard \
input; all other options are then ignored. Unchanged values can be omitted, e.g.
{
  \"memory\": { \"limit\": 0, \"reservation\": 0, \"swap\": 0 },
  \"cpu\": { \"shares\": 0, \"quota\": 0, \"period\": 0, \"realtimeRuntime\": 0,
           \"realtimePeriod\": 0, \"cpus\": \"\", \"mems\": \"\" },
  \"blockIO\": { \"weight\": 0 },
  \"pids\": { \"limit\": 0 }
}";

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// Container id
    pub id: String,
    #[arg(short, long, value_name = "FILE|-", long_help = RESOURCES_HELP)]
    pub resources: Option<PathBuf>,
    /// Per cgroup weight, 10 to 1000
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period for hardcapping (in usecs); 0 for the system default
    #[arg(long = "cpu-period", allow_hyphen_values = true)]
    pub cpu_period: Option<String>,
    /// CPU CFS hardcap limit (in usecs) per period; -1 for none
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<String>,
    /// CPU shares (relative weight vs. other containers)
    #[arg(
        long = "cpu-share",
        visible_alias = "cpu-shares",
        allow_hyphen_values = true
    )]
    pub cpu_shares: Option<String>,
    /// CPU realtime period for hardcapping (in usecs); 0 for the system default
    #[arg(long = "cpu-rt-period", allow_hyphen_values = true)]
    pub cpu_rt_period: Option<String>,
    /// CPU realtime hardcap limit (in usecs) per period
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<String>,
    /// CPU(s) to use
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory node(s) to use
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with a unit: 512m, 1g); -1 for none
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation or soft limit (bytes, or with a unit)
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Total memory usage (memory + swap); -1 for unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Kernel memory limit (cgroup v1 kernels that still have it)
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit (cgroup v1)
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<String>,
    /// Maximum number of pids in the container; -1 for none
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT/CAT L3 cache schema (not supported)
    #[arg(long = "l3-cache-schema")]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT/MBA memory bandwidth schema (not supported)
    #[arg(long = "mem-bw-schema")]
    pub mem_bw_schema: Option<String>,
}

/// Runs one of this module's verbs.
pub fn dispatch(root: &StateRoot, command: &Command) -> Result<i32> {
    match command {
        Command::Pause(a) => pause::pause(root, &a.id)?,
        Command::Resume(a) => pause::resume(root, &a.id)?,
        Command::Ps(a) => {
            let pids = ps::pids(root, &a.id)?;
            let text = match a.format {
                ListFormat::Json => serde_json::to_string(&pids)? + "\n",
                ListFormat::Table => ps::table(&pids, &a.ps_args)?,
            };
            std::io::stdout().lock().write_all(text.as_bytes())?;
        }
        Command::Events(a) => {
            let interval = events::parse_duration(&a.interval)?;
            let mut out = std::io::stdout().lock();
            events::events(root, &a.id, interval, a.stats, &mut out)?;
        }
        Command::Update(a) => {
            let json = match &a.resources {
                Some(p) if p.as_os_str() == "-" => {
                    let mut buf = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut buf)
                        .context("reading resources from standard input")?;
                    Some(buf)
                }
                Some(p) => {
                    Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?)
                }
                None => None,
            };
            let flags = a.flags();
            let request = match &json {
                Some(bytes) => update::Request::Json(bytes),
                None => update::Request::Flags(&flags),
            };
            update::update(root, &a.id, request)?;
        }
        other => bail!("not a cgroup verb: {other:?}"),
    }
    Ok(0)
}

impl UpdateArgs {
    fn flags(&self) -> update::UpdateFlags {
        update::UpdateFlags {
            blkio_weight: self.blkio_weight,
            cpu_period: self.cpu_period.clone(),
            cpu_quota: self.cpu_quota.clone(),
            cpu_shares: self.cpu_shares.clone(),
            cpu_rt_period: self.cpu_rt_period.clone(),
            cpu_rt_runtime: self.cpu_rt_runtime.clone(),
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            memory: self.memory.clone(),
            memory_reservation: self.memory_reservation.clone(),
            memory_swap: self.memory_swap.clone(),
            kernel_memory: self.kernel_memory.clone(),
            kernel_memory_tcp: self.kernel_memory_tcp.clone(),
            pids_limit: self.pids_limit,
            l3_cache_schema: self.l3_cache_schema.clone(),
            mem_bw_schema: self.mem_bw_schema.clone(),
        }
    }
}
