//! Service definitions: reading and validating a service directory tree (also `tend check`).

/// `tend check DIR`.
pub fn check_job(_args: crate::cli::CheckArgs) -> i32 {
    eprintln!("tend check: not implemented yet");
    crate::cli::EXIT_USAGE
}
