//! The `berth` engine CLI (images so far).

#[path = "../berth_cli/mod.rs"]
mod berth_cli;

fn main() {
    std::process::exit(berth_cli::main());
}
