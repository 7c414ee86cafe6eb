//! Control and reading: the control socket (server in init, client `tend ctl`) and `tend logs`.

/// `tend ctl …`.
pub fn ctl_job(_args: crate::cli::CtlArgs) -> i32 {
    eprintln!("tend ctl: not implemented yet");
    crate::cli::EXIT_USAGE
}

/// `tend logs …`.
pub fn logs_job(_args: crate::cli::LogsArgs) -> i32 {
    eprintln!("tend logs: not implemented yet");
    crate::cli::EXIT_USAGE
}
