//! `create`: a record and a writable layer for a new container; nothing runs yet.

use std::fs;
use std::path::{Path, PathBuf};

use berth_image::ImageStore;
use serde_json::Value;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::monitor::now_ns;
use crate::network::NetworkMode;
use crate::records::{ContainerConfig, ContainerRecord, MountRecord, StateRecord, Status};
use crate::spec;
use crate::volumes::VolumeStore;

/// What `berth create`/`run` ask for (docker's flags, unparsed where the engine owns the
/// syntax: -v, --mount, --tmpfs).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub image: String,
    pub name: Option<String>,
    /// Arguments after the image (replace the image's Cmd).
    pub cmd: Vec<String>,
    /// `--entrypoint` ("" clears the image's).
    pub entrypoint: Option<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    /// `-v` specs: `host:ctr[:ro|rw]`, `name:ctr[:ro|rw]`, `ctr`.
    pub volumes: Vec<String>,
    /// `--mount` specs: `type=bind|volume|tmpfs,source=..,target=..,readonly`.
    pub mounts: Vec<String>,
    /// `--tmpfs` specs: `ctr[:options]`.
    pub tmpfs: Vec<String>,
    pub read_only: bool,
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub hostname: Option<String>,
    pub init: bool,
    pub runtime: Option<PathBuf>,
    pub network: Option<NetworkMode>,
    /// --ip, --network-alias, -p, -P, --dns, --add-host.
    pub net: crate::networking::NetworkOptions,
    pub tty: bool,
    /// With `tty`: the front-end terminal's (rows, cols), docker's HostConfig.ConsoleSize.
    /// The pty has it before the program starts (a resize after the start comes too late
    /// for a program that asks first thing, like `stty size`).
    pub console_size: Option<(u16, u16)>,
    pub open_stdin: bool,
    pub auto_remove: bool,
    pub labels: Vec<(String, String)>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
}

/// The image config fields a container takes.
struct ImageDefaults {
    id: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<String>,
    working_dir: String,
    user: String,
    exposed_ports: Vec<String>,
    volumes: Vec<String>,
    stop_signal: String,
    labels: Vec<(String, String)>,
    layers: Vec<PathBuf>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn image_defaults(root: &Path, image: &str) -> Result<ImageDefaults> {
    let store = ImageStore::open(root)?;
    let details = store.inspect(image)?;
    let c = &details.config;
    let s = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    Ok(ImageDefaults {
        id: details.id.to_string(),
        entrypoint: c.get("Entrypoint").map(strings).unwrap_or_default(),
        cmd: c.get("Cmd").map(strings).unwrap_or_default(),
        env: c.get("Env").map(strings).unwrap_or_default(),
        working_dir: s("WorkingDir"),
        user: s("User"),
        exposed_ports: c.get("ExposedPorts").map(keys).unwrap_or_default(),
        volumes: c.get("Volumes").map(keys).unwrap_or_default(),
        stop_signal: s("StopSignal"),
        labels: c
            .get("Labels")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        layers: store.layer_dirs(image)?,
    })
}

/// docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = name.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidName(name.to_string()))
    }
}

/// 64 random hex digits.
pub fn random_id() -> Result<String> {
    let mut b = [0u8; 32];
    let p = Path::new("/dev/urandom");
    fs::File::open(p)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .map_err(|source| Error::Io {
            path: p.to_path_buf(),
            source,
        })?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A docker-style `adjective_surname` name, from bits of the id.
fn random_name(id: &str) -> String {
    const ADJ: [&str; 16] = [
        "admiring",
        "brave",
        "clever",
        "dazzling",
        "eager",
        "focused",
        "gallant",
        "happy",
        "jolly",
        "keen",
        "lucid",
        "mystifying",
        "nifty",
        "quirky",
        "serene",
        "vigilant",
    ];
    const NAMES: [&str; 16] = [
        "archimedes",
        "babbage",
        "curie",
        "darwin",
        "euler",
        "feynman",
        "galileo",
        "hopper",
        "kepler",
        "lovelace",
        "meitner",
        "noether",
        "pascal",
        "ritchie",
        "turing",
        "wozniak",
    ];
    let n = u64::from_str_radix(&id[..12], 16).unwrap_or(0);
    format!(
        "{}_{}{}",
        ADJ[(n & 15) as usize],
        NAMES[((n >> 4) & 15) as usize],
        (n >> 8) % 100
    )
}

/// docker's rule for local volume names.
fn check_volume_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidVolumeName(name.to_string()))
    }
}

/// Parse one `-v`: `host:ctr[:mode]` (host absolute: bind), `name:ctr[:mode]` (named
/// volume), `ctr` (anonymous volume).
fn parse_volume(spec: &str) -> Result<MountRecord> {
    let bad = || Error::InvalidOption(format!("invalid volume specification: '{spec}'"));
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, dest, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(bad()),
    };
    if !dest.starts_with('/') || dest == "/" || (parts.len() > 1 && source.is_empty()) {
        return Err(bad());
    }
    let mut read_only = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" => read_only = false,
            _ => {
                return Err(Error::InvalidOption(format!(
                    "invalid mode: {m} (in volume specification '{spec}'; use ro or rw)"
                )))
            }
        }
    }
    let kind = if source.is_empty() {
        "volume"
    } else if source.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    if kind == "volume" && !source.is_empty() {
        check_volume_name(source)?;
    }
    Ok(MountRecord {
        kind: kind.into(),
        source: source.into(),
        destination: dest.into(),
        read_only,
        options: Vec::new(),
        anonymous: source.is_empty(),
    })
}

/// Parse one `--mount type=..,source=..,target=..[,readonly][,tmpfs-size=..]`.
fn parse_mount(spec: &str) -> Result<MountRecord> {
    let bad = |why: &str| {
        Error::InvalidOption(format!(
            "invalid argument \"{spec}\" for \"--mount\" flag: {why}"
        ))
    };
    let mut kind = "volume".to_string();
    let (mut source, mut target) = (String::new(), String::new());
    let mut read_only = false;
    let mut options = Vec::new();
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => kind = v.to_string(),
            "source" | "src" => source = v.to_string(),
            "target" | "destination" | "dst" => target = v.to_string(),
            "readonly" | "ro" => read_only = matches!(v, "" | "true" | "1"),
            "tmpfs-size" => options.push(format!("size={v}")),
            "tmpfs-mode" => options.push(format!("mode={v}")),
            _ => return Err(bad(&format!("unknown option '{k}'"))),
        }
    }
    if !target.starts_with('/') || target == "/" {
        return Err(bad("target must be an absolute path other than /"));
    }
    match kind.as_str() {
        "bind" => {
            if !source.starts_with('/') {
                return Err(bad("bind source must be an absolute path"));
            }
            if !Path::new(&source).exists() {
                return Err(Error::InvalidOption(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {source}"
                )));
            }
        }
        "volume" => {
            if !source.is_empty() {
                check_volume_name(&source)?;
            }
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(bad("tmpfs mounts have no source"));
            }
        }
        other => return Err(bad(&format!("unknown mount type '{other}'"))),
    }
    Ok(MountRecord {
        anonymous: kind == "volume" && source.is_empty(),
        kind,
        source,
        destination: target,
        read_only,
        options,
    })
}

/// Parse one `--tmpfs ctr[:opts]`.
fn parse_tmpfs(spec: &str) -> Result<MountRecord> {
    let (dest, opts) = spec.split_once(':').unwrap_or((spec, ""));
    if !dest.starts_with('/') || dest == "/" {
        return Err(Error::InvalidOption(format!(
            "invalid argument \"{spec}\" for \"--tmpfs\" flag: the path must be absolute"
        )));
    }
    let options: Vec<String> = opts
        .split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_string)
        .collect();
    Ok(MountRecord {
        kind: "tmpfs".into(),
        source: String::new(),
        destination: dest.into(),
        read_only: options.iter().any(|o| o == "ro"),
        options,
        anonymous: false,
    })
}

impl Engine {
    /// The runtime a request names, or the default; it must be an executable file.
    pub(crate) fn choose_runtime(&self, requested: Option<&Path>) -> Result<PathBuf> {
        let rt = match requested.or(self.config.runtime.as_deref()) {
            Some(p) => p.to_path_buf(),
            None => crate::oneshot::default_runtime()?,
        };
        use std::os::unix::fs::PermissionsExt;
        match fs::metadata(&rt) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => Ok(rt),
            _ => Err(Error::InvalidOption(format!(
                "--runtime {}: not an executable file",
                rt.display()
            ))),
        }
    }

    /// Create a container; its id.
    pub fn create(&self, req: &CreateRequest) -> Result<String> {
        if let Some(n) = &req.name {
            check_name(n)?;
        }
        let network = req
            .network
            .clone()
            .unwrap_or_else(|| self.config.default_network.clone());
        let network = match network {
            NetworkMode::Container(c) => NetworkMode::Container(self.db.find(&c)?.id),
            m => m,
        };
        let runtime = self.choose_runtime(req.runtime.as_deref())?;
        let img = image_defaults(&self.paths.root, &req.image)?;
        self.check_network(&network, &req.net, &img.exposed_ports)?;

        let entrypoint_override: Option<Vec<String>> = req.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        });
        let args = spec::merge_command(
            entrypoint_override.as_deref(),
            &req.cmd,
            &img.entrypoint,
            &img.cmd,
        )?;
        let entrypoint = entrypoint_override.unwrap_or(img.entrypoint.clone());
        let cmd = if !req.cmd.is_empty() {
            req.cmd.clone()
        } else if req.entrypoint.is_some() {
            Vec::new()
        } else {
            img.cmd.clone()
        };

        let mut mounts = Vec::new();
        for v in &req.volumes {
            mounts.push(parse_volume(v)?);
        }
        for m in &req.mounts {
            mounts.push(parse_mount(m)?);
        }
        for t in &req.tmpfs {
            mounts.push(parse_tmpfs(t)?);
        }
        for v in &img.volumes {
            if !mounts.iter().any(|m| m.destination == *v) {
                mounts.push(MountRecord {
                    kind: "volume".into(),
                    source: String::new(),
                    destination: v.clone(),
                    read_only: false,
                    options: Vec::new(),
                    anonymous: true,
                });
            }
        }
        // Options the spec refuses (capabilities, --security-opt, --cpus...) fail create,
        // not the first start.
        spec::build_spec(&spec::SpecInput {
            rootfs: PathBuf::from("/"),
            args: args.clone(),
            env: Vec::new(),
            cwd: String::new(),
            user: Default::default(),
            hostname: String::new(),
            terminal: req.tty,
            console_size: None,
            read_only_rootfs: req.read_only,
            mounts: Vec::new(),
            memory: req.memory,
            cpus: req.cpus,
            pids_limit: req.pids_limit,
            cap_add: req.cap_add.clone(),
            cap_drop: req.cap_drop.clone(),
            security_opt: req.security_opt.clone(),
            network: spec::NetworkNamespace::New,
            cgroups_path: String::new(),
            init: None,
            annotations: Vec::new(),
        })?;
        // Anonymous volumes are made now (the store names them); whatever fails after
        // this removes them again.
        let anonymous = mounts.iter().filter(|m| m.anonymous).count();
        let mut made = Vec::new();
        let res = (|| {
            if anonymous > 0 {
                let store = VolumeStore::open(&self.paths.root)?;
                for m in mounts.iter_mut().filter(|m| m.anonymous) {
                    m.source = store.create(None)?.name;
                    made.push(m.source.clone());
                }
            }
            self.create_record(req, img, runtime, network, args, entrypoint, cmd, mounts)
        })();
        if res.is_err() && !made.is_empty() {
            if let Ok(store) = VolumeStore::open(&self.paths.root) {
                for v in &made {
                    let _ = store.remove(v, &[]);
                }
            }
        }
        res
    }

    #[allow(clippy::too_many_arguments)]
    fn create_record(
        &self,
        req: &CreateRequest,
        img: ImageDefaults,
        runtime: PathBuf,
        network: NetworkMode,
        args: Vec<String>,
        entrypoint: Vec<String>,
        cmd: Vec<String>,
        mounts: Vec<MountRecord>,
    ) -> Result<String> {
        let id = random_id()?;
        let name = req.name.clone().unwrap_or_else(|| random_name(&id));
        let config = ContainerConfig {
            entrypoint,
            cmd,
            args,
            layers: img.layers,
            env: spec::merge_env(&img.env, &req.env),
            working_dir: req
                .workdir
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or(img.working_dir),
            user: req.user.clone().unwrap_or(img.user),
            hostname: req.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
            tty: req.tty,
            console_size: req.console_size.filter(|_| req.tty),
            open_stdin: req.open_stdin,
            auto_remove: req.auto_remove,
            read_only: req.read_only,
            mounts,
            memory: req.memory,
            cpus: req.cpus,
            pids_limit: req.pids_limit,
            cap_add: req.cap_add.clone(),
            cap_drop: req.cap_drop.clone(),
            security_opt: req.security_opt.clone(),
            init: req.init,
            runtime,
            network,
            net: req.net.clone(),
            exposed_ports: img.exposed_ports,
            stop_signal: req
                .stop_signal
                .clone()
                .filter(|s| !s.is_empty())
                .or_else(|| Some(img.stop_signal).filter(|s| !s.is_empty()))
                .unwrap_or_else(|| "SIGTERM".into()),
            stop_timeout: req.stop_timeout,
            labels: img
                .labels
                .into_iter()
                .chain(req.labels.iter().cloned())
                .collect(),
        };
        if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
            return Err(Error::InvalidOption(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            )));
        }
        let rec = ContainerRecord {
            id: id.clone(),
            name,
            image: req.image.clone(),
            image_id: img.id,
            created: now_ns(),
            config,
            state: StateRecord {
                status: Status::Created,
                pid: 0,
                exit_code: 0,
                started_at: 0,
                finished_at: 0,
                error: String::new(),
                restart_count: 0,
            },
        };
        self.db.insert(&rec)?;
        if let Err(e) = self.prepare_files(&rec) {
            let _ = crate::container::cleanup::remove_files(&self.paths, &id);
            let _ = self.db.remove(&id);
            return Err(e);
        }
        Ok(id)
    }

    /// The container's directories and the volumes it names.
    fn prepare_files(&self, rec: &ContainerRecord) -> Result<()> {
        for d in [self.paths.upper(&rec.id), self.paths.work(&rec.id)] {
            fs::create_dir_all(&d).map_err(|source| Error::Io { path: d, source })?;
        }
        let volumes: Vec<&MountRecord> = rec
            .config
            .mounts
            .iter()
            .filter(|m| m.kind == "volume" && !m.anonymous)
            .collect();
        if !volumes.is_empty() {
            let store = VolumeStore::open(&self.paths.root)?;
            for m in volumes {
                store.create(Some(&m.source))?;
            }
        }
        for m in rec.config.mounts.iter().filter(|m| m.kind == "bind") {
            // `-v` makes a missing host directory, as docker does (`--mount` refused it).
            if !Path::new(&m.source).exists() {
                fs::create_dir_all(&m.source).map_err(|source| Error::Io {
                    path: PathBuf::from(&m.source),
                    source,
                })?;
            }
        }
        Ok(())
    }
}
