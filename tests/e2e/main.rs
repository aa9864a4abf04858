//! End-to-end tests: real redis-server, real baton workers, the real Claude CLI against the
//! model stand-in; and the scripts on their own against a real redis-server (`scripts`). One
//! test binary (link time dominates on small machines), one module per area; `harness` runs
//! one worker in-process with scripted engines for the worker's own behaviours.

mod client;
mod clients;
mod controls;
mod dashboard;
mod deploy;
mod eval;
mod faults;
mod foundation;
mod git;
mod harness;
mod isolation;
mod limits;
mod modes;
mod operate;
mod reliability;
mod scale;
mod schedules;
mod scripts;
mod sessions;
mod spares;
mod traces;
