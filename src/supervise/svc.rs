//! One supervised service: its definition, its state machine and the fds it owns.

use super::spawn::Ids;
use super::state::{Conf, Machine, ReadyBy};
use crate::log::stats::SinkStats;
use crate::service::{Kind, Readiness, ServiceDef};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// A service with its state.
pub struct Svc {
    /// The validated definition.
    pub def: ServiceDef,
    /// What the state machine reads of the definition.
    pub conf: Conf,
    /// Its state and what it remembers across runs.
    pub m: Machine,
    /// Write ends of the capture pipes, kept for every incarnation.
    pub out: OwnedFd,
    /// Write end of the stderr capture pipe.
    pub err: OwnedFd,
    /// Log counters.
    pub stats: Arc<SinkStats>,
    /// Read end of the notification-fd pipe of the current run.
    pub ready_pipe: Option<OwnedFd>,
    /// sd_notify socket, kept across restarts.
    pub notify: Option<OwnedFd>,
    /// Whether it should be running (`disabled` and `tend ctl stop` clear it).
    pub want_up: bool,
    /// Credentials.
    pub ids: Option<Ids>,
    /// Environment changes: `env/` plus `NOTIFY_SOCKET`.
    pub env: Vec<(String, Option<std::ffi::OsString>)>,
}

impl Svc {
    /// A service that has not run yet; `disabled` ones wait for `tend ctl start`.
    pub fn new(
        def: ServiceDef,
        out: OwnedFd,
        err: OwnedFd,
        stats: Arc<SinkStats>,
        notify: Option<OwnedFd>,
        ids: Option<Ids>,
        env: Vec<(String, Option<std::ffi::OsString>)>,
    ) -> Svc {
        Svc {
            conf: conf_of(&def),
            want_up: !def.disabled,
            def,
            m: Machine::new(),
            out,
            err,
            stats,
            ready_pipe: None,
            notify,
            ids,
            env,
        }
    }

    /// True for a oneshot.
    pub fn is_oneshot(&self) -> bool {
        self.conf.oneshot
    }

    /// True while one of its processes runs.
    pub fn active(&self) -> bool {
        self.m.active()
    }

    /// Ready for dependents: a ready longrun or a oneshot whose `up` succeeded.
    pub fn satisfies_dependents(&self) -> bool {
        self.m.satisfies_dependents(&self.conf)
    }

    /// The state as `tend ctl status` shows it (down, starting, up, ready, failed, …).
    pub fn state_name(&self) -> &'static str {
        self.m.name(&self.conf)
    }
}

/// The part of a definition the state machine needs.
fn conf_of(def: &ServiceDef) -> Conf {
    let (oneshot, has_finish, has_down) = match &def.kind {
        Kind::Longrun { finish, .. } => (false, finish.is_some(), false),
        Kind::Oneshot { down, .. } => (true, false, down.is_some()),
    };
    Conf {
        name: def.name.clone(),
        oneshot,
        ready_by: match def.readiness {
            Readiness::None => ReadyBy::Start,
            Readiness::Fd(n) => ReadyBy::Fd(n),
            Readiness::Systemd => ReadyBy::Systemd,
            Readiness::Check(_) => ReadyBy::Check,
        },
        has_finish,
        has_down,
        policy: def.policy,
    }
}
