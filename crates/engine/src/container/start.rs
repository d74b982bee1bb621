//! `start`: mount the rootfs, write the bundle, hand the container to a new monitor.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use berth_image::snapshot::{self, OverlaySpec};

use crate::attach::{self, Kind};
use crate::container::cleanup;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::monitor;
use crate::records::{ContainerRecord, MountRecord, Status};
use crate::runtime::start_error;
use crate::spec::{self, MountKind, MountSpec, SpecInput};
use crate::user::{self, ResolvedUser};
use crate::volumes::VolumeStore;

/// A started container.
pub struct Started {
    pub id: String,
    /// The init's host pid.
    pub pid: i32,
    /// The monitor's stream, when the caller asked to attach: container output, then
    /// the exit code (see [`crate::attach::relay`]).
    pub stream: Option<UnixStream>,
}

impl Engine {
    /// Start a created or exited container. With `attach`, the returned stream carries
    /// its output from the very first byte.
    pub fn start(&self, what: &str, attach: bool) -> Result<Started> {
        let (_lock, rec) = self.lock(what)?;
        if self.monitor_alive(&rec.id) {
            match rec.state.status {
                Status::Running => {
                    return Ok(Started {
                        id: rec.id.clone(),
                        pid: rec.state.pid,
                        stream: None,
                    })
                }
                Status::Paused => {
                    return Err(Error::State {
                        id: rec.name.clone(),
                        reason: "cannot start a paused container, try unpause instead".into(),
                    })
                }
                // Exited, the monitor is still cleaning up: let it finish.
                _ => self.wait_monitor(&rec.id),
            }
        }
        self.start_locked(&rec, attach)
    }

    pub(crate) fn start_locked(&self, rec: &ContainerRecord, attach: bool) -> Result<Started> {
        let id = &rec.id;
        let rt = self.runtime_of(rec);
        // Whatever an earlier run left (a killed monitor, a reboot that kept /run).
        cleanup::teardown(&self.paths, &rt, id)?;
        match self.launch(rec) {
            Ok(s) => Ok(Started {
                stream: s.stream.filter(|_| attach),
                ..s
            }),
            Err(e) => {
                let _ = cleanup::teardown(&self.paths, &rt, id);
                Err(e)
            }
        }
    }

    fn launch(&self, rec: &ContainerRecord) -> Result<Started> {
        let id = &rec.id;
        let run_dir = self.paths.run_dir(id);
        let rootfs = self.paths.rootfs(id);
        fs::create_dir_all(&rootfs).map_err(|source| Error::Io {
            path: rootfs.clone(),
            source,
        })?;
        snapshot::mount_overlay(
            &OverlaySpec {
                lowers: rec.config.layers.clone(),
                upper: Some((self.paths.upper(id), self.paths.work(id))),
            },
            &rootfs,
        )?;
        let user = user::resolve_user(&rootfs, &rec.config.user)?;
        let input = self.spec_input(rec, rootfs, user)?;
        let spec = spec::build_spec(&input)?;
        let config = run_dir.join("config.json");
        let json = serde_json::to_vec(&spec).map_err(|e| Error::Spec(e.to_string()))?;
        fs::write(&config, json).map_err(|source| Error::Io {
            path: config,
            source,
        })?;

        let (mut mine, theirs) = UnixStream::pair().map_err(|source| Error::Io {
            path: run_dir.clone(),
            source,
        })?;
        let exe = match &self.config.monitor_exe {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|source| Error::Io {
                path: PathBuf::from("/proc/self/exe"),
                source,
            })?,
        };
        monitor::spawn(&exe, &self.paths, id, theirs)?;
        match attach::read_frame(&mut mine) {
            Ok(Some((Kind::Started, p))) => Ok(Started {
                id: id.clone(),
                pid: attach::i32_payload(&p),
                stream: Some(mine),
            }),
            Ok(Some((Kind::Failed, p))) => {
                let code = attach::i32_payload(&p);
                let msg = String::from_utf8_lossy(p.get(4..).unwrap_or_default()).into_owned();
                Err(start_error(id, code, msg))
            }
            _ => {
                let log = fs::read_to_string(self.paths.monitor_log(id)).unwrap_or_default();
                Err(Error::Monitor {
                    id: id.clone(),
                    message: format!(
                        "exited before starting the container: {}",
                        log.lines().last().unwrap_or("no message")
                    ),
                })
            }
        }
    }

    fn spec_input(
        &self,
        rec: &ContainerRecord,
        rootfs: PathBuf,
        user: ResolvedUser,
    ) -> Result<SpecInput> {
        let c = &rec.config;
        let mut mounts = Vec::new();
        let mut volumes: Option<VolumeStore> = None;
        for m in &c.mounts {
            mounts.push(self.mount_spec(m, &mut volumes)?);
        }
        let network = self.join_network(rec, &mut mounts)?;
        Ok(SpecInput {
            rootfs,
            args: c.args.clone(),
            env: c.env.clone(),
            cwd: c.working_dir.clone(),
            user,
            hostname: c.hostname.clone(),
            terminal: c.tty,
            console_size: c.console_size,
            read_only_rootfs: c.read_only,
            mounts,
            memory: c.memory,
            cpus: c.cpus,
            pids_limit: c.pids_limit,
            cap_add: c.cap_add.clone(),
            cap_drop: c.cap_drop.clone(),
            security_opt: c.security_opt.clone(),
            network,
            cgroups_path: format!("/berth/{}", rec.id),
            init: if c.init {
                Some(self.init_binary()?)
            } else {
                None
            },
            annotations: Vec::new(),
        })
    }

    fn mount_spec(&self, m: &MountRecord, volumes: &mut Option<VolumeStore>) -> Result<MountSpec> {
        let kind = match m.kind.as_str() {
            "tmpfs" => MountKind::Tmpfs {
                options: m.options.clone(),
            },
            _ => MountKind::Bind {
                read_only: m.read_only,
            },
        };
        let source = match m.kind.as_str() {
            "volume" => {
                if volumes.is_none() {
                    *volumes = Some(VolumeStore::open(&self.paths.root)?);
                }
                let store = volumes
                    .as_ref()
                    .ok_or_else(|| Error::NoSuchVolume(m.source.clone()))?;
                store.get(&m.source)?.mountpoint
            }
            "bind" => PathBuf::from(&m.source),
            _ => PathBuf::new(),
        };
        Ok(MountSpec {
            source,
            destination: m.destination.clone(),
            kind,
        })
    }

    /// The static binary `--init` bind-mounts at /dev/init: berth itself (it runs
    /// `init_main` when started as /dev/init).
    fn init_binary(&self) -> Result<PathBuf> {
        match &self.config.monitor_exe {
            Some(p) => Ok(p.clone()),
            None => std::env::current_exe().map_err(|source| Error::Io {
                path: PathBuf::from("/proc/self/exe"),
                source,
            }),
        }
    }
}
