//! The build driver: stages in order (only those the target needs), each step either a
//! config change (ENV, LABEL, ...: history only) or a new layer (RUN, COPY, ADD), every
//! step looked up in the layer cache first.
//!
//! A step's state is (config, layer stack). Its cache key is the sha256 of the parent
//! state's config (which lists every diff id and history entry before it), the expanded
//! instruction, the build args in scope (RUN) and the sources' digest (COPY/ADD). A hit
//! replaces the state with the cached one byte for byte — timestamps included — so an
//! unchanged rebuild gives the same image id, and a miss changes every later key.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use berth_engine::oneshot::{self, OneShot};
use berth_image::commit::{CommitRequest, LayerRef};
use berth_image::registry::progress::Progress as PullProgress;
use berth_image::registry::RegistryOptions;
use berth_image::{Digest, ImageStore};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::cache::{Cache, Entry};
use crate::config::{parse_duration, Config};
use crate::copy::{copy_into, CopyOptions, InlineFile};
use crate::dockerfile::{self, CommandForm, CopySource, Dockerfile, Step, StepKind};
use crate::error::{Error, IoContext, Result};
use crate::expand::{key_values, process_word, Vars};
use crate::fsops;
use crate::ignore::{clean, IgnoreRules};
use crate::scratch::{self, Scratch};
use crate::source::{self, Match, SourceRoot};

/// The network RUN steps get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// A fresh network namespace with only loopback (the default, as `--network none`).
    None,
    /// The host's network namespace.
    Host,
}

/// Where the Dockerfile comes from.
#[derive(Debug, Clone)]
pub enum DockerfileInput {
    Path(PathBuf),
    /// Read already (`-f -`).
    Text(String),
}

/// `berth build` options.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    pub dockerfile: DockerfileInput,
    pub tags: Vec<String>,
    pub build_args: Vec<(String, String)>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub network: Network,
    /// The OCI runtime for RUN steps (default: berth-runtime next to the executable).
    pub runtime: Option<PathBuf>,
}

/// What a build reports while it works.
#[derive(Debug)]
pub enum Event<'a> {
    /// A step starts; `label` is like `[2/7] RUN make`.
    Step {
        id: usize,
        label: &'a str,
    },
    Cached {
        id: usize,
    },
    Done {
        id: usize,
        elapsed: Duration,
    },
    /// A line a RUN step printed.
    Output {
        id: usize,
        line: &'a str,
    },
    /// Anything else worth a line (pulls, image ids).
    Note {
        id: usize,
        text: &'a str,
    },
    Warning(&'a str),
}

/// Receives [`Event`]s.
pub trait Progress {
    fn event(&mut self, e: Event<'_>);
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The image id (config digest).
    pub id: Digest,
    pub manifest: Digest,
    pub tags: Vec<String>,
    /// Steps that could hit the cache, and how many did.
    pub cacheable_steps: usize,
    pub cached_steps: usize,
}

/// Build args every Dockerfile may use without declaring them globally (buildkit's
/// automatic platform args).
fn predefined_args() -> Vars {
    [
        ("TARGETPLATFORM", "linux/amd64"),
        ("TARGETOS", "linux"),
        ("TARGETARCH", "amd64"),
        ("TARGETVARIANT", ""),
        ("BUILDPLATFORM", "linux/amd64"),
        ("BUILDOS", "linux"),
        ("BUILDARCH", "amd64"),
        ("BUILDVARIANT", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// What a config-only step does to the config.
type ConfigChange = Box<dyn FnOnce(&mut Config)>;

#[derive(Debug, Clone)]
struct State {
    config: Config,
    layers: Vec<LayerRef>,
}

impl State {
    fn key(&self) -> String {
        Digest::of(&self.config.to_bytes()).to_string()
    }
}

#[derive(Debug, Clone)]
enum Base {
    Scratch,
    Stage(usize),
    Image(String),
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    berth_image::images::rfc3339(secs)
}

fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n\0");
    }
    hex::encode(h.finalize())
}

fn instruction_name(k: &StepKind) -> &'static str {
    match k {
        StepKind::Run { .. } => "RUN",
        StepKind::Copy { add: false, .. } => "COPY",
        StepKind::Copy { add: true, .. } => "ADD",
        StepKind::Env(_) => "ENV",
        StepKind::Arg(_) => "ARG",
        StepKind::Label(_) => "LABEL",
        StepKind::Workdir(_) => "WORKDIR",
        StepKind::User(_) => "USER",
        StepKind::Cmd(_) => "CMD",
        StepKind::Entrypoint(_) => "ENTRYPOINT",
        StepKind::Expose(_) => "EXPOSE",
        StepKind::Volume(_) => "VOLUME",
        StepKind::StopSignal(_) => "STOPSIGNAL",
        StepKind::Healthcheck(_) => "HEALTHCHECK",
        StepKind::Shell(_) => "SHELL",
        StepKind::Onbuild(_) => "ONBUILD",
        StepKind::Maintainer(_) => "MAINTAINER",
    }
}

/// Run a build.
pub fn build(
    store: &mut ImageStore,
    opts: &BuildOptions,
    progress: &mut dyn Progress,
) -> Result<Built> {
    let root = store.root().to_path_buf();
    // A bad name fails before any work, not after the last step.
    for t in &opts.tags {
        berth_image::reference::normalize_tag(t)
            .map_err(|e| Error::Other(format!("-t {t}: {e}")))?;
    }
    scratch::clean_stale(&root);
    let text = match &opts.dockerfile {
        DockerfileInput::Path(p) => std::fs::read_to_string(p).map_err(|e| Error::Context {
            path: p.clone(),
            message: format!("can't read the Dockerfile: {e}"),
        })?,
        DockerfileInput::Text(t) => t.clone(),
    };
    let df = dockerfile::parse(&text)?;
    match std::fs::metadata(&opts.context) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Context {
                path: opts.context.clone(),
                message: "not a directory".into(),
            })
        }
        Err(e) => {
            return Err(Error::Context {
                path: opts.context.clone(),
                message: e.to_string(),
            })
        }
    }
    let ignore_path = opts.context.join(".dockerignore");
    let ignore = match std::fs::read_to_string(&ignore_path) {
        Ok(t) => Some(IgnoreRules::parse(&t)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Error::Io {
                path: ignore_path,
                source: e,
            })
        }
    };
    let ctx = SourceRoot {
        fd: fsops::open_root(&opts.context).at(&opts.context)?,
        what: "build context".into(),
        ignore,
    };
    std::fs::create_dir_all(scratch::scratch_root(&root)).at(scratch::scratch_root(&root))?;
    let cache = Cache::open(&root)?;
    let mut b = Builder {
        store,
        opts,
        df: &df,
        ctx,
        cache,
        root,
        build_args: opts.build_args.iter().cloned().collect(),
        used_args: BTreeSet::new(),
        global: predefined_args(),
        results: HashMap::new(),
        next_id: 1,
        cacheable: 0,
        cached: 0,
        multi: false,
    };
    b.run(progress)
}

struct Builder<'a> {
    store: &'a mut ImageStore,
    opts: &'a BuildOptions,
    df: &'a Dockerfile,
    ctx: SourceRoot,
    cache: Cache,
    root: PathBuf,
    build_args: BTreeMap<String, String>,
    used_args: BTreeSet<String>,
    global: Vars,
    results: HashMap<usize, State>,
    next_id: usize,
    cacheable: usize,
    cached: usize,
    multi: bool,
}

/// The variables an instruction sees: build args in scope, overridden by ENV.
fn scope(args: &Vars, config: &Config) -> Vars {
    let mut v = args.clone();
    for e in config.env() {
        if let Some((k, val)) = e.split_once('=') {
            v.insert(k.to_string(), val.to_string());
        }
    }
    v
}

fn render(c: &CommandForm, shell: &[String]) -> Vec<String> {
    match c {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

impl Builder<'_> {
    fn id(&mut self) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn stage_index(&self, name: &str, before: usize) -> Option<usize> {
        let lname = name.to_lowercase();
        self.df.stages[..before]
            .iter()
            .position(|s| s.name.as_deref() == Some(lname.as_str()))
            .or_else(|| lname.parse::<usize>().ok().filter(|i| *i < before))
    }

    fn run(&mut self, progress: &mut dyn Progress) -> Result<Built> {
        for (name, default) in &self.df.global_args {
            let v = match self.build_args.get(name) {
                Some(v) => Some(v.clone()),
                None => match default {
                    Some(d) => {
                        Some(process_word(d, &self.global, self.df.escape).map_err(|m| {
                            Error::Syntax {
                                line: 1,
                                message: format!("ARG {name}: {m}"),
                            }
                        })?)
                    }
                    None => None,
                },
            };
            if self.build_args.contains_key(name) {
                self.used_args.insert(name.clone());
            }
            if let Some(v) = v {
                self.global.insert(name.clone(), v);
            }
        }
        let mut bases = Vec::new();
        for s in &self.df.stages {
            let expanded = process_word(&s.base, &self.global, self.df.escape).map_err(|m| {
                Error::Instruction {
                    line: s.line,
                    instruction: "FROM".into(),
                    message: m,
                }
            })?;
            if let Some(p) = &s.platform {
                let p = process_word(p, &self.global, self.df.escape).unwrap_or_else(|_| p.clone());
                if !p.is_empty() && p != "linux/amd64" && p != "linux/x86_64" {
                    return Err(Error::Instruction {
                        line: s.line,
                        instruction: "FROM".into(),
                        message: format!("--platform={p}: only linux/amd64 can be built here"),
                    });
                }
            }
            if expanded.is_empty() {
                return Err(Error::Instruction {
                    line: s.line,
                    instruction: "FROM".into(),
                    message: "base name should not be blank".into(),
                });
            }
            bases.push(if expanded.eq_ignore_ascii_case("scratch") {
                Base::Scratch
            } else if let Some(i) = self.stage_index(&expanded, s.index) {
                Base::Stage(i)
            } else {
                Base::Image(expanded)
            });
        }
        let target = match &self.opts.target {
            Some(t) => self
                .df
                .stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.to_lowercase().as_str()))
                .ok_or_else(|| Error::NoSuchTarget(t.clone()))?,
            None => self.df.stages.len() - 1,
        };
        // The stages the target needs, and the images they start from or copy from.
        let mut needed = BTreeSet::new();
        // Image -> (line, instruction) of the first step naming it, for errors.
        let mut images: BTreeMap<String, (usize, &str)> = BTreeMap::new();
        let mut todo = vec![target];
        while let Some(i) = todo.pop() {
            if !needed.insert(i) {
                continue;
            }
            match &bases[i] {
                Base::Stage(j) => todo.push(*j),
                Base::Image(r) => {
                    images
                        .entry(r.clone())
                        .or_insert((self.df.stages[i].line, "FROM"));
                }
                Base::Scratch => {}
            }
            for st in &self.df.stages[i].steps {
                if let StepKind::Copy { from: Some(f), .. } = &st.kind {
                    let f =
                        process_word(f, &self.global, self.df.escape).unwrap_or_else(|_| f.clone());
                    match self.stage_index(&f, i) {
                        Some(j) => todo.push(j),
                        None => {
                            images.entry(f).or_insert((st.line, "COPY"));
                        }
                    }
                }
            }
        }
        self.multi = needed.len() > 1;
        // Pull before building: a pull collects garbage, which would take layers of
        // stages built but not yet committed.
        for (r, (line, instruction)) in &images {
            self.ensure_image(r, progress)
                .map_err(|e| Error::Instruction {
                    line: *line,
                    instruction: instruction.to_string(),
                    message: e.to_string(),
                })?;
        }
        // From here on layers exist before the image that refers to them: a concurrent
        // rmi/prune must not collect them.
        let _lease = self.store.lease()?;
        let mut last = None;
        for &i in &needed {
            let state = self.build_stage(i, &bases[i], progress)?;
            let is_target = i == target;
            let id = self.id();
            let started = Instant::now();
            progress.event(Event::Step {
                id,
                label: if is_target {
                    "exporting to image"
                } else {
                    "keeping stage result"
                },
            });
            let loaded = self.store.commit(&CommitRequest {
                config: state.config.to_bytes(),
                layers: state.layers.clone(),
                tags: if is_target {
                    self.opts.tags.clone()
                } else {
                    Vec::new()
                },
            })?;
            let msg = format!("writing image {}", loaded.config);
            progress.event(Event::Note { id, text: &msg });
            for t in &loaded.tags {
                let msg = format!("naming to {t}");
                progress.event(Event::Note { id, text: &msg });
            }
            progress.event(Event::Done {
                id,
                elapsed: started.elapsed(),
            });
            self.results.insert(i, state);
            if is_target {
                last = Some(loaded);
            }
        }
        let unused: Vec<&String> = self
            .build_args
            .keys()
            .filter(|k| !self.used_args.contains(*k) && !predefined_args().contains_key(*k))
            .collect();
        if !unused.is_empty() {
            let msg = format!("one or more build-args {unused:?} were not consumed");
            progress.event(Event::Warning(&msg));
        }
        let loaded = last.ok_or_else(|| Error::Other("the target stage was not built".into()))?;
        Ok(Built {
            id: loaded.config,
            manifest: loaded.manifest,
            tags: loaded.tags,
            cacheable_steps: self.cacheable,
            cached_steps: self.cached,
        })
    }

    fn ensure_image(&mut self, r: &str, progress: &mut dyn Progress) -> Result<()> {
        let local = self.store.resolve(r).is_ok();
        if local && !self.opts.pull {
            return Ok(());
        }
        let id = self.id();
        let label = format!("pull {r}");
        progress.event(Event::Step { id, label: &label });
        let started = Instant::now();
        let layers = std::sync::Mutex::new(Vec::new());
        let res = self.store.pull(r, &RegistryOptions::default(), &|p| {
            if let PullProgress::Extracted { digest } = p {
                if let Ok(mut l) = layers.lock() {
                    l.push(digest);
                }
            }
        });
        for d in layers.into_inner().unwrap_or_default() {
            let msg = format!("extracted {d}");
            progress.event(Event::Note { id, text: &msg });
        }
        match res {
            Ok(_) => {
                progress.event(Event::Done {
                    id,
                    elapsed: started.elapsed(),
                });
                Ok(())
            }
            Err(e) if local => Err(Error::Other(format!("--pull: pulling {r}: {e}"))),
            Err(e) => Err(Error::Other(format!(
                "image {r:?} is not in the local store and pulling it failed: {e}"
            ))),
        }
    }

    fn build_stage(&mut self, i: usize, base: &Base, progress: &mut dyn Progress) -> Result<State> {
        let df = self.df;
        let stage = &df.stages[i];
        let n = stage.steps.len() + 1;
        let multi = self.multi;
        let prefix = |k: usize| {
            if multi {
                let name = stage.name.clone().unwrap_or_else(|| format!("stage-{i}"));
                format!("[{name} {k}/{n}]")
            } else {
                format!("[{k}/{n}]")
            }
        };
        let id = self.id();
        let label = format!("{} {}", prefix(1), stage.text);
        progress.event(Event::Step { id, label: &label });
        let started = Instant::now();
        let mut state =
            match base {
                Base::Scratch => State {
                    config: Config::scratch(),
                    layers: Vec::new(),
                },
                Base::Stage(j) => self.results.get(j).cloned().ok_or_else(|| {
                    Error::Other(format!("stage {j} was not built before stage {i}"))
                })?,
                Base::Image(r) => {
                    let s = self.store.image_state(r)?;
                    State {
                        config: Config::parse(&s.config)?,
                        layers: s.layers,
                    }
                }
            };
        progress.event(Event::Done {
            id,
            elapsed: started.elapsed(),
        });
        // ONBUILD triggers of the base image run first, then are cleared (as docker).
        let triggers = state.config.onbuild();
        let mut steps: Vec<Step> = Vec::new();
        if !triggers.is_empty() {
            let text = format!("FROM scratch\n{}\n", triggers.join("\n"));
            let parsed = dockerfile::parse(&text).map_err(|e| Error::Instruction {
                line: stage.line,
                instruction: "FROM".into(),
                message: format!("the base image's ONBUILD triggers: {e}"),
            })?;
            for mut st in parsed.stages.into_iter().flat_map(|s| s.steps) {
                st.line = stage.line;
                steps.push(st);
            }
            state.config.container().remove("OnBuild");
        }
        let mut args: Vars = BTreeMap::new();
        let mut cmd_set = false;
        let total = steps.len();
        for (k, step) in steps.iter().chain(stage.steps.iter()).enumerate() {
            let label = if k < total {
                format!("{} ONBUILD {}", prefix(1), step.text)
            } else {
                format!("{} {}", prefix(k - total + 2), step.text)
            };
            state = self.step(step, state, &mut args, &mut cmd_set, &label, progress)?;
        }
        Ok(state)
    }

    fn err(step: &Step, message: impl Into<String>) -> Error {
        Error::Instruction {
            line: step.line,
            instruction: instruction_name(&step.kind).into(),
            message: message.into(),
        }
    }

    fn word(&self, step: &Step, w: &str, vars: &Vars) -> Result<String> {
        process_word(w, vars, self.df.escape).map_err(|m| Self::err(step, m))
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        step: &Step,
        mut state: State,
        args: &mut Vars,
        cmd_set: &mut bool,
        label: &str,
        progress: &mut dyn Progress,
    ) -> Result<State> {
        let id = self.id();
        progress.event(Event::Step { id, label });
        let started = Instant::now();
        let vars = scope(args, &state.config);
        let done = |p: &mut dyn Progress| {
            p.event(Event::Done {
                id,
                elapsed: started.elapsed(),
            })
        };
        // Config-only steps: compute the change and its history line.
        let mut change: Option<(String, ConfigChange)> = None;
        match &step.kind {
            StepKind::Arg(list) => {
                for (name, default) in list {
                    let v = if let Some(v) = self.build_args.get(name) {
                        self.used_args.insert(name.clone());
                        Some(v.clone())
                    } else if let Some(d) = default {
                        Some(self.word(step, d, &scope(args, &state.config))?)
                    } else {
                        self.global.get(name).cloned()
                    };
                    match v {
                        Some(v) => {
                            args.insert(name.clone(), v);
                        }
                        None => {
                            args.remove(name);
                        }
                    }
                }
                done(progress);
                return Ok(state);
            }
            StepKind::Env(raw) => {
                let kvs = key_values(raw, &vars, self.df.escape).map_err(|m| Self::err(step, m))?;
                let desc = format!(
                    "ENV {}",
                    kvs.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                change = Some((
                    desc,
                    Box::new(move |c: &mut Config| {
                        for (k, v) in &kvs {
                            c.set_env(k, v);
                        }
                    }),
                ));
            }
            StepKind::Label(raw) => {
                let kvs = key_values(raw, &vars, self.df.escape).map_err(|m| Self::err(step, m))?;
                let desc = format!(
                    "LABEL {}",
                    kvs.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                );
                change = Some((
                    desc,
                    Box::new(move |c: &mut Config| {
                        for (k, v) in &kvs {
                            c.insert_in("Labels", k, json!(v));
                        }
                    }),
                ));
            }
            StepKind::Workdir(raw) => {
                let w = self.word(step, raw, &vars)?;
                let joined = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", state.config.working_dir())
                };
                let dir = format!("/{}", clean(&joined).unwrap_or_default());
                change = Some((
                    format!("WORKDIR {dir}"),
                    Box::new(move |c: &mut Config| c.set("WorkingDir", json!(dir))),
                ));
            }
            StepKind::User(raw) => {
                let u = self.word(step, raw, &vars)?;
                if u.is_empty() {
                    return Err(Self::err(step, "USER requires a user name or id"));
                }
                change = Some((
                    format!("USER {u}"),
                    Box::new(move |c: &mut Config| c.set("User", json!(u))),
                ));
            }
            StepKind::Cmd(form) => {
                let v = render(form, &state.config.shell());
                *cmd_set = true;
                change = Some((
                    format!("CMD {}", json!(v)),
                    Box::new(move |c: &mut Config| c.set("Cmd", json!(v))),
                ));
            }
            StepKind::Entrypoint(form) => {
                let v = render(form, &state.config.shell());
                let reset_cmd = !*cmd_set;
                change = Some((
                    format!("ENTRYPOINT {}", json!(v)),
                    Box::new(move |c: &mut Config| {
                        c.set("Entrypoint", json!(v));
                        // An inherited CMD no longer fits the new entrypoint (docker).
                        if reset_cmd {
                            c.set("Cmd", Value::Null);
                        }
                    }),
                ));
            }
            StepKind::Expose(words) => {
                let mut ports = Vec::new();
                for w in words {
                    for p in self.word(step, w, &vars)?.split_whitespace() {
                        let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                        let proto = proto.to_lowercase();
                        let valid = |s: &str| s.parse::<u16>().is_ok_and(|n| n > 0);
                        let ok_num = match num.split_once('-') {
                            Some((a, b)) => valid(a) && valid(b),
                            None => valid(num),
                        };
                        if !ok_num || !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
                            return Err(Self::err(step, format!("invalid port {p:?}")));
                        }
                        ports.push(format!("{num}/{proto}"));
                    }
                }
                change = Some((
                    format!("EXPOSE {}", ports.join(" ")),
                    Box::new(move |c: &mut Config| {
                        for p in &ports {
                            c.insert_in("ExposedPorts", p, json!({}));
                        }
                    }),
                ));
            }
            StepKind::Volume(words) => {
                let mut vols = Vec::new();
                for w in words {
                    let v = self.word(step, w, &vars)?;
                    if v.is_empty() {
                        return Err(Self::err(
                            step,
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    vols.push(v);
                }
                change = Some((
                    format!("VOLUME {}", json!(vols)),
                    Box::new(move |c: &mut Config| {
                        for v in &vols {
                            c.insert_in("Volumes", v, json!({}));
                        }
                    }),
                ));
            }
            StepKind::StopSignal(raw) => {
                let s = self.word(step, raw, &vars)?;
                let known = s.parse::<i32>().is_ok()
                    || s.to_uppercase()
                        .strip_prefix("SIG")
                        .unwrap_or(&s.to_uppercase())
                        .parse::<nix::sys::signal::Signal>()
                        .is_ok()
                    || format!("SIG{}", s.to_uppercase().trim_start_matches("SIG"))
                        .parse::<nix::sys::signal::Signal>()
                        .is_ok();
                if !known {
                    return Err(Self::err(step, format!("invalid signal {s:?}")));
                }
                change = Some((
                    format!("STOPSIGNAL {s}"),
                    Box::new(move |c: &mut Config| c.set("StopSignal", json!(s))),
                ));
            }
            StepKind::Healthcheck(h) => {
                let v = match h {
                    None => json!({"Test": ["NONE"]}),
                    Some(h) => {
                        let test = match &h.test {
                            CommandForm::Exec(v) => {
                                let mut t = vec!["CMD".to_string()];
                                t.extend(v.iter().cloned());
                                t
                            }
                            CommandForm::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                        };
                        let mut o = json!({"Test": test});
                        for (k, val) in &h.options {
                            let key = match k.as_str() {
                                "interval" => "Interval",
                                "timeout" => "Timeout",
                                "start-period" => "StartPeriod",
                                "start-interval" => "StartInterval",
                                _ => {
                                    let n: i64 = val.parse().map_err(|_| {
                                        Self::err(step, format!("--retries={val}: not a number"))
                                    })?;
                                    o["Retries"] = json!(n);
                                    continue;
                                }
                            };
                            let ns = parse_duration(val)
                                .map_err(|m| Self::err(step, format!("--{k}: {m}")))?;
                            o[key] = json!(ns);
                        }
                        o
                    }
                };
                change = Some((
                    format!("HEALTHCHECK {v}"),
                    Box::new(move |c: &mut Config| c.set("Healthcheck", v)),
                ));
            }
            StepKind::Shell(v) => {
                if v.is_empty() {
                    return Err(Self::err(step, "SHELL requires at least one argument"));
                }
                let v = v.clone();
                change = Some((
                    format!("SHELL {}", json!(v)),
                    Box::new(move |c: &mut Config| c.set("Shell", json!(v))),
                ));
            }
            StepKind::Onbuild(t) => {
                let t = t.clone();
                let upper = t.split_whitespace().next().unwrap_or("").to_uppercase();
                if ["ONBUILD", "FROM", "MAINTAINER"].contains(&upper.as_str()) {
                    return Err(Self::err(
                        step,
                        format!("{upper} isn't allowed as an ONBUILD trigger"),
                    ));
                }
                change = Some((
                    format!("ONBUILD {t}"),
                    Box::new(move |c: &mut Config| {
                        let mut all = c.onbuild();
                        all.push(t);
                        c.set("OnBuild", json!(all));
                    }),
                ));
            }
            StepKind::Maintainer(m) => {
                let m = m.clone();
                change = Some((
                    format!("MAINTAINER {m}"),
                    Box::new(move |c: &mut Config| {
                        if let Value::Object(o) = &mut c.0 {
                            o.insert("author".into(), json!(m));
                        }
                    }),
                ));
            }
            StepKind::Run { .. } | StepKind::Copy { .. } => {}
        }
        if let Some((desc, apply)) = change {
            let key = sha(&[&state.key(), &desc]);
            if let Some(hit) = self.lookup(&key)? {
                progress.event(Event::Cached { id });
                return Ok(hit);
            }
            apply(&mut state.config);
            state.config.record(&now_rfc3339(), &desc, None);
            self.cache.put(
                &key,
                &Entry {
                    config: state.config.to_bytes(),
                    layers: state.layers.clone(),
                },
            )?;
            done(progress);
            return Ok(state);
        }
        let new = match &step.kind {
            StepKind::Run { command, network } => {
                self.run_step(step, state, args, command, network.as_deref(), id, progress)?
            }
            StepKind::Copy {
                add,
                from,
                chown,
                chmod,
                sources,
                dest,
            } => self.copy_step(
                step,
                state,
                &vars,
                *add,
                from.as_deref(),
                chown.as_deref(),
                chmod.as_deref(),
                sources,
                dest,
                id,
                progress,
            )?,
            _ => unreachable!("config-only steps returned above"),
        };
        if let Some(s) = new.1 {
            done(progress);
            Ok(s)
        } else {
            progress.event(Event::Cached { id });
            Ok(new.0)
        }
    }

    /// A cache hit whose layers are all still in the store.
    fn lookup(&mut self, key: &str) -> Result<Option<State>> {
        self.cacheable += 1;
        if self.opts.no_cache {
            return Ok(None);
        }
        let Some(e) = self.cache.get(key)? else {
            return Ok(None);
        };
        if !e.layers.iter().all(|l| self.store.has_layer(l)) {
            return Ok(None);
        }
        let Ok(config) = Config::parse(&e.config) else {
            return Ok(None);
        };
        self.cached += 1;
        Ok(Some(State {
            config,
            layers: e.layers,
        }))
    }

    fn lowers(&self, state: &State) -> Vec<PathBuf> {
        state
            .layers
            .iter()
            .map(|l| self.store.layer_dir(&l.chain_id))
            .collect()
    }

    /// Record a new layer on `state` and remember the result under `key`.
    fn add_layer(
        &mut self,
        mut state: State,
        layer: LayerRef,
        key: &str,
        desc: &str,
    ) -> Result<State> {
        state
            .config
            .record(&now_rfc3339(), desc, Some(layer.diff_id.as_str()));
        state.layers.push(layer);
        self.cache.put(
            key,
            &Entry {
                config: state.config.to_bytes(),
                layers: state.layers.clone(),
            },
        )?;
        Ok(state)
    }

    /// Returns (state, Some(new state)) on a miss, (hit state, None) on a hit.
    #[allow(clippy::too_many_arguments)]
    fn run_step(
        &mut self,
        step: &Step,
        state: State,
        args: &Vars,
        command: &CommandForm,
        network: Option<&str>,
        id: usize,
        progress: &mut dyn Progress,
    ) -> Result<(State, Option<State>)> {
        let argv = render(command, &state.config.shell());
        let host_network = match network {
            None | Some("default") => self.opts.network == Network::Host,
            Some("none") => false,
            Some("host") => true,
            Some(other) => {
                return Err(Self::err(
                    step,
                    format!("--network={other}: use none, host or default"),
                ))
            }
        };
        // Build args are in the environment unless ENV set the same name.
        let arg_env: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let env = berth_engine::spec::merge_env(&arg_env, &state.config.env());
        let desc = match command {
            CommandForm::Exec(v) => format!("RUN {}", json!(v)),
            CommandForm::Shell(_) => format!("RUN {}", argv.join(" ")),
        };
        let key = sha(&[
            &state.key(),
            &desc,
            &json!(argv).to_string(),
            &json!(arg_env).to_string(),
            if host_network { "net=host" } else { "net=none" },
        ]);
        if let Some(hit) = self.lookup(&key)? {
            return Ok((hit, None));
        }
        let runtime = match &self.opts.runtime {
            Some(r) => r.clone(),
            None => oneshot::default_runtime()?,
        };
        let mut scratch = Scratch::new(&self.root)?;
        let merged = scratch.mount_writable(self.lowers(&state))?;
        let cwd = match state.config.working_dir() {
            w if w.is_empty() => "/".to_string(),
            w => w,
        };
        if cwd != "/" {
            let rootfd = fsops::open_root(&merged).at(&merged)?;
            fsops::mkdir_p_in_root(rootfd.as_fd(), &cwd, 0o755, None)
                .map_err(|e| Self::err(step, format!("WORKDIR {cwd}: {e}")))?;
        }
        let (reader, writer) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).at("pipe")?;
        let writer2 = writer.try_clone().at("pipe")?;
        let bundle = scratch.bundle();
        let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
        let code = std::thread::scope(|s| {
            let handle = s.spawn(|| {
                oneshot::run_oneshot(OneShot {
                    runtime: &runtime,
                    scratch: &bundle,
                    rootfs: &merged,
                    args: argv.clone(),
                    env,
                    cwd: cwd.clone(),
                    user: state.config.user(),
                    host_network,
                    hostname: "berth-build".into(),
                    stdout: Stdio::from(writer),
                    stderr: Stdio::from(writer2),
                })
            });
            let mut r = BufReader::new(std::fs::File::from(reader));
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.trim_end_matches('\n');
                        progress.event(Event::Output { id, line });
                        tail.push_back(line.to_string());
                        if tail.len() > 20 {
                            tail.pop_front();
                        }
                    }
                }
            }
            handle.join()
        });
        scratch.unmount_all()?;
        let code = match code {
            Ok(r) => r?,
            Err(_) => return Err(Self::err(step, "the RUN thread panicked")),
        };
        if code != 0 {
            return Err(Error::RunFailed {
                line: step.line,
                instruction: "RUN".into(),
                command: argv.join(" ").replace('\n', "\\n"),
                code,
                output: tail.into_iter().collect::<Vec<_>>().join("\n"),
            });
        }
        let parent = state.layers.last().map(|l| l.chain_id.clone());
        let layer = self.store.commit_layer(parent.as_ref(), &scratch.upper())?;
        drop(scratch);
        let new = self.add_layer(state.clone(), layer, &key, &desc)?;
        Ok((state, Some(new)))
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step(
        &mut self,
        step: &Step,
        state: State,
        vars: &Vars,
        add: bool,
        from: Option<&str>,
        chown: Option<&str>,
        chmod: Option<&str>,
        sources: &[CopySource],
        dest: &str,
        _id: usize,
        _progress: &mut dyn Progress,
    ) -> Result<(State, Option<State>)> {
        let name = if add { "ADD" } else { "COPY" };
        let src_err = |m: String| Error::Source {
            line: step.line,
            instruction: name.into(),
            message: m,
        };
        // Made only when needed: a cache hit from the context mounts nothing.
        let mut scratch: Option<Scratch> = None;
        // Where sources come from: the context, or another stage's / image's root.
        let mut from_key = String::new();
        let from_root = match from {
            None => None,
            Some(f) => {
                let f = self.word(step, f, &self.global.clone())?;
                let (lowers, key) = match self.stage_index(&f, self.df.stages.len()) {
                    Some(j) => {
                        let st = self.results.get(&j).cloned().ok_or_else(|| src_err(format!("--from={f}: stage not built yet (a stage can only copy from earlier stages)")))?;
                        (self.lowers(&st), st.key())
                    }
                    None => {
                        let s = self.store.image_state(&f)?;
                        (
                            s.layers
                                .iter()
                                .map(|l| self.store.layer_dir(&l.chain_id))
                                .collect(),
                            s.config_digest.to_string(),
                        )
                    }
                };
                from_key = key;
                let dir = scratch
                    .insert(Scratch::new(&self.root)?)
                    .mount_readonly("from", lowers)?;
                Some(SourceRoot {
                    fd: fsops::open_root(&dir).at(&dir)?,
                    what: format!("--from={f}"),
                    ignore: None,
                })
            }
        };
        let root = from_root.as_ref().unwrap_or(&self.ctx);
        let mut matches: Vec<Match> = Vec::new();
        let mut inline: Vec<InlineFile> = Vec::new();
        let mut shown = Vec::new();
        for s in sources {
            match s {
                CopySource::Path(p) => {
                    let p = self.word(step, p, vars)?;
                    if p.starts_with("http://")
                        || p.starts_with("https://")
                        || p.starts_with("git@")
                    {
                        return Err(src_err(format!(
                            "{p}: remote sources are not supported (berth builds without network access for sources): download it into the context"
                        )));
                    }
                    shown.push(p.clone());
                    matches.extend(root.resolve(&p).map_err(|e| src_err(e.to_string()))?);
                }
                CopySource::HereDoc {
                    name,
                    content,
                    expand,
                } => {
                    let content = if *expand {
                        // Only variables: quotes and backslashes in a document are text.
                        let protected: String = content
                            .chars()
                            .flat_map(|c| {
                                if c == '"' || c == '\'' || c == self.df.escape {
                                    vec![self.df.escape, c]
                                } else {
                                    vec![c]
                                }
                            })
                            .collect();
                        self.word(step, &protected, vars)?
                    } else {
                        content.clone()
                    };
                    shown.push(format!("<<{name}"));
                    inline.push(InlineFile {
                        name: name.clone(),
                        content: content.into_bytes(),
                    });
                }
            }
        }
        if matches.is_empty() && inline.is_empty() {
            return Err(src_err("no source files were specified".into()));
        }
        let mut dest = self.word(step, dest, vars)?;
        if !dest.starts_with('/') {
            let wd = state.config.working_dir();
            let wd = if wd.is_empty() { "/".to_string() } else { wd };
            let trailing = dest.ends_with('/') || dest == "." || dest.is_empty();
            dest = format!("/{}", clean(&format!("{wd}/{dest}")).unwrap_or_default());
            if trailing && !dest.ends_with('/') {
                dest.push('/');
            }
        }
        let chmod_mode = match chmod {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| src_err(format!("--chmod={m}: not an octal mode")))?,
            ),
        };
        let chown = match chown {
            None => None,
            Some(c) => Some(self.word(step, c, vars)?),
        };
        let mut desc = name.to_string();
        if let Some(f) = from {
            desc.push_str(&format!(" --from={f}"));
        }
        if let Some(c) = &chown {
            desc.push_str(&format!(" --chown={c}"));
        }
        if let Some(m) = chmod {
            desc.push_str(&format!(" --chmod={m}"));
        }
        desc.push_str(&format!(" {} {dest}", shown.join(" ")));
        let digest = source::digest(&matches).map_err(|e| src_err(e.to_string()))?;
        let inline_digest = sha(&inline
            .iter()
            .map(|f| String::from_utf8_lossy(&f.content).into_owned())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>());
        let key = sha(&[&state.key(), &desc, &digest, &inline_digest, &from_key]);
        if let Some(hit) = self.lookup(&key)? {
            return Ok((hit, None));
        }
        let mut scratch = match scratch {
            Some(s) => s,
            None => Scratch::new(&self.root)?,
        };
        let merged = scratch.mount_writable(self.lowers(&state))?;
        let owner = match &chown {
            None => None,
            Some(c) => Some(self.resolve_chown(step, &merged, c)?),
        };
        let view = fsops::open_root(&merged).at(&merged)?;
        copy_into(
            view.as_fd(),
            &matches,
            &inline,
            &CopyOptions {
                dest,
                chown: owner,
                chmod: chmod_mode,
                keep_owner: from.is_some(),
                extract: add,
            },
        )
        .map_err(src_err)?;
        drop(view);
        drop(matches);
        drop(from_root);
        scratch.unmount_all()?;
        let parent = state.layers.last().map(|l| l.chain_id.clone());
        let layer = self.store.commit_layer(parent.as_ref(), &scratch.upper())?;
        drop(scratch);
        let new = self.add_layer(state.clone(), layer, &key, &desc)?;
        Ok((state, Some(new)))
    }

    /// `--chown=user[:group]`: numeric ids as they are (a lone uid is also the gid, as
    /// docker), names through the image's /etc/passwd and /etc/group.
    fn resolve_chown(&self, step: &Step, rootfs: &Path, spec: &str) -> Result<(u32, u32)> {
        let (u, g) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        if let (Ok(uid), None) = (u.parse::<u32>(), g) {
            return Ok((uid, uid));
        }
        let r = berth_engine::user::resolve_user(rootfs, spec)
            .map_err(|e| Self::err(step, format!("--chown={spec}: {e}")))?;
        Ok((r.uid, r.gid))
    }
}
