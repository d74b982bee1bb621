fn main() {
    std::process::exit(berth_cli::runtime_cli::main());
}
