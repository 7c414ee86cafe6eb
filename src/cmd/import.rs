//! `tend import s6-rc|s6-overlay-v2|supervisord SRC OUT`.

use super::EXIT_CONFIG;
use crate::cli::ImportArgs;
use std::path::Path;

/// Exit 0 once OUT is written (the notes go to stdout), 111 with the reason on stderr when
/// nothing was written.
pub fn import(args: ImportArgs) -> i32 {
    let imp = match crate::import::convert(&args.format, Path::new(&args.src), Path::new(&args.out))
    {
        Ok(imp) => imp,
        Err(e) => {
            eprintln!("tend import: {e}");
            return EXIT_CONFIG;
        }
    };
    for n in &imp.notes {
        println!("{n}");
    }
    println!(
        "tend import: wrote {} service(s) to {}; {} item(s) not converted{}; check with: tend check {}",
        imp.services.len(),
        args.out,
        imp.notes.len(),
        if imp.notes.is_empty() { "" } else { " (above)" },
        args.out
    );
    0
}
