//! tend: a tiny static PID 1 for containers. See README.md.

mod cli;
mod cmd;
mod ctl;
#[cfg(feature = "import")]
mod import;
mod init;
mod log;
mod logs;
mod name;
mod service;
mod supervise;
mod sys;
mod units;

#[cfg(test)]
mod fuzz_tests;

fn main() {
    std::process::exit(cmd::dispatch());
}
