fn main() {
    let p = std::env::args().nth(1).unwrap();
    let r = ladon_checker::check_path(std::path::Path::new(&p), &Default::default()).unwrap();
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    println!("{}", r.summary_text());
}
