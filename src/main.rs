//! The `lsmtune` binary: parse the command line, run it, print errors once, exit with a code that
//! means one thing (see `lsmtune --help`).

fn main() {
    std::process::exit(lsmtune::cli::main());
}
