//! `berth` image commands: load, save, images, image inspect/prune, tag, rmi, import,
//! and (in [`registry`]) pull, push, login, logout. All logic lives in the berth-image crate.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_image::{ImageStore, Removed, SaveFormat};
use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use super::output;
use super::registry;
use super::Globals;

#[derive(Subcommand, Debug)]
pub enum ImageCommands {
    /// Load images from a docker-archive, OCI archive or OCI layout directory
    Load(LoadArgs),
    /// Save images to an archive
    Save(SaveArgs),
    /// List images
    Images(ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Give an image another name
    Tag { source: String, target: String },
    /// Remove images
    Rmi(RmiArgs),
    /// Make an image from a root file system tarball ("-" reads stdin)
    Import { file: String, name: String },
    /// Pull an image from a registry
    Pull(registry::PullArgs),
    /// Push an image to a registry
    Push(registry::PushArgs),
    /// Log in to a registry (the credentials are kept in <root>/auth.json)
    Login(registry::LoginArgs),
    /// Forget the credentials of a registry
    Logout(registry::LogoutArgs),
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// Show an image's details as JSON
    Inspect { images: Vec<String> },
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Remove untagged images
    Prune {
        /// Don't ask (kept for docker compatibility; prune never asks)
        #[arg(short, long)]
        force: bool,
    },
    /// Give an image another name
    Tag { source: String, target: String },
    /// Load images (as `berth load`)
    Load(LoadArgs),
    /// Save images (as `berth save`)
    Save(SaveArgs),
    /// Import a root file system (as `berth import`)
    Import { file: String, name: String },
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Archive file or OCI layout directory (default: stdin)
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Print only the loaded image references
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Output file (default: stdout, unless it is a terminal)
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value_t = Format::Docker)]
    format: Format,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Only image ids
    #[arg(short, long)]
    pub(super) quiet: bool,
    /// Show manifest digests
    #[arg(long)]
    pub(super) digests: bool,
    /// Don't truncate ids
    #[arg(long)]
    pub(super) no_trunc: bool,
    /// "table" (default) or "json"
    #[arg(long, default_value = "table")]
    pub(super) format: String,
}

#[derive(clap::Args, Debug)]
pub struct RmiArgs {
    /// Remove an image by id even when several tags name it
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Docker,
    Oci,
}

pub fn run(g: &Globals, cmd: ImageCommands) -> Result<()> {
    let root = &g.root;
    let open =
        || ImageStore::open(root).with_context(|| format!("open image store {}", root.display()));
    match cmd {
        ImageCommands::Load(a) | ImageCommands::Image(ImageCommand::Load(a)) => {
            load(&mut open()?, a)
        }
        ImageCommands::Save(a) | ImageCommands::Image(ImageCommand::Save(a)) => save(&open()?, a),
        ImageCommands::Images(a) | ImageCommands::Image(ImageCommand::Ls(a)) => {
            output::images(&open()?, &a)
        }
        ImageCommands::Image(ImageCommand::Inspect { images }) => {
            if images.is_empty() {
                bail!("image inspect: name at least one image");
            }
            let s = open()?;
            let mut out = Vec::new();
            for i in &images {
                out.push(s.inspect(i)?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        ImageCommands::Tag { source, target }
        | ImageCommands::Image(ImageCommand::Tag { source, target }) => {
            Ok(open()?.tag(&source, &target)?)
        }
        ImageCommands::Rmi(a) | ImageCommands::Image(ImageCommand::Rm(a)) => {
            let mut s = open()?;
            protect_images_in_use(g, &mut s)?;
            let mut failed = false;
            for i in &a.images {
                match s.remove(i, a.force) {
                    Ok(done) => {
                        for d in done {
                            match d {
                                Removed::Untagged(t) => println!("Untagged: {t}"),
                                Removed::Deleted(id) => println!("Deleted: {id}"),
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("berth: {e}");
                        failed = true;
                    }
                }
            }
            if failed {
                bail!("some images could not be removed");
            }
            Ok(())
        }
        ImageCommands::Image(ImageCommand::Prune { .. }) => {
            let mut s = open()?;
            protect_images_in_use(g, &mut s)?;
            let removed = s.prune()?;
            for id in &removed {
                println!("Deleted: {id}");
            }
            println!("Total: {} image(s) removed", removed.len());
            Ok(())
        }
        ImageCommands::Pull(a) => registry::pull(&mut open()?, a),
        ImageCommands::Push(a) => registry::push(&open()?, a),
        ImageCommands::Login(a) => registry::login(root, a),
        ImageCommands::Logout(a) => registry::logout(root, a),
        ImageCommands::Import { file, name }
        | ImageCommands::Image(ImageCommand::Import { file, name }) => {
            let mut s = open()?;
            let loaded = if file == "-" {
                s.import_rootfs(&mut io::stdin().lock(), &name)?
            } else {
                let f = File::open(&file).with_context(|| format!("open {file}"))?;
                let mut r = progress_reader(f, &file);
                s.import_rootfs(&mut r, &name)?
            };
            println!("{}", loaded.config);
            Ok(())
        }
    }
}

/// A spinner on stderr when it is a terminal.
fn spinner(msg: &str) -> Option<ProgressBar> {
    if !io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::new_spinner();
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(pb)
}

/// Wrap a file in a byte progress bar when stderr is a terminal.
fn progress_reader(f: File, what: &str) -> Box<dyn Read> {
    if !io::stderr().is_terminal() {
        return Box::new(f);
    }
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let pb = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    Box::new(ProgressReader { inner: f, pb })
}

struct ProgressReader {
    inner: File,
    pb: ProgressBar,
}

impl Read for ProgressReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.pb.finish_and_clear();
        } else {
            self.pb.inc(n as u64);
        }
        Ok(n)
    }
}

fn load(s: &mut ImageStore, a: LoadArgs) -> Result<()> {
    let loaded = match &a.input {
        Some(p) if p.is_dir() => s.load_path(p)?,
        Some(p) => {
            let f = File::open(p).with_context(|| format!("open {}", p.display()))?;
            let what = p.display().to_string();
            let mut r = progress_reader(f, &what);
            s.load_archive(&mut r, &what)?
        }
        None => {
            if io::stdin().is_terminal() {
                bail!("load: no input (use -i FILE or pipe an archive in)");
            }
            s.load_archive(&mut io::stdin().lock(), "stdin")?
        }
    };
    for l in loaded {
        if l.tags.is_empty() {
            println!("Loaded image ID: {}", l.config);
        }
        for t in l.tags {
            if a.quiet {
                println!("{t}");
            } else {
                println!("Loaded image: {t}");
            }
        }
    }
    Ok(())
}

fn save(s: &ImageStore, a: SaveArgs) -> Result<()> {
    let format = match a.format {
        Format::Docker => SaveFormat::Docker,
        Format::Oci => SaveFormat::Oci,
    };
    match &a.output {
        Some(p) => {
            // Write next to the destination, rename when complete.
            let dir = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let tmp = dir.join(format!(
                ".{}.berth-save-{}",
                p.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
                std::process::id()
            ));
            let res = (|| -> Result<()> {
                let f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
                let mut w = io::BufWriter::new(f);
                let pb = spinner(&format!("saving {}", p.display()));
                s.save(&a.images, format, &mut w)?;
                let f = w.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                if let Some(pb) = pb {
                    pb.finish_and_clear();
                }
                std::fs::rename(&tmp, p).with_context(|| format!("rename to {}", p.display()))?;
                Ok(())
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res
        }
        None => {
            if io::stdout().is_terminal() {
                bail!("save: refusing to write an archive to a terminal (use -o FILE)");
            }
            let mut out = io::stdout().lock();
            s.save(&a.images, format, &mut out)?;
            out.flush()?;
            Ok(())
        }
    }
}

/// Tells the store which images containers were created from, so rmi and prune keep them.
fn protect_images_in_use(g: &Globals, s: &mut ImageStore) -> Result<()> {
    let engine = g.engine()?;
    let mut in_use = Vec::new();
    for (image, container) in engine.images_in_use()? {
        let id = image
            .parse()
            .with_context(|| format!("container {container}: image id {image}"))?;
        in_use.push((id, container));
    }
    s.set_in_use(in_use);
    Ok(())
}
