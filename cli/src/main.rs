//! `bramble`: the command line for Bramble. All logic lives in the library.

fn main() -> std::process::ExitCode {
    bramble_cli::main_with_args(std::env::args_os())
}
