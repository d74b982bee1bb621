//! `berth build` and `berth history`: arguments and output; the work is in berth-build.
//!
//! Progress goes to stderr as buildkit's plain output does (`#3 [2/7] RUN make`, RUN
//! output as `#3 0.412 <line>`, then `#3 CACHED` or `#3 DONE 1.2s`); `--progress tty`
//! (the default on a terminal) shows a spinner per step instead; `-q` prints only the
//! image id, on stdout.

use std::collections::HashMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use berth_build::{BuildOptions, DockerfileInput, Event, Network, Progress};
use berth_image::ImageStore;
use indicatif::{ProgressBar, ProgressStyle};

use super::output::{ago, human_size, parse_rfc3339};
use super::Globals;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Name and optionally a tag for the image (NAME[:TAG]); repeatable
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// The Dockerfile (default: CONTEXT/Dockerfile; "-" reads it from stdin)
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    file: Option<PathBuf>,
    /// A build-time variable (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    build_args: Vec<String>,
    /// The stage to build (default: the last one)
    #[arg(long, value_name = "STAGE")]
    target: Option<String>,
    /// Run every step, ignoring the layer cache
    #[arg(long)]
    no_cache: bool,
    /// Pull the base images even when they are in the local store
    #[arg(long)]
    pull: bool,
    /// Network for RUN steps: none (only loopback) or host
    #[arg(long, default_value = "none", value_name = "MODE")]
    network: String,
    /// Output: auto, plain or tty
    #[arg(long, default_value = "auto", value_name = "TYPE")]
    progress: String,
    /// Print only the image id
    #[arg(short, long)]
    quiet: bool,
    /// The build context directory
    context: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Sizes and dates in human-readable form
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// Don't truncate the output
    #[arg(long)]
    no_trunc: bool,
    /// Only image ids
    #[arg(short, long)]
    quiet: bool,
    /// "table" (default) or "json"
    #[arg(long, default_value = "table")]
    format: String,
    image: String,
}

/// Plain progress lines on stderr.
struct Plain {
    started: HashMap<usize, Instant>,
}

impl Progress for Plain {
    fn event(&mut self, e: Event<'_>) {
        match e {
            Event::Step { id, label } => {
                self.started.insert(id, Instant::now());
                eprintln!("#{id} {label}");
            }
            Event::Cached { id } => eprintln!("#{id} CACHED"),
            Event::Done { id, elapsed } => eprintln!("#{id} DONE {:.1}s", elapsed.as_secs_f64()),
            Event::Output { id, line } => {
                let t = self
                    .started
                    .get(&id)
                    .map_or(0.0, |s| s.elapsed().as_secs_f64());
                eprintln!("#{id} {t:.3} {line}");
            }
            Event::Note { id, text } => eprintln!("#{id} {text}"),
            Event::Warning(w) => eprintln!("WARNING: {w}"),
        }
    }
}

/// A spinner per step on a terminal.
struct Tty {
    bar: Option<(usize, ProgressBar, String)>,
}

impl Tty {
    fn finish(&mut self, status: &str, elapsed: Option<Duration>) {
        if let Some((_, bar, label)) = self.bar.take() {
            let t = elapsed.map_or(String::new(), |d| format!(" {:.1}s", d.as_secs_f64()));
            bar.finish_and_clear();
            eprintln!("=> {status:<7}{label}{t}");
        }
    }
}

impl Progress for Tty {
    fn event(&mut self, e: Event<'_>) {
        match e {
            Event::Step { id, label } => {
                self.finish("", None);
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(label.to_string());
                bar.enable_steady_tick(Duration::from_millis(100));
                self.bar = Some((id, bar, label.to_string()));
            }
            Event::Cached { .. } => self.finish("CACHED ", None),
            Event::Done { elapsed, .. } => self.finish("", Some(elapsed)),
            Event::Output { line, .. } | Event::Note { text: line, .. } => match &self.bar {
                Some((_, bar, _)) if !bar.is_hidden() => bar.println(format!("   {line}")),
                _ => eprintln!("   {line}"),
            },
            Event::Warning(w) => eprintln!("WARNING: {w}"),
        }
    }
}

/// Nothing but the image id at the end; RUN output kept for a failure.
struct Quiet {
    output: Vec<String>,
}

impl Progress for Quiet {
    fn event(&mut self, e: Event<'_>) {
        match e {
            Event::Step { .. } => self.output.clear(),
            Event::Output { line, .. } => self.output.push(line.to_string()),
            _ => {}
        }
    }
}

fn parse_build_args(raw: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for a in raw {
        match a.split_once('=') {
            Some(("", _)) => bail!("--build-arg {a:?}: the name is empty"),
            Some((k, v)) => out.push((k.to_string(), v.to_string())),
            // KEY alone: from our environment, or not set at all.
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.push((a.clone(), v));
                }
            }
        }
    }
    Ok(out)
}

pub fn build(g: &Globals, a: BuildArgs) -> Result<()> {
    if a.context.as_os_str() == "-" {
        bail!("build: a context from stdin (\"-\") is not supported; give a directory");
    }
    let network = match a.network.as_str() {
        "none" | "default" => Network::None,
        "host" => Network::Host,
        other => bail!("--network {other:?}: use none or host"),
    };
    let dockerfile = match &a.file {
        Some(p) if p.as_os_str() == "-" => {
            let mut t = String::new();
            std::io::stdin()
                .read_to_string(&mut t)
                .context("read the Dockerfile from stdin")?;
            DockerfileInput::Text(t)
        }
        Some(p) => DockerfileInput::Path(p.clone()),
        None => DockerfileInput::Path(a.context.join("Dockerfile")),
    };
    let opts = BuildOptions {
        context: a.context.clone(),
        dockerfile,
        tags: a.tags.clone(),
        build_args: parse_build_args(&a.build_args)?,
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        network,
        runtime: None,
    };
    let mut store = ImageStore::open(&g.root)
        .with_context(|| format!("open image store {}", g.root.display()))?;
    let tty = match a.progress.as_str() {
        "auto" => std::io::stderr().is_terminal(),
        "tty" => true,
        "plain" => false,
        other => bail!("--progress {other:?}: use auto, plain or tty"),
    };
    if a.quiet {
        let mut q = Quiet { output: Vec::new() };
        match berth_build::build(&mut store, &opts, &mut q) {
            Ok(b) => {
                println!("{}", b.id);
                Ok(())
            }
            Err(e) => {
                if matches!(e, berth_build::Error::RunFailed { .. }) {
                    for l in &q.output {
                        eprintln!("{l}");
                    }
                }
                Err(e.into())
            }
        }
    } else if tty {
        let mut p = Tty { bar: None };
        let res = berth_build::build(&mut store, &opts, &mut p);
        p.finish("", None);
        res.map(drop).map_err(Into::into)
    } else {
        let mut p = Plain {
            started: HashMap::new(),
        };
        berth_build::build(&mut store, &opts, &mut p)
            .map(drop)
            .map_err(Into::into)
    }
}

pub fn history(g: &Globals, a: HistoryArgs) -> Result<()> {
    let store = ImageStore::open(&g.root)
        .with_context(|| format!("open image store {}", g.root.display()))?;
    let rows = berth_build::history::history(&store, &a.image)?;
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if a.format != "table" {
        bail!("history: unknown format {:?} (table or json)", a.format);
    }
    let id = |r: &berth_build::history::HistoryRow| match &r.id {
        Some(d) if a.no_trunc => d.to_string(),
        Some(d) => d.short().to_string(),
        None => "<missing>".to_string(),
    };
    if a.quiet {
        for r in &rows {
            println!("{}", id(r));
        }
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut table = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from)];
    for r in &rows {
        let created = match (&r.created, a.human) {
            (Some(c), true) => parse_rfc3339(c).map_or_else(|| c.clone(), |t| ago(now - t)),
            (Some(c), false) => c.clone(),
            (None, _) => "N/A".into(),
        };
        let mut by = r.created_by.replace('\n', " ");
        if !a.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        let size = if a.human {
            human_size(r.size)
        } else {
            r.size.to_string()
        };
        table.push([id(r), created, by, size, r.comment.clone()]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in &table {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c < 4 {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            } else {
                line.push_str(cell);
            }
        }
        println!("{}", line.trim_end());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_dates() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1500), "1.5kB");
        assert_eq!(human_size(2_000_000), "2MB");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(ago(120), "2 minutes ago");
    }
}
