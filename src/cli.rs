//! The command line: argh structs for every job. `cmd` reads them; nothing else does.
//!
//! To add a flag: one that takes a value and is kept as text (`--long-name VALUE`, read as an
//! `Option<String>`) is a row in its struct, its help then its field name (see `args!`);
//! any other field (a switch, a short name, another type, a positional) is written out as
//! argh wants it. A log flag goes in the table in `with_log_flags!` (and in `log::options`),
//! a flag of both `run` and `init` in `with_cmd_flags!`. `--help` lists flags in field order.

use argh::FromArgs;
use std::ffi::OsString;

/// Declares an argh struct in which a valued flag kept as text is one row, for instance
///
/// ```text
/// /// directory of the control socket (default /run/tend)
/// run_dir;
/// ```
///
/// standing for `#[argh(option)] pub run_dir: Option<String>,` (`--run-dir VALUE`). Other
/// fields are written out in full, with a type of one word or one word with one parameter
/// (`bool`, `Vec<String>`); rows and fields mix freely and keep their order.
macro_rules! args {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        args! { @fields [$(#[$m])* pub struct $name] [] $($body)* }
    };
    // The body is read one field at a time; the fields done so far, in argh's own form, are
    // carried in the second `[…]`.
    // A row: the help and the name of a valued flag.
    (@fields $head:tt [$($done:tt)*]
        $(#[doc = $doc:literal])* $field:ident; $($rest:tt)*) => {
        args! { @fields $head
            [$($done)* $(#[doc = $doc])* #[argh(option)] pub $field: Option<String>,] $($rest)* }
    };
    // A field written out. Its type is matched as words, not as `$ty:ty`: argh reads the type
    // (`bool`, `Option<…>`, `Vec<…>`) to pick the parsing, and cannot see into a `ty` fragment.
    (@fields $head:tt [$($done:tt)*]
        $(#[$a:meta])* pub $field:ident: $ty:ident $(<$arg:ident>)?, $($rest:tt)*) => {
        args! { @fields $head [$($done)* $(#[$a])* pub $field: $ty $(<$arg>)?,] $($rest)* }
    };
    // Every field read: the struct.
    (@fields [$($head:tt)*] [$($done:tt)*]) => {
        $($head)* { $($done)* }
    };
}

/// argh has no flattening, so the log flags shared by `log`, `run` and `init` are spliced
/// into each struct by this macro, listed once in `log_flag_fields!` below together with an
/// accessor giving their values by long name. `log::options` holds what each flag means; a
/// test checks both name the same flags.
macro_rules! with_log_flags {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        log_flag_fields! { [$(#[$m])*] $name [$($body)*]
            /// record format: cri (default), json, ts or plain
            format "format";
            /// longest record; longer lines are split (default 16KiB)
            max_line "max-line";
            /// rotate current before it passes SIZE (default 10MiB)
            rotate_size "rotate-size";
            /// also rotate current when it is this old (1h, 1d)
            rotate_every "rotate-every";
            /// keep at most N archives (default 5)
            keep "keep";
            /// delete oldest archives while all archives exceed SIZE
            max_total "max-total";
            /// delete archives older than DURATION
            max_age "max-age";
            /// gzip archives in the background: gzip or none (default)
            compress "compress";
            /// run CMD with the archive path after each rotation
            on_rotate "on-rotate";
            /// block (default, nothing lost) or drop when the disk is full
            on_full "on-full";
            /// the copy's form: same (the file's records), plain (the raw line) or prefixed (NAME | line); default prefixed for init, same otherwise
            tee_format "tee-format";
        }
    };
}

/// The flags `run` and `init` share besides the log flags: CMD's name, the log root,
/// `--expect-exit` and `--metrics-addr`.
macro_rules! with_cmd_flags {
    ($(#[$m:meta])* pub struct $name:ident { $($body:tt)* }) => {
        with_log_flags! {
            $(#[$m])*
            pub struct $name {
                /// service name CMD logs as (default main)
                name;
                /// log root directory (default /data/logs)
                log_root;
                /// do not count CODE as a failure: CMD exiting with CODE makes tend exit 0 (repeatable)
                #[argh(option)]
                pub expect_exit: Vec<String>,
                /// serve HTTP GET /metrics, /readyz, /livez on HOST:PORT (off by default)
                metrics_addr;
                $($body)*
            }
        }

        impl $name {
            /// Takes CMD and the flags shared with the other command: (CMD, `--name`,
            /// `--expect-exit`, `--metrics-addr`).
            pub fn take_cmd_flags(
                &mut self,
            ) -> (Vec<OsString>, Option<String>, Vec<String>, Option<String>) {
                (
                    std::mem::take(&mut self.cmd),
                    self.name.take(),
                    std::mem::take(&mut self.expect_exit),
                    self.metrics_addr.take(),
                )
            }
        }
    };
}

/// The expansion of [`with_log_flags`]: the struct through `args!` with the log flags as
/// rows after its own fields, `--tee` as a switch, and `log_flag_values`.
macro_rules! log_flag_fields {
    ([$($m:tt)*] $name:ident [$($body:tt)*] $(#[doc = $doc:literal] $field:ident $long:literal;)*) => {
        args! {
            $($m)*
            pub struct $name {
                $($body)*
                $(
                    #[doc = $doc]
                    $field;
                )*
                /// also copy records to tend's stdout/stderr, never blocking capture
                #[argh(switch)]
                pub tee: bool,
            }
        }

        impl $name {
            /// The valued log flags given on the command line, by long name.
            pub fn log_flag_values(&self) -> Vec<(&'static str, Option<&str>)> {
                vec![$(($long, self.$field.as_deref())),*]
            }
        }
    };
}

#[derive(FromArgs, Debug)]
/// tend: a tiny PID 1 for containers that supervises services and writes their logs to rotating files.
pub struct Tend {
    #[argh(subcommand)]
    pub job: Job,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
/// One of tend's jobs.
pub enum Job {
    Init(InitArgs),
    Run(RunArgs),
    Log(LogArgs),
    Ctl(CtlArgs),
    Logs(LogsArgs),
    Check(CheckArgs),
    #[cfg(feature = "import")]
    Import(ImportArgs),
}

with_cmd_flags! {
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "run")]
    /// Wrap one command: reap zombies, forward signals, capture and rotate its output, exit with its code.
    pub struct RunArgs {
        /// do not capture output: the child keeps stdin/stdout/stderr (pure tini)
        #[argh(switch)]
        pub no_capture: bool,
        /// forward signals to the child's whole process group
        #[argh(switch)]
        pub group: bool,
        /// the command and its arguments
        #[argh(positional, greedy)]
        pub cmd: Vec<OsString>,
    }
}

with_cmd_flags! {
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "init")]
    /// Container init: start the service tree, then CMD; reap, forward signals, shut down in order.
    pub struct InitArgs {
        /// service tree directory (default /etc/tend/services)
        services;
        /// directory of the control socket (default /run/tend)
        run_dir;
        /// rewrite Prometheus metrics to PATH every 10 s
        metrics_file;
        /// CMD and its arguments (optional)
        #[argh(positional, greedy)]
        pub cmd: Vec<OsString>,
    }
}

with_log_flags! {
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "log")]
    /// Read stdin and write a rotating log directory (like s6-log, svlogd, multilog).
    pub struct LogArgs {
        /// the log directory
        #[argh(positional)]
        pub dir: String,
    }
}

args! {
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "ctl")]
    /// Control a running tend init through its control socket.
    pub struct CtlArgs {
        /// directory of the control socket (default /run/tend or TEND_RUN_DIR)
        run_dir;
        /// seconds to wait for the requested state change (default 10)
        timeout;
        /// print JSON (status)
        #[argh(switch)]
        pub json: bool,
        /// status [NAME] | ready [NAME…] | start NAME | stop NAME | restart NAME | kill SIGNAL NAME | shutdown | metrics | rotate NAME|all
        #[argh(positional, greedy)]
        pub words: Vec<String>,
    }
}

args! {
    #[derive(FromArgs, Debug)]
    #[argh(subcommand, name = "logs")]
    /// Print a service's records across archives and current.
    pub struct LogsArgs {
        /// follow current across rotations
        #[argh(switch, short = 'f')]
        pub follow: bool,
        /// print only the last N records
        #[argh(option, short = 'n')]
        pub lines: Option<usize>,
        /// only records at or after TIME (RFC 3339, or a duration ago such as 10m)
        since;
        /// only records of this stream: stdout or stderr
        stream;
        /// log root (default /data/logs or TEND_LOG_ROOT)
        log_root;
        /// service name, or a path to a log directory
        #[argh(positional)]
        pub name: String,
    }
}

#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "check")]
/// Validate a service tree without starting anything.
pub struct CheckArgs {
    /// the service tree (default /etc/tend/services)
    #[argh(positional)]
    pub dir: Option<String>,
}

#[cfg(feature = "import")]
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "import")]
/// Convert an s6-rc, s6-overlay v2 or supervisord configuration into a service tree.
pub struct ImportArgs {
    /// s6-rc (an s6-rc.d directory), s6-overlay-v2 (an /etc with services.d) or supervisord (a file)
    #[argh(positional)]
    pub format: String,
    /// the configuration to convert
    #[argh(positional)]
    pub src: String,
    /// the new service tree (must not exist or be empty)
    #[argh(positional)]
    pub out: String,
}

#[cfg(test)]
mod tests {
    use super::LogArgs;
    use argh::FromArgs;

    #[test]
    fn log_flags_are_those_of_log_options() {
        let a = LogArgs::from_args(&["tend"], &["dir"]).unwrap();
        let mut names: Vec<&str> = a.log_flag_values().iter().map(|(n, _)| *n).collect();
        names.push("tee");
        assert_eq!(names, crate::log::options::FLAGS);
    }
}
