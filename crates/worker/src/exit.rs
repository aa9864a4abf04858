//! `baton-worker`'s exit codes, decided here and nowhere else (nextest's `exit_codes.rs`):
//! `main` and the box relay return them, tests and supervisors compare against them.

/// Stopped cleanly: a signal, running tasks finished or handed back.
pub const SUCCESS: u8 = 0;
/// The worker failed to start (Redis, a folder, the sandbox) or failed while running; the
/// error and its causes are on stderr.
pub const FAILED: u8 = 1;
/// The settings were refused: a flag that does not parse, or flags that do not go together
/// ([`crate::Config::check`]). The same code clap gives a usage error.
pub const BAD_SETTINGS: u8 = 2;

/// The box relay was started with arguments it cannot use, or could not set itself up (it
/// otherwise exits with the program's own status).
pub const RELAY_BAD_START: u8 = 2;
/// The box relay could not start the program it was to run (the shell's "not found").
pub const RELAY_NOT_FOUND: u8 = 127;
/// The program in the box ended by a signal, or with a status outside 0-255.
pub const RELAY_PROGRAM_KILLED: u8 = 1;

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn a_refused_flag_exits_with_bad_settings() {
        let e = crate::Config::try_parse_from(["baton-worker", "--concurrency", "x"]).unwrap_err();
        assert_eq!(e.exit_code(), i32::from(super::BAD_SETTINGS));
    }
}
