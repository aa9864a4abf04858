//! The first program inside a box: `baton-worker __baton-box-relay PORT SOCKET PROGRAM ARGS...`.
//!
//! The box has no network but a loopback of its own, so the CLI cannot reach the worker's
//! gateway by TCP. The relay listens on `127.0.0.1:PORT` inside the box, forwards every
//! connection to the gateway's unix socket (bound into the box), and runs the program with the
//! box's stdin, stdout and stderr; it exits with the program's status. SIGTERM and SIGINT are
//! passed on to the program. What the relay carries is only what the gateway accepts: model
//! calls with the hold's token, and CONNECT to the operator's allowed hosts.

use std::ffi::OsString;
use std::process::ExitCode;

use tokio::net::{TcpListener, UnixStream};

use crate::exit;

/// Runs the relay with `args` (after [`super::RELAY_ARG`]); returns the program's exit code.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let mut args = args.into_iter();
    let (Some(port), Some(socket), Some(program)) = (args.next(), args.next(), args.next()) else {
        eprintln!(
            "baton box relay: usage: {} PORT SOCKET PROGRAM [ARGS...]",
            super::RELAY_ARG
        );
        return ExitCode::from(exit::RELAY_BAD_START);
    };
    let Some(port) = port.to_str().and_then(|p| p.parse::<u16>().ok()) else {
        eprintln!("baton box relay: PORT must be a port number");
        return ExitCode::from(exit::RELAY_BAD_START);
    };
    let rest: Vec<OsString> = args.collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("baton box relay: cannot start: {e}");
            return ExitCode::from(exit::RELAY_BAD_START);
        }
    };
    runtime.block_on(relay(port, socket, program, rest))
}

async fn relay(port: u16, socket: OsString, program: OsString, args: Vec<OsString>) -> ExitCode {
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("baton box relay: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(exit::RELAY_BAD_START);
        }
    };
    let socket = std::path::PathBuf::from(socket);
    // The accept loop ends with the process: the box ends when the program does.
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            // Small writes (a request's headers, then its body) must not wait ~40 ms for the
            // peer's delayed ACK.
            let _ = tcp.set_nodelay(true);
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    let mut child = match tokio::process::Command::new(&program).args(&args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "baton box relay: cannot start {}: {e}",
                std::path::Path::new(&program).display()
            );
            return ExitCode::from(exit::RELAY_NOT_FOUND);
        }
    };
    let status = forward_signals_until_exit(&mut child).await;
    match status.and_then(|s| s.code()) {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(exit::RELAY_PROGRAM_KILLED)),
        None => ExitCode::from(exit::RELAY_PROGRAM_KILLED),
    }
}

/// Waits for `child`, passing SIGTERM and SIGINT on to it.
async fn forward_signals_until_exit(
    child: &mut tokio::process::Child,
) -> Option<std::process::ExitStatus> {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return child.wait().await.ok();
    };
    loop {
        tokio::select! {
            s = child.wait() => return s.ok(),
            _ = term.recv() => send(child, libc::SIGTERM),
            _ = int.recv() => send(child, libc::SIGINT),
        }
    }
}

#[expect(
    unsafe_code,
    reason = "kill(2) on our own child; libc has no safe wrapper"
)]
fn send(child: &tokio::process::Child, sig: i32) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) touches no memory of ours; the pid is our child's, not yet reaped
        // (`wait` has not returned).
        unsafe {
            libc::kill(pid, sig);
        }
    }
}
