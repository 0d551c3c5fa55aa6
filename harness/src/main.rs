fn main() -> std::process::ExitCode {
    ladon_harness::cli::main()
}
