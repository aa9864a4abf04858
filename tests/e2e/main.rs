//! End-to-end tests: real redis-server, real baton workers, the real Claude CLI against the
//! model stand-in; and the scripts on their own against a real redis-server (`scripts`). One
//! test binary (link time dominates on small machines), one module per area.

mod client;
mod clients;
mod controls;
mod dashboard;
mod deploy;
mod faults;
mod foundation;
mod git;
mod isolation;
mod modes;
mod operate;
mod reliability;
mod scale;
mod scripts;
mod sessions;
