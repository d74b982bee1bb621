//! A Dockerfile as the builder uses it: stages of steps, each with its line number and the
//! raw (not yet expanded) arguments.
//!
//! The grammar is parse-dockerfile's (taiki-e): of the crates we evaluated it is the only
//! one that handles every item on our list — parser directives (`# syntax`, `# escape`),
//! continuations with either escape character, comments inside continued lines, JSON and
//! shell forms, `RUN <<EOF` and `COPY <<EOF` here-documents, flags on FROM/RUN/COPY/ADD/
//! HEALTHCHECK, every instruction including ONBUILD/SHELL/STOPSIGNAL — and reports errors
//! with line and column. `dockerfile-parser` (pest) lacks ADD/WORKDIR/USER/SHELL/HEALTHCHECK/
//! ONBUILD and heredocs; `dockerfile-parser-rs` only knows the literal `<<EOF` heredoc and
//! no escape directive. parse-dockerfile leaves variables unexpanded (as it should: their
//! values are only known while building), so expansion lives in [`crate::expand`].
//!
//! What parse-dockerfile does not do, and so neither do we: a heredoc that isn't the first
//! argument of RUN (`RUN cat <<EOF >f`); such a Dockerfile is refused with a line number.

use std::borrow::Cow;

use parse_dockerfile::{Command, HealthcheckArguments, Instruction, JsonOrStringArray, Source};

use crate::error::{Error, Result};

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// `ARG`s before the first `FROM`: (name, default), usable in FROM lines.
    pub global_args: Vec<(String, Option<String>)>,
    pub stages: Vec<Stage>,
    /// The escape character (`\` unless `# escape=` says otherwise).
    pub escape: char,
}

/// One `FROM` and the steps after it.
#[derive(Debug, Clone)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lower-cased (stage names are case-insensitive).
    pub name: Option<String>,
    /// The image (unexpanded: may use global ARGs), `scratch`, or another stage's name.
    pub base: String,
    pub platform: Option<String>,
    pub line: usize,
    /// The FROM line as written (for progress output).
    pub text: String,
    pub steps: Vec<Step>,
}

/// One instruction after FROM.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based line of its keyword.
    pub line: usize,
    /// The instruction as written, continuations joined (for progress and history).
    pub text: String,
    pub kind: StepKind,
}

/// Exec form (JSON array, used as is) or shell form (run through SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    Exec(Vec<String>),
    Shell(String),
}

/// A COPY/ADD source: a path or glob in the context (or `--from` root), or a heredoc.
#[derive(Debug, Clone)]
pub enum CopySource {
    Path(String),
    HereDoc {
        /// The delimiter word: the file name when the destination is a directory.
        name: String,
        content: String,
        expand: bool,
    },
}

#[derive(Debug, Clone)]
pub enum StepKind {
    Run {
        command: CommandForm,
        /// `--network=none|host|default` on this RUN.
        network: Option<String>,
    },
    Copy {
        add: bool,
        from: Option<String>,
        chown: Option<String>,
        chmod: Option<String>,
        sources: Vec<CopySource>,
        dest: String,
    },
    /// Raw `K=V ...` (or legacy `K V`) text.
    Env(String),
    /// (name, default) pairs.
    Arg(Vec<(String, Option<String>)>),
    Label(String),
    Workdir(String),
    User(String),
    Cmd(CommandForm),
    Entrypoint(CommandForm),
    Expose(Vec<String>),
    Volume(Vec<String>),
    StopSignal(String),
    Healthcheck(Option<Healthcheck>),
    Shell(Vec<String>),
    /// The trigger instruction as written (stored in the config's `OnBuild`).
    Onbuild(String),
    Maintainer(String),
}

/// `HEALTHCHECK [--interval=..] CMD ...` (`None` in [`StepKind::Healthcheck`] = `NONE`).
#[derive(Debug, Clone)]
pub struct Healthcheck {
    pub test: CommandForm,
    /// (flag name, value) as written: interval, timeout, start-period, start-interval, retries.
    pub options: Vec<(String, String)>,
}

/// 1-based line of byte offset `pos`.
pub fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The logical line starting at `start`: continuations joined, comment lines inside a
/// continuation dropped, whitespace collapsed at the joins.
fn logical_line(text: &str, start: usize, escape: char) -> String {
    let mut out = String::new();
    let mut first = true;
    for line in text[start..].split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !first && line.trim_start().starts_with('#') {
            continue;
        }
        first = false;
        let trimmed = line.trim_end();
        if let Some(body) = trimmed.strip_suffix(escape) {
            out.push_str(body);
            continue;
        }
        out.push_str(line);
        break;
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn flags_of<'b, 'a: 'b>(
    flags: impl IntoIterator<Item = &'b parse_dockerfile::Flag<'a>>,
    allowed: &[&str],
    line: usize,
    instruction: &str,
) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    for f in flags {
        let name = f.name.value.to_string();
        if !allowed.contains(&name.as_str()) {
            return Err(Error::Syntax {
                line,
                message: format!("{instruction}: unknown flag: --{name}"),
            });
        }
        out.push((name, f.value.as_ref().map(|v| v.value.to_string())));
    }
    Ok(out)
}

fn flag(flags: &[(String, Option<String>)], name: &str) -> Option<String> {
    flags
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone().unwrap_or_default())
}

fn command(c: &Command<'_>) -> CommandForm {
    match c {
        Command::Exec(v) => {
            CommandForm::Exec(v.value.iter().map(|s| s.value.to_string()).collect())
        }
        Command::Shell(s) => CommandForm::Shell(s.value.to_string()),
        // parse-dockerfile's enum is non-exhaustive; it has no other form today.
        _ => CommandForm::Shell(String::new()),
    }
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`: the delimiter word, if `s` is just that.
fn heredoc_delimiter(s: &str) -> Option<String> {
    let rest = s.trim().strip_prefix("<<")?;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let word = rest.trim_matches(|c| c == '"' || c == '\'');
    (!word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || c == '_'))
        .then(|| word.to_string())
}

/// Parse a Dockerfile's text.
pub fn parse(text: &str) -> Result<Dockerfile> {
    let df = parse_dockerfile::parse(text).map_err(|e| Error::Syntax {
        line: e.line().max(1),
        message: format!("{e:#}"),
    })?;
    let escape = df
        .parser_directives
        .escape
        .as_ref()
        .map(|d| d.value.value)
        .unwrap_or('\\');
    let mut out = Dockerfile {
        global_args: Vec::new(),
        stages: Vec::new(),
        escape,
    };
    for ins in &df.instructions {
        let start = keyword_start(ins);
        let line = line_of(text, start);
        let text_of = logical_line(text, start, escape);
        if let Instruction::From(f) = ins {
            let flags = flags_of(&f.options, &["platform"], line, "FROM")?;
            out.stages.push(Stage {
                index: out.stages.len(),
                name: f.as_.as_ref().map(|(_, n)| n.value.to_lowercase()),
                base: f.image.value.to_string(),
                platform: flag(&flags, "platform"),
                line,
                text: text_of,
                steps: Vec::new(),
            });
            continue;
        }
        let kind = step_kind(ins, text, line, escape)?;
        match out.stages.last_mut() {
            Some(stage) => stage.steps.push(Step {
                line,
                text: text_of,
                kind,
            }),
            None => match kind {
                StepKind::Arg(args) => out.global_args.extend(args),
                _ => {
                    return Err(Error::Syntax {
                        line,
                        message: "no build stage in current context (the first instruction must be FROM, after ARGs)"
                            .into(),
                    })
                }
            },
        }
    }
    if out.stages.is_empty() {
        return Err(Error::Syntax {
            line: line_of(text, text.len()),
            message: "the Dockerfile has no FROM instruction".into(),
        });
    }
    Ok(out)
}

fn keyword_start(ins: &Instruction<'_>) -> usize {
    match ins {
        Instruction::Add(i) => i.add.span.start,
        Instruction::Arg(i) => i.arg.span.start,
        Instruction::Cmd(i) => i.cmd.span.start,
        Instruction::Copy(i) => i.copy.span.start,
        Instruction::Entrypoint(i) => i.entrypoint.span.start,
        Instruction::Env(i) => i.env.span.start,
        Instruction::Expose(i) => i.expose.span.start,
        Instruction::From(i) => i.from.span.start,
        Instruction::Healthcheck(i) => i.healthcheck.span.start,
        Instruction::Label(i) => i.label.span.start,
        Instruction::Maintainer(i) => i.maintainer.span.start,
        Instruction::Onbuild(i) => i.onbuild.span.start,
        Instruction::Run(i) => i.run.span.start,
        Instruction::Shell(i) => i.shell.span.start,
        Instruction::Stopsignal(i) => i.stopsignal.span.start,
        Instruction::User(i) => i.user.span.start,
        Instruction::Volume(i) => i.volume.span.start,
        Instruction::Workdir(i) => i.workdir.span.start,
        _ => 0,
    }
}

/// `ARG a=1 b` → [("a", Some("1")), ("b", None)]. Defaults stay raw: they are expanded
/// (and unquoted) when the ARG is reached.
fn parse_args(raw: &str, escape: char) -> Vec<(String, Option<String>)> {
    crate::expand::split_words(raw, escape)
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect()
}

fn step_kind(ins: &Instruction<'_>, text: &str, line: usize, escape: char) -> Result<StepKind> {
    let s = |v: &Cow<'_, str>| v.to_string();
    Ok(match ins {
        Instruction::Run(r) => {
            let flags = flags_of(&r.options, &["network", "mount", "security"], line, "RUN")?;
            for unsupported in ["mount", "security"] {
                if flag(&flags, unsupported).is_some() {
                    return Err(Error::Instruction {
                        line,
                        instruction: "RUN".into(),
                        message: format!("--{unsupported} is not supported by berth build"),
                    });
                }
            }
            let command = match (&r.arguments, r.here_docs.first()) {
                // parse-dockerfile gives what follows `<<EOF` as the arguments.
                (Command::Shell(sh), Some(doc)) if sh.value.trim().is_empty() => {
                    // `RUN <<EOF`: the document is the script.
                    CommandForm::Shell(doc.value.to_string())
                }
                (Command::Shell(sh), Some(doc)) => {
                    // `RUN <<EOF python3`: the document is the program's stdin, as a shell
                    // heredoc gives it.
                    let first_line = text.lines().nth(line - 1).unwrap_or_default();
                    let delim = first_line
                        .split_whitespace()
                        .find_map(heredoc_delimiter)
                        .unwrap_or_else(|| "EOF".into());
                    CommandForm::Shell(format!(
                        "{} <<'{delim}'\n{}{delim}",
                        sh.value.trim(),
                        doc.value
                    ))
                }
                (c, _) => command(c),
            };
            StepKind::Run {
                command,
                network: flag(&flags, "network"),
            }
        }
        Instruction::Copy(c) => {
            let flags = flags_of(
                &c.options,
                &["from", "chown", "chmod", "link", "parents", "exclude"],
                line,
                "COPY",
            )?;
            for unsupported in ["parents", "exclude"] {
                if flag(&flags, unsupported).is_some() {
                    return Err(Error::Instruction {
                        line,
                        instruction: "COPY".into(),
                        message: format!("--{unsupported} is not supported by berth build"),
                    });
                }
            }
            StepKind::Copy {
                add: false,
                from: flag(&flags, "from"),
                chown: flag(&flags, "chown"),
                chmod: flag(&flags, "chmod"),
                sources: name_heredocs(c.src.iter().map(copy_source).collect(), text, line),
                dest: s(&c.dest.value),
            }
        }
        Instruction::Add(c) => {
            let flags = flags_of(
                &c.options,
                &["chown", "chmod", "link", "checksum", "keep-git-dir"],
                line,
                "ADD",
            )?;
            // Both only apply to remote sources (URLs, git), which berth build refuses.
            for remote_only in ["checksum", "keep-git-dir"] {
                if flag(&flags, remote_only).is_some() {
                    return Err(Error::Instruction {
                        line,
                        instruction: "ADD".into(),
                        message: format!(
                            "--{remote_only} only applies to remote sources, which berth build does not fetch"
                        ),
                    });
                }
            }
            StepKind::Copy {
                add: true,
                from: None,
                chown: flag(&flags, "chown"),
                chmod: flag(&flags, "chmod"),
                sources: name_heredocs(c.src.iter().map(copy_source).collect(), text, line),
                dest: s(&c.dest.value),
            }
        }
        Instruction::Env(e) => StepKind::Env(s(&e.arguments.value)),
        Instruction::Arg(a) => StepKind::Arg(parse_args(&a.arguments.value, escape)),
        Instruction::Label(l) => StepKind::Label(s(&l.arguments.value)),
        Instruction::Workdir(w) => StepKind::Workdir(s(&w.arguments.value)),
        Instruction::User(u) => StepKind::User(s(&u.arguments.value)),
        Instruction::Cmd(c) => StepKind::Cmd(command(&c.arguments)),
        Instruction::Entrypoint(e) => StepKind::Entrypoint(command(&e.arguments)),
        Instruction::Expose(e) => {
            StepKind::Expose(e.arguments.iter().map(|a| s(&a.value)).collect())
        }
        Instruction::Volume(v) => StepKind::Volume(match &v.arguments {
            JsonOrStringArray::Json(j) => j.value.iter().map(|a| s(&a.value)).collect(),
            JsonOrStringArray::String(v) => v.iter().map(|a| s(&a.value)).collect(),
        }),
        Instruction::Stopsignal(x) => StepKind::StopSignal(s(&x.arguments.value)),
        Instruction::Healthcheck(h) => {
            let flags = flags_of(
                &h.options,
                &[
                    "interval",
                    "timeout",
                    "start-period",
                    "start-interval",
                    "retries",
                ],
                line,
                "HEALTHCHECK",
            )?;
            match &h.arguments {
                HealthcheckArguments::Cmd { arguments, .. } => {
                    StepKind::Healthcheck(Some(Healthcheck {
                        test: command(arguments),
                        options: flags
                            .into_iter()
                            .map(|(k, v)| (k, v.unwrap_or_default()))
                            .collect(),
                    }))
                }
                _ => StepKind::Healthcheck(None),
            }
        }
        Instruction::Shell(sh) => {
            StepKind::Shell(sh.arguments.iter().map(|a| s(&a.value)).collect())
        }
        Instruction::Onbuild(o) => {
            let inner = keyword_start(&o.instruction);
            StepKind::Onbuild(logical_line(text, inner, escape))
        }
        Instruction::Maintainer(m) => StepKind::Maintainer(s(&m.name.value)),
        Instruction::From(_) => unreachable_from(line)?,
        _ => {
            return Err(Error::Syntax {
                line,
                message: "unknown instruction".into(),
            })
        }
    })
}

fn unreachable_from(line: usize) -> Result<StepKind> {
    Err(Error::Syntax {
        line,
        message: "FROM handled as a stage start".into(),
    })
}

/// Give each heredoc source the name of its delimiter, read from the instruction's line.
fn name_heredocs(mut sources: Vec<CopySource>, text: &str, line: usize) -> Vec<CopySource> {
    let first_line = text.lines().nth(line - 1).unwrap_or_default();
    let mut names = first_line.split_whitespace().filter_map(heredoc_delimiter);
    for src in &mut sources {
        if let CopySource::HereDoc { name, .. } = src {
            *name = names.next().unwrap_or_else(|| "EOF".into());
        }
    }
    sources
}

fn copy_source(src: &Source<'_>) -> CopySource {
    match src {
        Source::Path(p) => CopySource::Path(p.value.to_string()),
        Source::HereDoc(h) => CopySource::HereDoc {
            name: String::new(),
            content: h.value.to_string(),
            expand: h.expand,
        },
        _ => CopySource::Path(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_steps_and_lines() {
        let df = parse(
            "# syntax=docker/dockerfile:1\nARG BASE=busybox\nFROM ${BASE} AS Build\nRUN echo a \\\n  # comment\n  && echo b\nRUN <<EOF\necho hi\nEOF\nFROM scratch\nCOPY --from=build --chown=1:2 /a /b/\nCMD [\"sh\", \"-c\"]\n",
        )
        .expect("parse");
        assert_eq!(
            df.global_args,
            vec![("BASE".into(), Some("busybox".into()))]
        );
        assert_eq!(df.stages.len(), 2);
        assert_eq!(df.stages[0].name.as_deref(), Some("build"));
        assert_eq!(df.stages[0].line, 3);
        let s0 = &df.stages[0].steps;
        assert_eq!(s0[0].line, 4);
        assert_eq!(s0[0].text, "RUN echo a && echo b");
        match &s0[1].kind {
            StepKind::Run {
                command: CommandForm::Shell(sh),
                ..
            } => assert_eq!(sh, "echo hi\n"),
            k => panic!("{k:?}"),
        }
        match &df.stages[1].steps[0].kind {
            StepKind::Copy {
                from, chown, dest, ..
            } => {
                assert_eq!(from.as_deref(), Some("build"));
                assert_eq!(chown.as_deref(), Some("1:2"));
                assert_eq!(dest, "/b/");
            }
            k => panic!("{k:?}"),
        }
        assert!(
            matches!(&df.stages[1].steps[1].kind, StepKind::Cmd(CommandForm::Exec(v)) if v.len() == 2)
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("FROM scratch\nRUN true\nFOO bar\n").unwrap_err();
        assert!(matches!(e, Error::Syntax { line: 3, .. }), "{e}");
        let e = parse("RUN true\n").unwrap_err();
        assert!(matches!(e, Error::Syntax { line: 1, .. }), "{e}");
        let e = parse("FROM scratch\nCOPY --bogus=1 a b\n").unwrap_err();
        assert!(matches!(e, Error::Syntax { line: 2, .. }), "{e}");
    }

    #[test]
    fn escape_directive() {
        let df = parse("# escape=`\nFROM scratch\nRUN echo a `\n  b\n").expect("parse");
        assert_eq!(df.escape, '`');
        assert_eq!(df.stages[0].steps[0].text, "RUN echo a b");
    }
}
