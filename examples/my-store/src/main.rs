//! `my-store`: Ladon's whole command line for my store, correct
//! (`--adapter my-store`, the default) and with its planted bug
//! (`--adapter my-store-buggy`):
//!
//!     cargo run -p my-store -- run --seed 7
//!     cargo run -p my-store -- explore --adapter my-store-buggy --seeds 50 --time-limit 3s
//!     cargo run -p my-store -- replay results/latest

use ladon::Adapter;
use my_store::MyStore;

fn main() -> std::process::ExitCode {
    ladon::cli::main_with([
        (
            "my-store",
            Adapter::new(MyStore::new).about("my store (examples/my-store)"),
        ),
        (
            "my-store-buggy",
            Adapter::new(|n| MyStore::new(n).with_bug(true))
                .about("my store with its planted anti-entropy bug"),
        ),
    ])
}
