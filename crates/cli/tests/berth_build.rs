//! `berth build` and `berth history` end to end, FROM a busybox image imported locally:
//! a multi-stage build using every instruction, the layer cache (no-change rebuilds, one
//! changed source), hostile Dockerfiles and contexts, and bad input. Needs root (overlay
//! mounts, containers for RUN).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A private engine root and work dir, removed (after unmounting anything left) on drop.
struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Option<Env> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return None;
        }
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("berth-build-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("test dir");
        let env = Env { dir };
        let tar = busybox_tar(&env.dir)?;
        env.ok(&["import", tar.to_str().expect("utf8"), "busybox:latest"]);
        Some(env)
    }

    fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            // Containers stay off the host's network (no default bridge made there).
            .env("BERTH_DEFAULT_NETWORK", "none")
            .arg("--root")
            .arg(self.root())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run berth")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `berth run ...` (with a private --runroot and a time limit); its stdout.
    fn run(&self, args: &[&str]) -> String {
        let o = Command::new("timeout")
            .args(["-s", "KILL", "60"])
            .arg(env!("CARGO_BIN_EXE_berth"))
            .env("BERTH_DEFAULT_NETWORK", "none")
            .arg("--root")
            .arg(self.root())
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run berth");
        assert!(
            o.status.success(),
            "berth {args:?} failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A build context directory with these files (path, content).
    fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let ctx = self.dir.join(name);
        for (p, content) in files {
            let p = ctx.join(p);
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            fs::write(&p, content).expect("write");
        }
        ctx
    }

    /// Build with plain progress; (success, stdout, stderr).
    fn build(&self, ctx: &Path, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        let ctx_s = ctx.to_str().expect("utf8");
        args.push(ctx_s);
        let o = self.berth(&args);
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    fn build_ok(&self, ctx: &Path, extra: &[&str]) -> String {
        let (ok, _, err) = self.build(ctx, extra);
        assert!(ok, "build failed:\n{err}");
        err
    }

    fn image_id(&self, name: &str) -> String {
        let v: Value = serde_json::from_str(&self.ok(&["image", "inspect", name])).expect("json");
        v[0]["Id"].as_str().expect("Id").to_string()
    }

    fn config(&self, name: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["image", "inspect", name])).expect("json");
        v[0]["Config"].clone()
    }

    /// Mount the image read-only (its layers + a throw-away upper) and run `f` on it.
    fn with_rootfs<T>(&self, image: &str, f: impl FnOnce(&Path) -> T) -> T {
        let store = berth_image::ImageStore::open(self.root()).expect("store");
        let m = self
            .dir
            .join(format!("view-{}", image.replace([':', '/'], "_")));
        for d in ["upper", "work", "merged"] {
            fs::create_dir_all(m.join(d)).expect("mkdir");
        }
        store
            .mount(image, &m.join("upper"), &m.join("work"), &m.join("merged"))
            .expect("mount image");
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ =
                    nix::mount::umount2(&self.0.join("merged"), nix::mount::MntFlags::MNT_DETACH);
                let _ = fs::remove_dir_all(&self.0);
            }
        }
        let _g = Unmount(m.clone());
        f(&m.join("merged"))
    }

    /// Nothing of a build is left: no scratch dirs, no mounts under the root.
    fn assert_clean(&self) {
        let scratch = self.root().join("build");
        let left: Vec<_> = fs::read_dir(&scratch)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "scratch dirs left: {left:?}");
        let mounts = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
        let root = self.root();
        let root_s = root.to_str().expect("utf8");
        assert!(
            !mounts.lines().any(|l| l.contains(root_s)),
            "mounts left under {root_s}"
        );
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(m) = fs::read_to_string("/proc/self/mountinfo") {
            let d = self.dir.to_string_lossy().into_owned();
            for l in m.lines() {
                if let Some(p) = l.split(' ').nth(4).filter(|p| p.starts_with(&d)) {
                    let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A busybox rootfs tarball (scripts/busybox-rootfs.sh) with a user `app` (1000:1000),
/// made in `dir`.
fn busybox_tar(dir: &Path) -> Option<PathBuf> {
    let rootfs = dir.join("busybox-rootfs");
    fs::create_dir_all(&rootfs).ok()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
    let st = Command::new("bash")
        .arg(script)
        .arg(&rootfs)
        .status()
        .ok()?;
    if !st.success() {
        eprintln!("skipped: no static busybox");
        return None;
    }
    let mut passwd = fs::read_to_string(rootfs.join("etc/passwd")).ok()?;
    passwd.push_str("app:x:1000:1000:app:/home/app:/bin/sh\n");
    fs::write(rootfs.join("etc/passwd"), passwd).ok()?;
    let mut group = fs::read_to_string(rootfs.join("etc/group")).ok()?;
    group.push_str("app:x:1000:\n");
    fs::write(rootfs.join("etc/group"), group).ok()?;
    let tar = dir.join("busybox.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .ok()?;
    fs::remove_dir_all(&rootfs).ok()?;
    st.success().then_some(tar)
}

/// Step labels by id and the ids that ended CACHED / DONE, from plain progress.
struct Steps {
    labels: Vec<(String, String)>,
    cached: Vec<String>,
    done: Vec<String>,
}

fn steps(progress: &str) -> Steps {
    let mut s = Steps {
        labels: Vec::new(),
        cached: Vec::new(),
        done: Vec::new(),
    };
    for l in progress.lines() {
        let Some(rest) = l.strip_prefix('#') else {
            continue;
        };
        let Some((id, what)) = rest.split_once(' ') else {
            continue;
        };
        if what.starts_with('[') {
            s.labels.push((id.to_string(), what.to_string()));
        } else if what == "CACHED" {
            s.cached.push(id.to_string());
        } else if what.starts_with("DONE") {
            s.done.push(id.to_string());
        }
    }
    s
}

impl Steps {
    /// Labels of the steps that ran (not cached), excluding FROM and ARG.
    fn ran(&self) -> Vec<String> {
        self.labels
            .iter()
            .filter(|(id, label)| {
                self.done.contains(id) && !label.contains("] FROM ") && !label.contains("] ARG ")
            })
            .map(|(_, l)| l.clone())
            .collect()
    }

    fn cached_labels(&self) -> Vec<String> {
        self.labels
            .iter()
            .filter(|(id, _)| self.cached.contains(id))
            .map(|(_, l)| l.clone())
            .collect()
    }
}

/// Every path below `root` with its type, mode, owner and content (or link target).
fn tree_of(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        let mut entries: Vec<_> = fs::read_dir(&d).expect("read_dir").flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let m = fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(root).expect("prefix").display().to_string();
            let what = if m.is_dir() {
                todo.push(p.clone());
                "dir".to_string()
            } else if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).expect("link").display())
            } else {
                format!("{:?}", fs::read(&p).expect("read"))
            };
            out.push(format!(
                "{rel} {:o} {}:{} {what}",
                m.mode(),
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

fn make_tar_gz(dir: &Path, out: &Path) {
    let src = dir.join("tar-src");
    fs::create_dir_all(src.join("inner")).expect("mkdir");
    fs::write(src.join("inner/file.txt"), "from the archive\n").expect("write");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-czf")
        .arg(out)
        .arg("inner")
        .status()
        .expect("tar");
    assert!(st.success());
    fs::remove_dir_all(src).expect("rm");
}

const FULL_DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
# escape=\
ARG BASE=busybox:latest
ARG UNUSED_GLOBAL
FROM --platform=linux/amd64 ${BASE} AS builder
ARG GREETING=hello
ARG NOT_GIVEN
ENV STAGE=builder \
    OUT=/out
# a comment between instructions
RUN mkdir -p $OUT && echo "${GREETING:-none} ${NOT_GIVEN:-fallback} ${GREETING:+set}" > $OUT/greeting
RUN ["/bin/sh", "-c", "echo exec-form > /out/exec"]
RUN <<EOF
echo heredoc-line1 > /out/heredoc
echo heredoc-line2 >> /out/heredoc
EOF
SHELL ["/bin/sh", "-e", "-c"]
RUN echo "shell $0" > /out/shell

FROM builder AS unused
RUN echo this stage is not needed && exit 1

FROM ${BASE}
LABEL org.example.title="berth test" version=1
ARG USERNAME=app
ENV APP_HOME=/srv/app MODE=${MODE:-prod}
WORKDIR $APP_HOME
COPY --from=builder /out/ ./from-builder/
COPY --chown=app:app --chmod=640 files/*.txt conf/
COPY files/sub ./sub
ADD archive.tar.gz /srv/app/extracted/
ADD files/plain.dat /srv/app/added.dat
COPY <<EOF /srv/app/inline.txt
inline ${USERNAME}
EOF
EXPOSE 8080 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --retries=3 CMD ["true"]
ONBUILD RUN echo triggered > /tmp/onbuild
RUN rm /bin/vi && rm -r /srv/app/sub/deep && rm -r /srv/app/extracted && mkdir /srv/app/extracted && echo new > /srv/app/extracted/n
USER ${USERNAME}
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /srv/app/from-builder/greeting"]
"#;

fn full_context(env: &Env) -> PathBuf {
    let ctx = env.context(
        "full",
        &[
            ("Dockerfile", FULL_DOCKERFILE),
            (
                ".dockerignore",
                "# ignore these\nfiles/ignored.txt\n*.log\n",
            ),
            ("files/a.txt", "a\n"),
            ("files/b.txt", "b\n"),
            ("files/ignored.txt", "must not be copied\n"),
            ("files/plain.dat", "plain data\n"),
            ("files/sub/deep/x", "deep\n"),
            ("build.log", "ignored\n"),
        ],
    );
    make_tar_gz(&env.dir, &ctx.join("archive.tar.gz"));
    ctx
}

#[test]
fn multi_stage_build_with_every_instruction() {
    let Some(env) = Env::new("full") else { return };
    let ctx = full_context(&env);
    let progress = env.build_ok(&ctx, &["-t", "full:1", "--build-arg", "GREETING=hi"]);
    assert!(!progress.contains("this stage is not needed"), "{progress}");

    let c = env.config("full:1");
    let envs: Vec<&str> = c["Env"]
        .as_array()
        .expect("Env")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(envs.contains(&"APP_HOME=/srv/app"), "{c}");
    assert!(envs.contains(&"MODE=prod"), "{c}");
    assert!(
        !envs.iter().any(|e| e.starts_with("STAGE=")),
        "builder ENV leaked: {c}"
    );
    assert_eq!(c["User"], "app");
    assert_eq!(c["WorkingDir"], "/srv/app");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["cat /srv/app/from-builder/greeting"])
    );
    assert_eq!(c["Labels"]["org.example.title"], "berth test");
    assert_eq!(c["Labels"]["version"], "1");
    assert!(
        c["ExposedPorts"].get("8080/tcp").is_some() && c["ExposedPorts"].get("53/udp").is_some(),
        "{c}"
    );
    assert!(c["Volumes"].get("/data").is_some(), "{c}");
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000i64);
    assert_eq!(c["Healthcheck"]["Retries"], 3);
    assert_eq!(
        c["OnBuild"],
        serde_json::json!(["RUN echo triggered > /tmp/onbuild"])
    );

    env.with_rootfs("full:1", |r| {
        let read = |p: &str| fs::read_to_string(r.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(read("srv/app/from-builder/greeting"), "hi fallback set\n");
        assert_eq!(read("srv/app/from-builder/exec"), "exec-form\n");
        assert_eq!(
            read("srv/app/from-builder/heredoc"),
            "heredoc-line1\nheredoc-line2\n"
        );
        assert_eq!(read("srv/app/from-builder/shell"), "shell /bin/sh\n");
        let a = fs::metadata(r.join("srv/app/conf/a.txt")).expect("conf/a.txt");
        assert_eq!((a.uid(), a.gid()), (1000, 1000));
        assert_eq!(a.permissions().mode() & 0o7777, 0o640);
        assert!(r.join("srv/app/conf/b.txt").exists());
        assert!(
            !r.join("srv/app/conf/ignored.txt").exists(),
            ".dockerignore not applied"
        );
        // Deleted by the last RUN: whiteouts and an opaque directory in its layer.
        assert!(!r.join("srv/app/sub/deep").exists());
        assert!(r.join("srv/app/sub").is_dir());
        assert!(fs::symlink_metadata(r.join("bin/vi")).is_err());
        assert!(!r.join("srv/app/extracted/inner").exists());
        assert_eq!(read("srv/app/extracted/n"), "new\n");
        let added = fs::metadata(r.join("srv/app/added.dat")).expect("added.dat");
        assert_eq!((added.uid(), added.gid()), (0, 0));
        assert_eq!(read("srv/app/added.dat"), "plain data\n");
        assert_eq!(read("srv/app/inline.txt"), "inline app\n");
    });

    // The image runs: entrypoint + cmd, and the env, user and workdir it was built with.
    let out = env.run(&["run", "--rm", "full:1"]);
    assert_eq!(out, "hi fallback set\n");
    let out = env.run(&["run", "--rm", "full:1", "id -un; pwd; echo $APP_HOME $MODE"]);
    assert_eq!(out, "app\n/srv/app\n/srv/app prod\n");

    // The layers as stored (blobs) give the same tree as the layers the build used:
    // save, load into a fresh root, compare.
    let archive = env.dir.join("full.tar");
    env.ok(&["save", "-o", archive.to_str().expect("utf8"), "full:1"]);
    let tree = env.with_rootfs("full:1", tree_of);
    let other = Env {
        dir: env.dir.join("reloaded"),
    };
    fs::create_dir_all(&other.dir).expect("mkdir");
    other.ok(&["load", "-i", archive.to_str().expect("utf8")]);
    assert_eq!(other.with_rootfs("full:1", tree_of), tree);
    drop(other);

    // History: one line per instruction of the final stage (+ the base's), newest first.
    let h = env.ok(&["history", "--no-trunc", "full:1"]);
    let lines: Vec<&str> = h.lines().collect();
    assert!(lines[0].starts_with("IMAGE"), "{h}");
    assert!(lines[1].contains("CMD"), "{h}");
    assert!(
        h.contains("COPY --chown=app:app --chmod=640 files/*.txt /srv/app/conf/"),
        "{h}"
    );
    assert!(lines.last().expect("line").contains("berth import"), "{h}");

    // --target builds only what that stage needs.
    env.build_ok(&ctx, &["-t", "builder:1", "--target", "builder"]);
    env.with_rootfs("builder:1", |r| {
        assert_eq!(
            fs::read_to_string(r.join("out/greeting")).expect("greeting"),
            "hello fallback set\n"
        );
    });

    // A child image runs the ONBUILD trigger first, and doesn't inherit it.
    let child = env.context(
        "child",
        &[(
            "Dockerfile",
            "FROM full:1\nUSER root\nRUN cat /tmp/onbuild\n",
        )],
    );
    let p = env.build_ok(&child, &["-t", "child:1"]);
    assert!(p.contains("ONBUILD RUN echo triggered"), "{p}");
    env.with_rootfs("child:1", |r| {
        assert_eq!(
            fs::read_to_string(r.join("tmp/onbuild")).expect("onbuild"),
            "triggered\n"
        );
    });
    assert!(env
        .config("child:1")
        .get("OnBuild")
        .is_none_or(Value::is_null));
    env.assert_clean();
}

#[test]
fn rebuild_hits_the_cache_and_one_changed_source_reruns_from_its_copy() {
    let Some(env) = Env::new("cache") else { return };
    let mut files = vec![(
        "Dockerfile".to_string(),
        "FROM busybox\n\
         RUN mkdir -p /app/gen && for i in $(seq 1 20); do echo \"gen $i\" > /app/gen/f$i; done\n\
         ENV APP_HOME=/app GREETING=hello\n\
         WORKDIR /app\n\
         COPY ctx/ /app/ctx/\n\
         RUN n=$(find /app -type f | wc -l) && echo $n > /app/count && cat /app/ctx/d0/f0.txt > /app/first\n\
         RUN echo \"$GREETING from $(pwd)\" > /app/done\n"
            .to_string(),
    )];
    for d in 0..3 {
        for f in 0..10 {
            files.push((format!("ctx/d{d}/f{f}.txt"), format!("file {d}/{f}\n")));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let ctx = env.context("ctx", &refs);

    let first = steps(&env.build_ok(&ctx, &["-t", "c:1"]));
    assert!(first.cached.is_empty(), "cold build had cache hits");
    let id1 = env.image_id("c:1");

    // No change: every step a hit, same image id.
    let again = steps(&env.build_ok(&ctx, &["-t", "c:1"]));
    assert!(
        again.ran().is_empty(),
        "steps ran on a no-change rebuild: {:?}",
        again.ran()
    );
    assert_eq!(
        again.cached_labels().len(),
        6,
        "{:?}",
        again.cached_labels()
    );
    assert_eq!(
        env.image_id("c:1"),
        id1,
        "no-change rebuild changed the image id"
    );

    // Touching a file (mtime only) changes nothing.
    let f = ctx.join("ctx/d1/f3.txt");
    let st = Command::new("touch")
        .arg("-d")
        .arg("2001-01-01")
        .arg(&f)
        .status()
        .expect("touch");
    assert!(st.success());
    assert!(steps(&env.build_ok(&ctx, &["-t", "c:1"])).ran().is_empty());

    // One changed source: exactly the COPY and what follows run again.
    fs::write(&f, "changed\n").expect("write");
    let changed = steps(&env.build_ok(&ctx, &["-t", "c:1"]));
    let ran = changed.ran();
    assert_eq!(ran.len(), 3, "{ran:?}");
    assert!(ran[0].contains("COPY ctx/ /app/ctx/"), "{ran:?}");
    assert!(ran[1].contains("RUN n=$(find"), "{ran:?}");
    assert!(ran[2].contains("RUN echo"), "{ran:?}");
    assert_eq!(
        changed.cached_labels().len(),
        3,
        "{:?}",
        changed.cached_labels()
    );
    assert_ne!(env.image_id("c:1"), id1);
    env.with_rootfs("c:1", |r| {
        assert_eq!(
            fs::read_to_string(r.join("app/ctx/d1/f3.txt")).expect("f3"),
            "changed\n"
        );
        assert_eq!(
            fs::read_to_string(r.join("app/done")).expect("done"),
            "hello from /app\n"
        );
        assert_eq!(
            fs::read_to_string(r.join("app/count"))
                .expect("count")
                .trim(),
            "50"
        );
    });

    // --no-cache runs everything again.
    let fresh = steps(&env.build_ok(&ctx, &["-t", "c:2", "--no-cache"]));
    assert!(fresh.cached.is_empty());
    assert_eq!(fresh.ran().len(), 6, "{:?}", fresh.ran());
    env.assert_clean();
}

#[test]
fn hostile_dockerfile_and_context_cannot_read_outside() {
    let Some(env) = Env::new("hostile") else {
        return;
    };
    let outside = env.dir.join("outside");
    fs::create_dir_all(&outside).expect("mkdir");
    fs::write(outside.join("secret"), "TOP SECRET\n").expect("write");
    let ctx = env.context(
        "hctx",
        &[
            ("ok.txt", "ok\n"),
            ("private.key", "ignored\n"),
            (".dockerignore", "private.key\n"),
        ],
    );
    std::os::unix::fs::symlink("/etc", ctx.join("link-abs")).expect("symlink");
    std::os::unix::fs::symlink("../../../../../../..", ctx.join("link-up")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("secret"), ctx.join("secret-link")).expect("symlink");

    let bad = [
        ("COPY ../outside/secret /x", "outside the build context"),
        ("COPY link-abs/passwd /x", "not found"),
        ("COPY link-up/etc/passwd /x", "not found"),
        ("COPY /etc/shadow /x", "not found"),
        ("COPY private.key /x", "not found"),
        ("ADD http://127.0.0.1:1/x /x", "not supported"),
    ];
    for (line, needle) in bad {
        let df = env.dir.join("Dockerfile.bad");
        fs::write(&df, format!("FROM busybox\n{line}\n")).expect("write");
        let (ok, _, err) = env.build(&ctx, &["-f", df.to_str().expect("utf8"), "-t", "bad:1"]);
        assert!(!ok, "{line}: should fail:\n{err}");
        let last = err.lines().last().unwrap_or_default().to_lowercase();
        assert!(
            last.contains("dockerfile:2") && last.contains(needle),
            "{line}: {err}"
        );
        assert!(
            !err.contains("TOP SECRET") && !err.contains("root:"),
            "{line}: {err}"
        );
    }

    // Symlinks are copied as symlinks (never followed out); a symlink in the image can't
    // send a write to the host.
    let target = env.dir.join("host-target");
    fs::create_dir_all(&target).expect("mkdir");
    let df = env.dir.join("Dockerfile.links");
    fs::write(
        &df,
        format!(
            "FROM busybox\nCOPY secret-link link-abs /links/\nRUN ln -s {t} /escape && ln -s / /up\nCOPY ok.txt /escape/ok.txt\nCOPY ok.txt /up/{t}/ok2.txt\n",
            t = target.display()
        ),
    )
    .expect("write");
    env.build_ok(&ctx, &["-f", df.to_str().expect("utf8"), "-t", "links:1"]);
    assert_eq!(
        fs::read_dir(&target).expect("dir").count(),
        0,
        "a COPY wrote to the host"
    );
    env.with_rootfs("links:1", |r| {
        let l = fs::symlink_metadata(r.join("links/secret-link")).expect("secret-link");
        assert!(l.file_type().is_symlink());
        assert_eq!(
            fs::read_link(r.join("links/link-abs")).expect("link"),
            Path::new("/etc")
        );
        let inside = r.join(target.strip_prefix("/").expect("abs"));
        assert_eq!(
            fs::read_to_string(inside.join("ok.txt")).expect("ok"),
            "ok\n"
        );
        assert_eq!(
            fs::read_to_string(inside.join("ok2.txt")).expect("ok2"),
            "ok\n"
        );
    });
    assert!(env.ok(&["images"]).lines().all(|l| !l.starts_with("bad ")));
    env.assert_clean();
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing() {
    let Some(env) = Env::new("bad") else { return };
    let ctx = env.context("bctx", &[("here.txt", "here\n")]);
    let cases: &[(&str, &[&str])] = &[
        ("FROM busybox\nRUN true\nCOPY onlyone\n", &["dockerfile:3"]),
        (
            "FROM busybox\nBOGUS something\n",
            &["dockerfile:2", "unknown instruction"],
        ),
        ("RUN true\n", &["dockerfile:1"]),
        (
            "FROM busybox\nRUN echo failing-output && exit 3\n",
            &["dockerfile:2", "exit code: 3"],
        ),
        (
            "FROM busybox\nCOPY missing.txt /\n",
            &["dockerfile:2", "missing.txt", "not found"],
        ),
        ("FROM nosuchimage:9\n", &["dockerfile:1", "nosuchimage"]),
        ("FROM busybox\nENV =x\n", &["dockerfile:2"]),
        (
            "FROM busybox\nCOPY ${X:?is_required} /\n",
            &["dockerfile:2", "x: is_required"],
        ),
    ];
    for (df, needles) in cases {
        let p = env.dir.join("Dockerfile.case");
        fs::write(&p, df).expect("write");
        let (ok, _, err) = env.build(&ctx, &["-f", p.to_str().expect("utf8"), "-t", "bad:1"]);
        assert!(!ok, "{df:?} should fail");
        let last = err.lines().last().unwrap_or_default().to_lowercase();
        assert!(
            last.starts_with("berth:"),
            "{df:?}: last line is not the error: {err}"
        );
        for n in *needles {
            assert!(last.contains(n), "{df:?}: error lacks {n:?}: {err}");
        }
        if df.contains("failing-output") {
            assert!(
                err.contains("failing-output"),
                "RUN output not shown: {err}"
            );
        }
        env.assert_clean();
    }
    let (ok, _, err) = env.build(&env.dir.join("no-such-dir"), &[]);
    assert!(!ok && err.contains("no-such-dir"), "{err}");
    let (ok, _, err) = env.build(&ctx, &["-t", "x:1"]);
    assert!(
        !ok && err.contains("Dockerfile"),
        "missing Dockerfile: {err}"
    );
    let (ok, _, err) = env.build(&ctx, &["--target", "nope", "-f", "/dev/null"]);
    assert!(!ok, "{err}");
    let o = env.ok(&["images"]);
    assert!(!o.contains("bad "), "a failed build tagged an image: {o}");
    let (ok, _, err) = env.build(&ctx, &["-t", "Bad Name!", "-f", "/dev/null"]);
    assert!(!ok && err.contains("Bad Name!"), "{err}");
    let (ok, _, err) = env.build(&ctx, &["--network", "bridge0"]);
    assert!(!ok && err.contains("--network"), "{err}");
    env.assert_clean();
}

#[test]
fn run_steps_get_the_network_user_and_shell_asked_for() {
    let Some(env) = Env::new("net") else { return };
    let nets = "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' | sort";
    let ctx = env.context(
        "nctx",
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox\n\
                 RUN {nets} > /nets\n\
                 RUN --network=host {nets} > /nets-host\n\
                 USER app\n\
                 RUN id -u > /tmp/uid\n\
                 SHELL [\"/bin/sh\", \"-c\", \"echo \\\"$0 $1\\\" > /tmp/shell\", \"shell-arg0\"]\n\
                 RUN ignored\n"
            ),
        )],
    );
    let progress = env.build_ok(&ctx, &["-t", "net:1", "--build-arg", "NOT_DECLARED=1"]);
    assert!(
        progress.contains("NOT_DECLARED"),
        "no unused build-arg warning: {progress}"
    );
    // Our own network namespace's interfaces: what host networking must show.
    let dev = fs::read_to_string("/proc/net/dev").expect("/proc/net/dev");
    let mut ours: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    ours.sort();
    let ours = ours.iter().map(|n| format!("{n}\n")).collect::<String>();
    env.with_rootfs("net:1", |r| {
        assert_eq!(fs::read_to_string(r.join("nets")).expect("nets"), "lo\n");
        assert_eq!(
            fs::read_to_string(r.join("nets-host")).expect("nets-host"),
            ours
        );
        assert_eq!(
            fs::read_to_string(r.join("tmp/uid")).expect("uid"),
            "1000\n"
        );
        assert_eq!(
            fs::read_to_string(r.join("tmp/shell")).expect("shell"),
            "shell-arg0 ignored\n"
        );
    });
    // --network host for the whole build.
    env.build_ok(&ctx, &["-t", "net:2", "--network", "host", "--no-cache"]);
    env.with_rootfs("net:2", |r| {
        assert_eq!(fs::read_to_string(r.join("nets")).expect("nets"), ours);
    });
    env.assert_clean();
}
