//! PID-1 duties: reaping, signal intake, child subreaper, the final kill sweep.
