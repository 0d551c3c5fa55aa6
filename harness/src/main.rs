/// mimalloc keeps and reuses freed memory instead of returning it to the
/// kernel and faulting in fresh zeroed pages, which the checker's large
/// temporary arrays otherwise pay for on every phase.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ladon_harness::cli::main()
}
