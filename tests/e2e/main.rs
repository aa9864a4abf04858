//! End-to-end tests: real redis-server, real baton workers, the real Claude CLI against the
//! model stand-in. One test binary (link time dominates on small machines), one module per area.

mod faults;
mod foundation;
mod modes;
mod reliability;
mod sessions;
