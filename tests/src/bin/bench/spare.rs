//! The spare-CLI section of the benchmark (issue 21, part 3): what a CLI started ahead of its
//! plan saves on the plan's first task, what it costs while it waits, and whether the CLI's
//! own transcript stream removes a wait. The pinned CLI has two undocumented flags for this:
//! `--await-claim` (a process that boots, parks, and waits for a `claim_session` control
//! request that binds it to a working directory) and `--session-mirror` (a
//! `transcript_mirror` frame on stdout after each transcript write).
//!
//! The worker uses neither yet, so this section runs the CLI itself, without a box, with the
//! command line and environment the worker builds for a new session, against the stand-in.
//! Each round, interleaved: (a) a cold `claude -p` (spawn → `result`, CPU), (b) a spare
//! started beforehand (start-up CPU, memory and CPU while parked, then claim → `result`),
//! (c) a cold run and a warm process with `--session-mirror`, where the transcript file is
//! watched: when the file holds the turn's last message, when a frame carries it, and when the
//! `cost-state` line the CLI appends after `result` arrives, against the process's exit.
//!
//! Called from `bench.rs` as `bench.spare().await?` (`--only spare`).

#[path = "spare_box.rs"]
mod boxed;
#[path = "spare_cli.rs"]
mod cli;
#[path = "spare_table.rs"]
mod table;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use baton_tests::{Standin, TempDir};
use serde_json::{json, Value};

use super::{percentile, Bench};
use cli::{args, cpu_of, memory, Cli, Kind, Memory, Place, Watch};
use table::Runs;

const ROUNDS: usize = 6;
/// How long a spare gets after its `stdin_listen_started` mark before its start-up CPU is read.
const SETTLE: Duration = Duration::from_secs(2);
/// How long a spare is left parked while its idle CPU is measured.
const IDLE: Duration = Duration::from_secs(10);
const WITHIN: Duration = Duration::from_secs(60);
const PROMPT: &str = "Step 1: reply with one short sentence.";

/// Milliseconds from `base` to `t` (negative when `t` came first).
fn rel(t: Instant, base: Instant) -> f64 {
    match t.checked_duration_since(base) {
        Some(d) => d.as_secs_f64() * 1000.0,
        None => -(base - t).as_secs_f64() * 1000.0,
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "**no**"
    }
}

fn user(text: &str) -> Value {
    json!({"type": "user", "message": {"role": "user", "content": text}})
}

fn is_type(v: &Value, t: &str) -> bool {
    v["type"] == t
}

/// The `result` line, checked: a success.
fn success(v: &Value) -> Result<()> {
    ensure!(
        v["subtype"] == "success" && v["is_error"] == false,
        "the run failed: {v}"
    );
    Ok(())
}

/// The `uuid` of the last `assistant` line of the log after `from`.
fn last_assistant(log: &[(Instant, Value)], from: Instant) -> Option<String> {
    log.iter()
        .filter(|(at, v)| *at >= from && is_type(v, "assistant"))
        .filter_map(|(_, v)| v["uuid"].as_str().map(str::to_owned))
        .next_back()
}

/// A cold run: spawn → `result` and `result` → exit (ms), and its CPU seconds.
struct Cold {
    to_result: f64,
    to_exit: f64,
    cpu: f64,
}

/// When the turn's last message and the `cost-state` line reached the transcript file and the
/// mirror, and the exit, in ms from a base (the `result` line, or stdin closed).
#[derive(Default)]
struct Marks {
    file_msg: f64,
    frame_msg: f64,
    file_cost: f64,
    frame_cost: f64,
    exit: f64,
}

impl Marks {
    /// The marks found in a run's stdout `log` and transcript `file` lines for message `uuid`,
    /// the message marks from `msg_base`, the others from `end_base`.
    fn find(
        log: &[(Instant, Value)],
        file: &[(Instant, String)],
        uuid: &str,
        (msg_base, end_base, exit): (Instant, Instant, Instant),
    ) -> Self {
        let in_file = |needle: &str, base: Instant| {
            file.iter()
                .find(|(_, l)| l.contains(needle))
                .map_or(f64::NAN, |(at, _)| rel(*at, base))
        };
        let in_frame = |pred: &dyn Fn(&Value) -> bool, base: Instant| {
            log.iter()
                .find(|(_, v)| {
                    is_type(v, "transcript_mirror")
                        && v["entries"].as_array().is_some_and(|e| e.iter().any(pred))
                })
                .map_or(f64::NAN, |(at, _)| rel(*at, base))
        };
        Self {
            file_msg: in_file(&format!("\"uuid\":\"{uuid}\""), msg_base),
            frame_msg: in_frame(&|e| e["uuid"] == uuid, msg_base),
            file_cost: in_file("\"type\":\"cost-state\"", end_base),
            frame_cost: in_frame(&|e| is_type(e, "cost-state"), end_base),
            exit: rel(exit, end_base),
        }
    }
}

/// One cold `claude -p` of a new session in a new workspace; with `mirror`, its marks too.
async fn cold(place: &Place, name: &str, mirror: bool) -> Result<(Cold, Marks)> {
    let (ws, id) = (place.workspace(name)?, uuid::Uuid::new_v4().to_string());
    let watch = mirror.then(|| Watch::start(place.transcript(&ws, &id)));
    let mut cli = Cli::spawn(place, &ws, &args(Kind::Cold, &id, mirror), &[])?;
    cli.close(Some(PROMPT)).await?;
    let spawned = cli.spawned;
    let (result_at, result) = cli
        .until("result", |v| is_type(v, "result"), WITHIN)
        .await?;
    success(&result)?;
    let (exit_at, cpu, log) = cli.exit().await?;
    let marks = match watch {
        Some(w) => {
            let file = w.stop();
            let uuid = last_assistant(&log, spawned).unwrap_or_default();
            Marks::find(&log, &file, &uuid, (result_at, result_at, exit_at))
        }
        None => Marks::default(),
    };
    let run = Cold {
        to_result: rel(result_at, spawned),
        to_exit: rel(exit_at, result_at),
        cpu,
    };
    Ok((run, marks))
}

/// A spare: what it cost to start and to keep, then its claimed task.
struct Spare {
    ready: f64,
    start_cpu: f64,
    idle_cpu: f64,
    mem: Memory,
    parked_requests: usize,
    claim_ok: f64,
    to_result: f64,
    to_exit: f64,
    cpu_from_claim: f64,
}

/// Starts a spare in the neutral folder, leaves it parked, then claims it for a new workspace
/// and runs one task. Returns the workspace and session for the resume check.
async fn spare(place: &Place, standin: &Standin, name: &str) -> Result<(Spare, String, String)> {
    let (ws, id) = (place.workspace(name)?, uuid::Uuid::new_v4().to_string());
    let requests_before = standin.requests()?.len();
    let marks = [("CLAUDE_CODE_SDK_READS_STARTUP_MARKS", "1")];
    let mut cli = Cli::spawn(place, &place.park, &args(Kind::Spare, &id, false), &marks)?;
    let spawned = cli.spawned;
    let listening = |v: &Value| v["startup_mark"] == "stdin_listen_started";
    let (ready_at, _) = cli
        .until("the stdin_listen_started mark", listening, WITHIN)
        .await?;
    tokio::time::sleep(SETTLE).await;
    let pid = cli.pid()?;
    let start_cpu = cpu_of(pid)?;
    tokio::time::sleep(IDLE).await;
    let at_claim = cpu_of(pid)?;
    let mem = memory(pid)?;
    let parked_requests = standin.requests()?.len() - requests_before;
    let claim = json!({"type": "control_request", "request_id": "claim-1",
        "request": {"subtype": "claim_session", "cwd": ws}});
    let claimed = cli.send(&claim).await?;
    let response = |v: &Value| is_type(v, "control_response");
    let (ok_at, ok) = cli.until("the claim's answer", response, WITHIN).await?;
    let answer = &ok["response"];
    ensure!(
        answer["subtype"] == "success" && answer["response"]["session_id"] == id.as_str(),
        "the claim was refused or bound another session: {ok}"
    );
    cli.send(&user(PROMPT)).await?;
    let (result_at, result) = cli
        .until("result", |v| is_type(v, "result"), WITHIN)
        .await?;
    success(&result)?;
    cli.close(None).await?;
    let (exit_at, cpu, _) = cli.exit().await?;
    let transcript = place.transcript(&ws, &id);
    ensure!(
        transcript.is_file(),
        "no transcript at {}",
        transcript.display()
    );
    let run = Spare {
        ready: rel(ready_at, spawned),
        start_cpu,
        idle_cpu: at_claim - start_cpu,
        mem,
        parked_requests,
        claim_ok: rel(ok_at, claimed),
        to_result: rel(result_at, claimed),
        to_exit: rel(exit_at, result_at),
        cpu_from_claim: cpu - at_claim,
    };
    Ok((run, ws.display().to_string(), id))
}

/// A warm process (baton's warm mode) with `--session-mirror`, two turns: the second turn's
/// message marks from its `result`, then the `cost-state` and exit marks from stdin closed.
async fn warm_mirror(place: &Place, name: &str) -> Result<Marks> {
    let (ws, id) = (place.workspace(name)?, uuid::Uuid::new_v4().to_string());
    let watch = Watch::start(place.transcript(&ws, &id));
    let mut cli = Cli::spawn(place, &ws, &args(Kind::Warm, &id, true), &[])?;
    let mut turn = (cli.spawned, cli.spawned);
    for k in 1..=2 {
        let sent = cli
            .send(&user(&format!("Step {k}: reply in one sentence.")))
            .await?;
        let (result_at, result) = cli
            .until("result", |v| is_type(v, "result"), WITHIN)
            .await?;
        success(&result)?;
        turn = (sent, result_at);
    }
    let closed = cli.close(None).await?;
    let (exit_at, _, log) = cli.exit().await?;
    let file = watch.stop();
    let uuid = last_assistant(&log, turn.0).unwrap_or_default();
    Ok(Marks::find(&log, &file, &uuid, (turn.1, closed, exit_at)))
}

/// A cold `--resume` of a claimed spare's session: true when the model got both prompts.
async fn resumes(place: &Place, ws: &str, id: &str) -> Result<bool> {
    let a: Vec<String> = args(Kind::Cold, id, false)
        .into_iter()
        .map(|s| s.replace("--session-id=", "--resume="))
        .collect();
    let mut cli = Cli::spawn(place, std::path::Path::new(ws), &a, &[])?;
    cli.close(Some("Step 2: reply in one sentence.")).await?;
    let (_, result) = cli
        .until("result", |v| is_type(v, "result"), WITHIN)
        .await?;
    cli.exit().await?;
    success(&result)?;
    // The stand-in's answer counts the prompts the request carried.
    Ok(result["result"]
        .as_str()
        .is_some_and(|t| t.contains("holds 2 prompt")))
}

impl Bench {
    pub(super) async fn spare(&mut self) -> Result<()> {
        println!("\n## Spare CLI: a CLI started before its plan (`--await-claim`), and the CLI's own transcript stream (`--session-mirror`)\n");
        println!("{ROUNDS} rounds, interleaved: a cold `claude -p`, a spare, then a cold run and a warm process with `--session-mirror`. The real CLI, run by this benchmark without a box (the worker uses neither flag yet), with the worker's command line for a new session, against the stand-in; one CLI config dir for all runs, a new workspace and session per run.\n");
        let dir = TempDir::new("bench-spare");
        let standin = Standin::start()?;
        let place = Place::new(dir.path(), standin.base_url())?;
        // The first CLI start on a machine pays for cold disk caches: not part of any figure.
        cold(&place, "warmup", false).await?;
        let mut runs = Runs::default();
        let mut last = (String::new(), String::new());
        for round in 1..=ROUNDS {
            runs.cold
                .push(cold(&place, &format!("cold-{round}"), false).await?.0);
            let (s, ws, id) = spare(&place, &standin, &format!("spare-{round}")).await?;
            runs.spare.push(s);
            last = (ws, id);
            let (run, marks) = cold(&place, &format!("mirror-cold-{round}"), true).await?;
            runs.mirror_cold.push(run);
            runs.cold_marks.push(marks);
            let marks = warm_mirror(&place, &format!("mirror-warm-{round}")).await?;
            runs.warm_marks.push(marks);
        }
        println!("### A plan's first task: cold, and with a spare\n");
        runs.print_first_task();
        println!("\n(cold: spawn → `result` line, as baton's cold mode and a direct `claude -p` pay it; the worker then waits for the exit. spare: from the `claim_session` request sent to the spare's `result`, the claim answered before the task's message is sent. CPU: of the whole process, read once it was reaped; for the spare, from the claim on.)\n");
        println!("### What a parked spare costs\n");
        runs.print_idle();
        println!("\n(CPU of the spare's process from `/proc`: everything up to {} s after it said it listens, then the next {} s parked. Anonymous memory is the spare's own; the rest of its RSS is the CLI binary's pages, shared by every CLI process.)\n", SETTLE.as_secs(), IDLE.as_secs());
        println!(
            "### `--session-mirror`: the transcript on stdout against the file and the exit\n"
        );
        runs.print_mirror();
        println!("\n(ms from the `result` line, negative when before it; warm close: from stdin closed. The file is watched every millisecond. A frame's entries are the transcript's lines less the `api-request*` records the file also holds, so a frame is not a byte-for-byte copy of the file.)\n");
        let resumed = resumes(&place, &last.0, &last.1).await?;
        self.spare_summary(&runs, resumed);
        match boxed::check(&place, &dir.path().canonicalize()?).await? {
            Some(b) => println!(
                "\nBox check (bubblewrap, the workspace at a fixed `/workspace` in the box, the network shared instead of relayed): a spare's folders renamed to a plan's after it parked; claimed, it read the plan's file: {}, wrote its file into the plan's folder: {}, its transcript in the plan's project folder: {}; claim → `result` {:.0} ms.",
                yes(b.read_plan_file),
                yes(b.wrote_in_plan),
                yes(b.transcript_in_plan),
                b.to_result
            ),
            None => println!("\nBox check skipped: no bubblewrap here."),
        }
        Ok(())
    }

    fn spare_summary(&mut self, runs: &Runs, resumed: bool) {
        let cold = median(&Runs::col(&runs.cold, |c| c.to_result));
        let spare = median(&Runs::col(&runs.spare, |s| s.to_result));
        let ratio = spare / cold;
        let cold_cpu = median(&Runs::col(&runs.cold, |c| c.cpu));
        let spare_cpu = median(&Runs::col(&runs.spare, |s| s.cpu_from_claim));
        let start_cpu = median(&Runs::col(&runs.spare, |s| s.start_cpu));
        let idle = median(&Runs::col(&runs.spare, |s| s.idle_cpu)) / IDLE.as_secs_f64();
        let anon = median(&Runs::col(&runs.spare, |s| s.mem.anon as f64)) / 1024.0;
        let frame = median(&Runs::col(&runs.cold_marks, |m| m.frame_cost));
        let exit = median(&Runs::col(&runs.cold_marks, |m| m.exit));
        let warm_file = median(&Runs::col(&runs.warm_marks, |m| m.file_msg));
        let warm_frame = median(&Runs::col(&runs.warm_marks, |m| m.frame_msg));
        let mirrored = median(&Runs::col(&runs.mirror_cold, |c| c.to_result));
        let parked = start_cpu + idle * IDLE.as_secs_f64();
        println!(
            "Medians: a first task's `result` {cold:.0} ms after a cold spawn, {spare:.0} ms after a spare's claim (**{ratio:.3}×**, {:.0} ms saved). CPU per first task: {cold_cpu:.2} s cold; with a spare {spare_cpu:.2} s from the claim, plus {start_cpu:.2} s to start it and {:.2}% of a core while it waits ({:.2} s in all for the {} s parked here). A parked spare holds {anon:.0} MiB of its own memory.",
            cold - spare,
            idle * 100.0,
            parked + spare_cpu,
            SETTLE.as_secs() + IDLE.as_secs()
        );
        println!(
            "\nMirror: a cold run's `cost-state` frame came {frame:.1} ms after `result`, its exit {exit:.1} ms after: waiting for the frame instead of the exit would end the cold wait {:.1} ms sooner. A warm turn's frame came {warm_frame:.1} ms and its file line {warm_file:.1} ms from `result` (the file is polled each ms): the file already holds the turn when `result` arrives, so there is no wait to remove. A cold run with `--session-mirror` reached `result` in {mirrored:.0} ms (without: {cold:.0} ms). A cold `--resume` of a claimed spare's session carried its first prompt: {}.",
            exit - frame,
            yes(resumed)
        );
        self.target(
            "spare CLI alone: claim → result against a cold spawn → result",
            "≤ 0.6 (bounds the one-task target)",
            format!("{ratio:.3} ({spare:.0} ms against {cold:.0} ms)"),
            Some(ratio <= 0.6),
        );
    }
}
