//! `tend logs`: prints a log directory's records across archives and `current`.

/// `tend logs …`.
pub fn logs_job(_args: crate::cli::LogsArgs) -> i32 {
    eprintln!("tend logs: not implemented yet");
    crate::cli::EXIT_USAGE
}
