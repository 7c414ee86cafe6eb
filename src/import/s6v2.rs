//! s6-overlay v2 layouts (`/etc` with `services.d/`, `cont-init.d/`, `cont-finish.d/`):
//! each `cont-init.d` script becomes a oneshot `up`, chained in name order; each
//! `cont-finish.d` script a oneshot `down`, chained so they run in name order at shutdown
//! after the longruns stop; each `services.d/NAME` a longrun started after the last init.

use super::s6::{longrun, script};
use super::{Import, Service, list, service_name, text_or_fatal};
use std::path::Path;

/// Reads the v2 layout under `dir` (the image's `/etc`, or a copy of it) into `imp`.
pub fn read(dir: &Path, imp: &mut Import) -> Result<(), String> {
    let parts = ["services.d", "cont-init.d", "cont-finish.d", "fix-attrs.d"];
    if !parts.iter().any(|p| dir.join(p).is_dir()) {
        return Err(format!(
            "{}: no services.d, cont-init.d, cont-finish.d or fix-attrs.d (expected an s6-overlay v2 /etc directory)",
            dir.display()
        ));
    }
    for f in list(&dir.join("fix-attrs.d"), imp) {
        imp.note(
            &format!("fix-attrs.d/{f}"),
            "fix-attrs",
            "not converted: write a oneshot that runs chown/chmod (a RUN chown does not reach volumes mounted at run time)",
        );
    }

    let mut last_init: Option<String> = None;
    for f in list(&dir.join("cont-init.d"), imp) {
        let source = format!("cont-init.d/{f}");
        let text = text_or_fatal(&dir.join("cont-init.d").join(&f), imp);
        let mut s = Service::new(&service_name(&format!("cont-init-{f}"), &source, imp));
        s.value("type", "oneshot");
        s.script("up", script(&text, &source, "up", imp));
        if let Some(prev) = &last_init {
            s.dep(prev);
        }
        last_init = Some(s.name.clone());
        imp.services.push(s);
    }

    // Finish scripts run in name order at shutdown: each one stops (runs its down) before
    // the next, so each depends on the next.
    let finishes = list(&dir.join("cont-finish.d"), imp);
    let mut finish_names: Vec<String> = Vec::new();
    for f in &finishes {
        let source = format!("cont-finish.d/{f}");
        finish_names.push(service_name(&format!("cont-finish-{f}"), &source, imp));
    }
    for (i, f) in finishes.iter().enumerate() {
        let source = format!("cont-finish.d/{f}");
        let text = text_or_fatal(&dir.join("cont-finish.d").join(f), imp);
        let mut s = Service::new(&finish_names[i]);
        s.value("type", "oneshot");
        s.script(
            "up",
            "#!/bin/sh\n# Nothing at start-up: this service's work is its down script.\n".into(),
        );
        s.script("down", script(&text, &source, "down", imp));
        if let Some(next) = finish_names.get(i + 1) {
            s.dep(next);
        }
        imp.services.push(s);
    }

    let sdir = dir.join("services.d");
    for name in list(&sdir, imp) {
        let d = sdir.join(&name);
        if !d.is_dir() {
            continue;
        }
        let source = format!("services.d/{name}");
        let mut s = Service::new(&service_name(&name, &source, imp));
        let Some(used) = longrun(&mut s, &d, &source, imp) else {
            continue;
        };
        if d.join("down").exists() {
            s.value("disabled", "");
        }
        if let Some(init) = &last_init {
            s.dep(init);
        }
        if let Some(first) = finish_names.first() {
            s.dep(first);
        }
        for f in list(&d, imp) {
            if f == "down" || used.contains(&f) {
                continue;
            }
            let why = match f.as_str() {
                "log" => {
                    "logger dropped (tend logs this service's output itself; log flags go in log-options)"
                }
                "data" => "not copied (scripts that read ./data need it copied by hand)",
                _ => "not converted (tend has no such file)",
            };
            imp.note(&source, &f, why);
        }
        imp.services.push(s);
    }
    Ok(())
}
