use netc::diagnostics::{render, SourceMap};
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut sm = SourceMap::new();
    let f = sm.add(path, text.clone());
    match netc::syntax::parser::parse(f, &text) {
        Ok(m) => print!("{}", netc::syntax::print::module(&m)),
        Err(ds) => for d in ds.iter() { print!("{}", render::human(d, &sm, Default::default())); println!("{}", render::json_line(d, &sm)); }
    }
}
