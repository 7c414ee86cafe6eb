//! One log directory: `current`, rotation to `@<time>.log`, retention, disk-full policy.

use super::LogOptions;
use super::layout::Identity;
use std::path::Path;

/// A locked, open log directory.
pub struct Sink {}

impl Sink {
    /// Opens (creating) `<root>/<ns>/<app>/<pod>/<service>/` and takes its lock.
    pub fn open_service(
        _root: &Path,
        _id: &Identity,
        _service: &str,
        _opts: LogOptions,
    ) -> Result<Sink, String> {
        Err("log sink: not implemented yet".into())
    }

    /// Opens (creating) a log directory given directly, as `tend log DIR` does.
    pub fn open_dir(_dir: &Path, _opts: LogOptions) -> Result<Sink, String> {
        Err("log sink: not implemented yet".into())
    }
}
