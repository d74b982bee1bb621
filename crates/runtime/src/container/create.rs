//! `create`: everything up to a container whose init waits for `start`.

use crate::cgroup;
use crate::error::{Context, Result, RuntimeError, SysContext};
use crate::hooks;
use crate::namespaces::{self, Plan};
use crate::process::channel::{self, Tag};
use crate::process::init::{self, InitArgs};
use crate::spec::{self, Bundle};
use crate::state::{self, Locked, State, StateRoot, Status, EXEC_FIFO};
use crate::sys::{self, Forked};
use berth_cgroups::CgroupManager;
use nix::sched::CloneFlags;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// `run` without -d: the runtime relays the terminal itself, no console socket needed.
    pub foreground: bool,
}

pub struct Created {
    pub locked: Locked,
    pub state: State,
    pub bundle: Bundle,
    /// The terminal's master side when `run` relays it.
    pub console: Option<OwnedFd>,
    /// The host's cgroup layout as detected for this create.
    pub layout: berth_cgroups::Layout,
}

/// Undoes a half-made container on every error path: the init and anything it forked,
/// the cgroup, the state directory.
struct Cleanup {
    dir: Option<PathBuf>,
    pids: Vec<Pid>,
    cgroup: Option<Box<dyn CgroupManager>>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for pid in self.pids.drain(..) {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Cleanup {
    fn disarm(mut self) {
        self.dir = None;
        self.pids.clear();
        self.cgroup = None;
    }
}

pub fn create(root: &StateRoot, o: &CreateOptions) -> Result<Created> {
    state::validate_id(o.id)?;
    // A container sharing our pid namespace must not reach this binary through
    // /proc/<pid>/exe either (CVE-2019-5736); the init inherits this until its execve.
    nix::sys::prctl::set_dumpable(false).sys(|| "PR_SET_DUMPABLE".into())?;
    let bundle = spec::load(o.bundle)?;
    let process = bundle
        .spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig("process is missing".into()))?;
    let terminal = process.terminal() == Some(true);
    if terminal && o.console_socket.is_none() && !o.foreground {
        return Err(RuntimeError::InvalidConfig(
            "process.terminal is true but no --console-socket was given to receive it".into(),
        ));
    }
    if !terminal && o.console_socket.is_some() {
        return Err(RuntimeError::InvalidConfig(
            "--console-socket was given but process.terminal is false".into(),
        ));
    }
    let linux = bundle
        .spec
        .linux()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidConfig("linux is missing".into()))?;
    let plan = Plan::new(linux)?;
    let cgroup_config = cgroup::config_for(&bundle.spec, o.id)?;

    let locked = root.claim(o.id)?;
    let mut cleanup = Cleanup {
        dir: Some(locked.dir.clone()),
        pids: Vec::new(),
        cgroup: None,
    };
    let config_copy = locked.dir.join(state::CONFIG_FILE);
    std::fs::write(&config_copy, &bundle.raw).at(&config_copy)?;
    let fifo_path = locked.dir.join(EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .sys(|| format!("mkfifo {}", fifo_path.display()))?;
    // Read-write so opening never blocks; the init keeps it and reads start's byte.
    let exec_fifo: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo_path)
        .at(&fifo_path)?
        .into();
    let console_socket = match o.console_socket {
        Some(path) => Some((crate::tty::connect_console_socket(path)?, path)),
        None => None,
    };
    let layout = berth_cgroups::Layout::detect()?;
    // The directories exist before the init does: it can then be cloned straight into the
    // unified cgroup and move itself into the v1 ones, both without the kernel's global
    // migration lock (see CgroupManager::join_self). In a user namespace the init can't
    // write the host's cgroupfs, so there we move it from outside.
    let self_join = !plan.new_user && plan.join_user.is_none();
    // The v1 directories (a dozen cgroup mkdirs) can be made while the init mounts, and the
    // init joins them once told they exist — unless it joins a mount namespace by path
    // first, where the host's cgroupfs may not be in view any more.
    let joins_mount_ns = plan
        .join_in_init
        .iter()
        .any(|(t, _)| *t == oci_spec::runtime::LinuxNamespaceType::Mount);
    let join_late = self_join && !joins_mount_ns && !plan.rootless;
    let manager = create_cgroup(&plan, &bundle.spec, &layout, &cgroup_config, join_late)?;
    let unified = if self_join {
        cgroup::unified_dir_fd(manager.as_deref())
    } else {
        None
    };
    cleanup.cgroup = manager;
    let (parent_end, child_end) = channel::pair()?;

    // Namespaces that only apply to children are entered by us just around the clone, and
    // left again right after it so hooks we run later stay in the host's.
    // Without root, our writes of the id maps (and newuidmap's) and of /proc/self files
    // need the files to be ours, i.e. us and the init dumpable (non-dumpable means root's);
    // the init turns that off again once mapped.
    let dumpable_init = plan.rootless && (plan.new_user || plan.join_user.is_some());
    if dumpable_init {
        nix::sys::prctl::set_dumpable(true).sys(|| "PR_SET_DUMPABLE".into())?;
    }
    let oom_restore = oom_score_for_children(&plan, process)?;
    let restore = ForChildren::enter(&plan, linux)?;
    if plan.join_user.is_some() && plan.unshare_after_userns.contains(CloneFlags::CLONE_NEWPID) {
        nix::sys::prctl::set_child_subreaper(true).sys(|| "PR_SET_CHILD_SUBREAPER".into())?;
    }
    let flags = plan.clone_flags.bits();
    let (forked, in_unified) = sys::fork_into_cgroup(flags, unified.as_ref().map(|f| f.as_fd()));
    let forked = forked.sys(|| "clone".into());
    if !matches!(forked, Ok(Forked::Child)) {
        if let Some(old) = oom_restore {
            let _ = std::fs::write("/proc/self/oom_score_adj", old);
        }
        if dumpable_init {
            nix::sys::prctl::set_dumpable(false).sys(|| "PR_SET_DUMPABLE".into())?;
        }
        restore.leave()?;
    }
    let child = match forked? {
        Forked::Child => {
            // From here on this is the container's init: it never returns into our caller.
            drop(parent_end);
            init::run(InitArgs {
                id: o.id,
                bundle: &bundle,
                plan: &plan,
                channel: &child_end,
                exec_fifo: &exec_fifo,
                console_socket: console_socket.as_ref().map(|(fd, p)| (fd, *p)),
                preserve_fds: o.preserve_fds,
                no_pivot: o.no_pivot,
                no_new_keyring: o.no_new_keyring,
                cgroup_path: cleanup.cgroup.as_ref().map(|_| cgroup_config.path.as_ref()),
                cgroup_layout: Some(&layout),
                cgroup: cleanup.cgroup.as_deref().filter(|_| self_join),
                join_late,
                in_unified,
                state_dir: &locked.dir,
            })
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    drop(exec_fifo);
    drop(console_socket);
    cleanup.pids.push(child);

    let mut init_pid = child;
    if plan.join_user.is_some() && plan.unshare_after_userns.contains(CloneFlags::CLONE_NEWPID) {
        let msg = parent_end.expect(Tag::InitPid)?;
        let raw: i32 = String::from_utf8_lossy(&msg.payload)
            .parse()
            .map_err(|_| RuntimeError::Init("bad init pid message".into()))?;
        let _ = waitpid(child, None);
        init_pid = Pid::from_raw(raw);
        cleanup.pids = vec![init_pid];
        parent_end.send_or_peer_error(Tag::Adopted, b"")?;
    }
    if plan.new_user {
        namespaces::write_id_maps(
            init_pid,
            linux.uid_mappings().as_deref().unwrap_or_default(),
            linux.gid_mappings().as_deref().unwrap_or_default(),
        )?;
        parent_end.send_or_peer_error(Tag::Mapped, b"")?;
    }
    if let Some(m) = &cleanup.cgroup {
        let mut resources = cgroup::effective_resources(&bundle.spec);
        if plan.rootless {
            // Device rules can't be enforced without root: skipped, as runc does.
            if let Some(r) = &mut resources {
                r.set_devices(None);
            }
        }
        let res = (|| -> std::result::Result<(), berth_cgroups::CgroupError> {
            if join_late {
                m.create()?;
            }
            if !self_join {
                m.apply(init_pid.as_raw())?;
            }
            if let Some(resources) = &resources {
                m.set(resources)?;
            }
            Ok(())
        })();
        match res {
            Ok(()) => {}
            // Without root and without resources to enforce, a cgroup is a nicety.
            Err(e)
                if plan.rootless
                    && cgroup::is_permission_error(&e)
                    && cgroup::requested_resources(&bundle.spec).is_empty() =>
            {
                crate::log::warn(&format!("running without a cgroup: {e}"));
                if let Some(m) = cleanup.cgroup.take() {
                    let _ = m.destroy();
                }
            }
            Err(e) if plan.rootless && cgroup::is_permission_error(&e) => {
                return Err(cgroup::rootless_error(&bundle.spec, e))
            }
            Err(e) => return Err(e.into()),
        }
    }
    parent_end.send_or_peer_error(Tag::CgroupReady, b"")?;

    let mut console = None;
    loop {
        let Some(msg) = parent_end.recv()? else {
            return Err(RuntimeError::Init(
                "the container's init exited during setup".into(),
            ));
        };
        match msg.tag {
            Tag::Ready => break,
            Tag::Error => {
                return Err(RuntimeError::Init(
                    String::from_utf8_lossy(&msg.payload).into_owned(),
                ))
            }
            Tag::Console => console = msg.fd,
            Tag::HookPoint => {
                let state = super::hook_state(o.id, "created", init_pid.as_raw(), &bundle)?;
                let h = bundle.spec.hooks().as_ref();
                hooks::run(hooks::Kind::Prestart, h, &state)?;
                hooks::run(hooks::Kind::CreateRuntime, h, &state)?;
                parent_end.send_or_peer_error(Tag::HooksDone, &state)?;
            }
            other => {
                return Err(RuntimeError::Init(format!(
                    "unexpected {other:?} from the container's init"
                )))
            }
        }
    }

    let (pid_start, _) = state::process_stat(init_pid.as_raw()).ok_or_else(|| {
        RuntimeError::Init("the container's init exited right after setup".into())
    })?;
    let st = State {
        id: o.id.to_string(),
        status: Status::Created,
        pid: init_pid.as_raw(),
        pid_start,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        created: state::now_rfc3339(),
        cgroup: cleanup.cgroup.is_some().then_some(cgroup_config),
        own_pid_ns: plan.new_pid,
    };
    locked.save(&st)?;
    if let Some(pid_file) = o.pid_file {
        write_pid_file(pid_file, init_pid)?;
    }
    cleanup.disarm();
    Ok(Created {
        locked,
        state: st,
        bundle,
        console,
        layout,
    })
}

/// Opens and creates the container's cgroup. Without root, cgroups are best-effort as in
/// runc: none at all when config.json names no cgroupsPath and asks for no resources
/// (device rules aside), and one we may not create is skipped unless resources need it.
fn create_cgroup(
    plan: &Plan,
    spec: &oci_spec::runtime::Spec,
    layout: &berth_cgroups::Layout,
    config: &berth_cgroups::CgroupConfig,
    unified_only: bool,
) -> Result<Option<Box<dyn CgroupManager>>> {
    let named = spec
        .linux()
        .as_ref()
        .is_some_and(|l| l.cgroups_path().is_some());
    let wanted = !cgroup::requested_resources(spec).is_empty();
    if plan.rootless && !named && !wanted {
        return Ok(None);
    }
    let manager = berth_cgroups::open_with(layout.clone(), config.clone())?;
    let created = if unified_only {
        manager.create_unified()
    } else {
        manager.create()
    };
    match created {
        Ok(()) => Ok(Some(manager)),
        Err(e) if plan.rootless && cgroup::is_permission_error(&e) => {
            if wanted {
                return Err(cgroup::rootless_error(spec, e));
            }
            crate::log::warn(&format!("running without a cgroup: {e}"));
            let _ = manager.destroy();
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// In a user namespace the init can't lower its OOM score (that takes CAP_SYS_RESOURCE in
/// the host's user namespace): as runc, the runtime sets it just around the clone so the
/// init inherits it, and takes its own back right after (raising is always allowed).
/// Without root, lowering is refused: an error, as in runc.
fn oom_score_for_children(
    plan: &Plan,
    process: &oci_spec::runtime::Process,
) -> Result<Option<String>> {
    let Some(adj) = process.oom_score_adj() else {
        return Ok(None);
    };
    if !plan.new_user && plan.join_user.is_none() {
        return Ok(None);
    }
    let path = "/proc/self/oom_score_adj";
    let old = std::fs::read_to_string(path).at(path)?;
    if let Err(e) = std::fs::write(path, adj.to_string()) {
        return Err(RuntimeError::InvalidConfig(format!(
            "process.oomScoreAdj {adj}: refused by the kernel ({e}); lowering the OOM score \
             (it is {} now) needs CAP_SYS_RESOURCE",
            old.trim()
        )));
    }
    Ok(Some(old))
}

/// Written atomically: a reader polling for the file never sees it empty.
pub fn write_pid_file(path: &Path, pid: Pid) -> Result<()> {
    let path = std::path::absolute(path).at(path)?;
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.as_raw().to_string()).at(&tmp)?;
    std::fs::rename(&tmp, &path).at(&path)
}

/// The pid and time namespaces we switch our children into, and how to switch back.
struct ForChildren {
    pid: Option<OwnedFd>,
    time: Option<OwnedFd>,
}

impl ForChildren {
    fn enter(plan: &Plan, linux: &oci_spec::runtime::Linux) -> Result<ForChildren> {
        let own = |name: &str| -> Result<OwnedFd> {
            let p = format!("/proc/self/ns/{name}");
            Ok(std::fs::File::open(&p).at(&p)?.into())
        };
        let mut r = ForChildren {
            pid: None,
            time: None,
        };
        if let Some(fd) = &plan.join_pid {
            r.pid = Some(own("pid_for_children")?);
            nix::sched::setns(fd, CloneFlags::CLONE_NEWPID)
                .sys(|| "joining pid namespace".into())?;
        }
        let time_flag = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
        if let Some(fd) = &plan.join_time {
            r.time = Some(own("time_for_children")?);
            nix::sched::setns(fd, time_flag).sys(|| "joining time namespace".into())?;
        } else if plan.new_time {
            r.time = Some(own("time_for_children")?);
            nix::sched::unshare(time_flag).sys(|| "creating time namespace".into())?;
            namespaces::write_time_offsets(linux)?;
        }
        Ok(r)
    }

    fn leave(self) -> Result<()> {
        if let Some(fd) = self.pid {
            nix::sched::setns(fd, CloneFlags::CLONE_NEWPID)
                .sys(|| "leaving pid namespace".into())?;
        }
        if let Some(fd) = self.time {
            nix::sched::setns(fd, CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
                .sys(|| "leaving time namespace".into())?;
        }
        Ok(())
    }
}
