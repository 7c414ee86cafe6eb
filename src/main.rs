//! tend: a tiny static PID 1 for containers. See README.md.

mod cli;
mod ctl;
mod init;
mod log;
mod service;
mod supervise;
mod sys;
mod units;

fn main() {
    std::process::exit(cli::dispatch());
}
