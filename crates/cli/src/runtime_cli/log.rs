//! Errors and warnings go to stderr and, with --log, to that file in runc's format
//! (text, or JSON lines {"level","msg","time"} that containerd and docker show to users).

use super::args::{Cli, LogFormat};
use std::io::Write;
use std::sync::OnceLock;

struct Sink {
    file: Option<std::fs::File>,
    json: bool,
    debug: bool,
}

static SINK: OnceLock<Sink> = OnceLock::new();

pub fn init(cli: &Cli) {
    let file = cli.log.as_ref().and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let _ = SINK.set(Sink {
        file,
        json: cli.log_format == LogFormat::Json,
        debug: cli.debug,
    });
    berth_runtime::log::set_warning_sink(|m| write("warning", m));
}

pub fn error(msg: &str) {
    write("error", msg);
}

/// With --debug: a line per invocation (argv, duration), to the log and stderr.
pub fn debug(msg: &str) {
    if SINK.get().is_some_and(|s| s.debug) {
        write("debug", msg);
    }
}

fn write(level: &str, msg: &str) {
    let sink = SINK.get();
    eprintln!("berth-runtime: {level}: {msg}");
    let Some(sink) = sink else { return };
    let Some(mut f) = sink.file.as_ref() else {
        return;
    };
    let time = berth_runtime::state::now_rfc3339();
    let line = if sink.json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    };
    let _ = writeln!(f, "{line}");
}
