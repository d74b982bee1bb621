//! `berth pull`, `push`, `login`, `logout`: flags as podman's (`--tls-verify`,
//! `--cert-dir`, `--creds`, `--platform`), output as docker's.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use berth_image::registry::{
    self, Credentials, PlatformSpec, Progress, RegistryOptions, RemoteRef, TlsVerify,
};
use berth_image::ImageStore;

use super::progress::{Direction, TransferView};

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// Require verified https (true), or allow plain http and unverified https (false).
    /// Default: verified https; loopback registries may also answer over plain http
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    tls_verify: Option<bool>,
    /// Certificates for the registry: *.crt CAs, *.cert/*.key client pairs
    /// (default: /etc/containers/certs.d/HOST, /etc/docker/certs.d/HOST)
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// [HOST[:PORT]/]NAME[:TAG|@DIGEST] (HOST defaults to docker.io)
    image: String,
    /// The image to pick from a multi-platform image (default: this host's)
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// USER[:PASSWORD] for the registry (default: what berth login stored)
    #[arg(long, value_name = "USER[:PASSWORD]")]
    creds: Option<String>,
    /// Print only the image name
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// A local image
    image: String,
    /// Where to push it (default: where IMAGE's name points)
    destination: Option<String>,
    /// USER[:PASSWORD] for the registry (default: what berth login stored)
    #[arg(long, value_name = "USER[:PASSWORD]")]
    creds: Option<String>,
    /// Print only the manifest digest
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// HOST[:PORT] (default: docker.io)
    registry: Option<String>,
    /// User name (asked for on the terminal when left out)
    #[arg(short, long)]
    username: Option<String>,
    /// Password (others can see it in the process list: prefer --password-stdin)
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(clap::Args, Debug)]
pub struct LogoutArgs {
    /// HOST[:PORT] (default: docker.io)
    registry: Option<String>,
}

fn options(connect: &ConnectArgs, creds: Option<&str>) -> Result<RegistryOptions> {
    Ok(RegistryOptions {
        tls_verify: TlsVerify::from_flag(connect.tls_verify),
        cert_dir: connect.cert_dir.clone(),
        credentials: creds.map(parse_creds).transpose()?,
        platform: None,
    })
}

/// `USER[:PASSWORD]`; the password is asked for on the terminal when left out.
fn parse_creds(s: &str) -> Result<Credentials> {
    let (user, pass) = match s.split_once(':') {
        Some((u, p)) => (u.to_string(), p.to_string()),
        None => (s.to_string(), prompt("Password: ", false)?),
    };
    if user.is_empty() {
        bail!("--creds: empty user name");
    }
    Ok(Credentials {
        username: user,
        password: pass,
    })
}

pub fn pull(store: &mut ImageStore, a: PullArgs) -> Result<()> {
    let mut opts = options(&a.connect, a.creds.as_deref())?;
    if let Some(p) = &a.platform {
        opts.platform = Some(p.parse::<PlatformSpec>()?);
    }
    let r = RemoteRef::parse(&a.image)?;
    let before = r
        .tag_name()
        .and_then(|t| store.resolve(&t).ok())
        .map(|(m, _)| m);
    let view = TransferView::new(Direction::Pull, a.quiet);
    view.line(&format!("{}: Pulling from {}", r.reference, r.repository));
    let res = store.pull(&a.image, &opts, &|p: Progress| view.event(p));
    view.finish();
    let loaded = res?;
    let name = r
        .tag_name()
        .unwrap_or_else(|| format!("{}/{}@{}", r.host, r.repository, loaded.manifest));
    if !a.quiet {
        println!("Digest: {}", loaded.manifest);
        if before.as_ref() == Some(&loaded.manifest) {
            println!("Status: Image is up to date for {name}");
        } else {
            println!("Status: Downloaded newer image for {name}");
        }
    }
    println!("{name}");
    Ok(())
}

pub fn push(store: &ImageStore, a: PushArgs) -> Result<()> {
    let opts = options(&a.connect, a.creds.as_deref())?;
    let dest = a.destination.as_deref().unwrap_or(&a.image);
    let r = RemoteRef::parse(dest)?;
    let view = TransferView::new(Direction::Push, a.quiet);
    view.line(&format!(
        "The push refers to repository [{}/{}]",
        r.host, r.repository
    ));
    let res = store.push(&a.image, a.destination.as_deref(), &opts, &|p: Progress| {
        view.event(p)
    });
    view.finish();
    let digest = res?;
    if a.quiet {
        println!("{digest}");
    } else {
        let size = store.blobs().size(&digest)?;
        println!("{}: digest: {digest} size: {size}", r.reference);
    }
    Ok(())
}

pub fn login(root: &std::path::Path, a: LoginArgs) -> Result<()> {
    let registry = a
        .registry
        .unwrap_or_else(|| registry::remote::DEFAULT_REGISTRY.to_string());
    let username = match a.username {
        Some(u) => u,
        None => prompt("Username: ", true)?,
    };
    if username.is_empty() {
        bail!("login: empty user name");
    }
    let password = match (a.password, a.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut s = String::new();
            io::stdin().lock().read_to_string(&mut s)?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) => prompt("Password: ", false)?,
    };
    if password.is_empty() {
        bail!("login: empty password");
    }
    let opts = options(&a.connect, None)?;
    let creds = Credentials { username, password };
    registry::login(root, &registry, &creds, &opts)?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(root: &std::path::Path, a: LogoutArgs) -> Result<()> {
    let registry = a
        .registry
        .unwrap_or_else(|| registry::remote::DEFAULT_REGISTRY.to_string());
    if registry::logout(root, &registry)? {
        println!("Removed login credentials for {registry}");
        Ok(())
    } else {
        bail!("not logged in to {registry}")
    }
}

/// Ask on the terminal (the password without echo).
fn prompt(question: &str, echo: bool) -> Result<String> {
    use nix::sys::termios::{self, LocalFlags, SetArg};
    let stdin = io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "{} needed, and stdin is not a terminal to ask on",
            question.trim_end_matches([':', ' '])
        );
    }
    eprint!("{question}");
    io::stderr().flush()?;
    let saved = if echo {
        None
    } else {
        let t = termios::tcgetattr(&stdin).context("read terminal settings")?;
        let mut quiet = t.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &quiet).context("turn off echo")?;
        Some(t)
    };
    let mut line = String::new();
    let res = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = termios::tcsetattr(&stdin, SetArg::TCSANOW, &t);
        eprintln!();
    }
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
