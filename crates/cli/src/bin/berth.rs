//! The `berth` engine CLI. The same static binary is also the `--init` process of a
//! container (bind-mounted at /dev/init): then it never parses berth's arguments.

#[path = "../berth_cli/mod.rs"]
mod berth_cli;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(args) = berth_engine::init::init_invocation(&argv) {
        std::process::exit(berth_engine::init::init_main(args));
    }
    std::process::exit(berth_cli::main());
}
