//! Renders `DIR/report.html` from a run directory: `cargo run --example render_report -- DIR`.
fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: render_report RUN_DIR");
    match ladon_harness::report::html::write_report(std::path::Path::new(&dir)) {
        Ok(p) => println!("{}", p.display()),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
