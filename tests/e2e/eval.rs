//! `baton eval` end to end: a small suite (one project per language from eval/projects) runs
//! in every arm through the pool the command starts itself (redis-server, two worker machines,
//! the real CLI against the stand-in with the suite's answer keys), and each plan's branch is
//! checked with the real toolchains. Offline, the figures measure the harness, not a model: what
//! these tests show is that each arm gives the model the context it promises (the stand-in
//! fills an earlier task's name only from the conversation it received), and that the report's
//! figures are the toolchains' own findings, added up.

use std::path::Path;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use baton_eval::arm::Arm;
use baton_eval::check::{ErrorClass, Language};
use baton_eval::report::{PlanRun, Report};
use baton_tests::{bin, claude_bin, repo_root, TempDir};

/// One project per language: enough to run every arm and every toolchain in a few minutes.
const PROJECTS: &str = "ts-notebook,py-stockroom,rs-ledger";

fn eval(args: &[&str], out: &Path) -> Result<std::process::Output> {
    let tools = repo_root().join(".tools/eval");
    let output = Command::new(bin("baton"))
        .arg("eval")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--tools-dir")
        .arg(&tools)
        .current_dir(repo_root())
        .env("BATON_CLAUDE_BIN", claude_bin())
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .context("running baton eval")?;
    Ok(output)
}

fn counted(p: &PlanRun, class: ErrorClass) -> u32 {
    let c = p.checked.as_ref().expect("checked");
    u32::try_from(c.errors.iter().filter(|d| d.class == class).count()).unwrap_or(u32::MAX)
}

/// Every arm, one project per language: the session and handoff arms leave code that compiles
/// and passes its tests, the isolated arm the missing imports and broken references a model
/// without context makes; the figures add up from the diagnostics the toolchains printed.
#[tokio::test(flavor = "multi_thread")]
async fn every_arm_runs_and_the_report_adds_up_the_toolchains_findings() -> Result<()> {
    let dir = TempDir::new("eval");
    let out = dir.path().join("run");
    let o = eval(
        &["--offline", "--projects", PROJECTS, "--timeout", "10m"],
        &out,
    )?;
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    ensure!(o.status.success(), "baton eval failed:\n{stdout}\n{stderr}");
    // The tables are printed; the files are written.
    assert!(
        stdout.contains("80% reduction in missing import errors"),
        "{stdout}"
    );
    assert!(stdout.contains("| session | all |"), "{stdout}");
    let report: Report = serde_json::from_slice(&std::fs::read(out.join("report.json"))?)?;
    let svg = std::fs::read_to_string(out.join("errors.svg"))?;
    assert!(svg.starts_with("<svg") && svg.contains("isolated") && svg.contains("handoff"));
    assert!(std::fs::read_to_string(out.join("report.md"))?.contains("## Plans"));
    assert!(report.offline);
    assert_eq!(report.arms, Arm::ALL.to_vec());
    assert_eq!(report.plans.len(), 12, "3 projects in 4 arms");

    for p in &report.plans {
        assert_eq!(p.state, "completed", "{}: {p:?}", p.plan_id);
        assert_eq!(p.tasks_done, p.tasks, "{}", p.plan_id);
        let c = p
            .checked
            .as_ref()
            .with_context(|| format!("{} was not checked: {:?}", p.plan_id, p.check_error))?;
        // Each class's count is the number of diagnostics of that class the tools printed.
        assert_eq!(
            c.counts.missing_import,
            counted(p, ErrorClass::MissingImport)
        );
        assert_eq!(
            c.counts.cross_reference,
            counted(p, ErrorClass::CrossReference)
        );
        assert_eq!(c.counts.other, counted(p, ErrorClass::Other));
        if matches!(p.arm, Arm::Session | Arm::Handoff) {
            assert!(
                p.clean(),
                "{} holds one conversation: {:#?}",
                p.plan_id,
                c.errors
            );
            assert!(
                c.tests.ran && c.tests.passed > 0 && c.tests.failed == 0,
                "{:?}",
                c.tests
            );
            assert_eq!(
                p.resumes_ok,
                p.tasks - 1,
                "{}: every later task resumed",
                p.plan_id
            );
        }
        if p.arm == Arm::Handoff {
            assert_eq!(
                p.handoffs,
                p.tasks - 1,
                "{}: every task on the other machine",
                p.plan_id
            );
        }
    }
    let isolated: Vec<&PlanRun> = report
        .plans
        .iter()
        .filter(|p| p.arm == Arm::Isolated)
        .collect();
    let missing: u32 = isolated
        .iter()
        .map(|p| counted(p, ErrorClass::MissingImport))
        .sum();
    assert!(
        missing > 0,
        "without context the stand-in guesses names that no file provides"
    );
    // The toolchains' own words: a TypeScript project without context fails on an import.
    let ts = isolated
        .iter()
        .find(|p| p.language == Language::Typescript)
        .expect("ts");
    let diags = &ts.checked.as_ref().expect("checked").errors;
    assert!(
        diags
            .iter()
            .any(|d| d.tool == "tsc" && d.code.starts_with("TS") && d.class != ErrorClass::Other),
        "{diags:#?}"
    );

    // The figures are those of the plans: the session arm against isolated.
    let session = report.overall(Arm::Session).expect("session summary");
    let iso = report.overall(Arm::Isolated).expect("isolated summary");
    assert_eq!(session.references_correct, Some(1.0));
    assert_eq!(session.errors_per_project.map(|e| e.total()), Some(0.0));
    let reduction = session.missing_import_reduction.expect("a reduction");
    assert_eq!(
        reduction.mean, 1.0,
        "no missing import left with the conversation"
    );
    assert!(reduction.low.is_none(), "one repeat: no interval");
    let mean_missing = f64::from(missing) / 3.0;
    let iso_missing = iso.errors_per_project.expect("checked").missing_import;
    assert!((iso_missing - mean_missing).abs() < 1e-9);
    assert_eq!(session.resume_success, Some(1.0));
    assert_eq!(
        report.overall(Arm::Handoff).and_then(|s| s.handoff_share),
        Some(1.0)
    );
    // The recap arm starts every task afresh: nothing to resume, and what it leaves is checked.
    let recap = report.overall(Arm::Recap).expect("recap summary");
    assert_eq!((recap.completed, recap.checked), (3, 3));
    assert_eq!(recap.resume_success, None);
    let met: Vec<_> = report
        .criteria
        .iter()
        .map(|c| (c.criterion.as_str(), c.met))
        .collect();
    assert_eq!(met[0].1, Some(true), "{met:?}");
    assert_eq!(met[1].1, Some(true), "{met:?}");

    // --compare sets two reports side by side.
    let copy = dir.path().join("copy.json");
    std::fs::copy(out.join("report.json"), &copy)?;
    let o = Command::new(bin("baton"))
        .args(["eval", "--compare"])
        .arg(out.join("report.json"))
        .arg(&copy)
        .output()?;
    let cmp = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{cmp}");
    assert!(
        cmp.contains("| session | all |") && cmp.contains("(A) against"),
        "{cmp}"
    );
    Ok(())
}

/// Bad input is named: an unknown arm, an unknown project, a file that is not a report.
#[test]
fn bad_arguments_are_named() -> Result<()> {
    let dir = TempDir::new("eval-bad");
    let run = |args: &[&str]| -> Result<(i32, String)> {
        let o = Command::new(bin("baton"))
            .arg("eval")
            .args(args)
            .current_dir(repo_root())
            .output()?;
        Ok((
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ))
    };
    let (code, err) = run(&["--arms", "session,both"])?;
    assert_eq!(code, 2);
    assert!(err.contains("unknown arm \"both\""), "{err}");
    let (code, err) = run(&[
        "--projects",
        "nope",
        "--out",
        &dir.path().display().to_string(),
    ])?;
    assert_eq!(code, 2);
    assert!(err.contains("no project named nope"), "{err}");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{}")?;
    let j = junk.display().to_string();
    let (code, err) = run(&["--compare", &j, &j])?;
    assert_eq!(code, 2);
    assert!(err.contains("not a baton eval report"), "{err}");
    Ok(())
}

/// `--use-pool`: the suite runs in the user's pool, on its own workers (here one worker whose
/// stand-in serves the suite's answer keys, and which allows the eval's remotes folder), and
/// what the plans leave is checked as in a pool of the eval's own. The handoff arm, which needs
/// workers the eval can stop, is refused there.
#[tokio::test(flavor = "multi_thread")]
async fn the_suite_runs_in_the_users_pool() -> Result<()> {
    let answers = repo_root().join("eval/projects");
    let standin = baton_tests::Standin::start_with(&["--answers", &answers.display().to_string()])?;
    let mut pool =
        baton_tests::Pool::start_with(baton_tests::redis_server::Redis::start()?, standin)?;
    let out = pool.dir.path().join("eval-out");
    std::fs::create_dir_all(out.join("remotes"))?;
    let mut machine = pool.machine("a", 2);
    machine.extra.extend([
        "--repo-allow-path".into(),
        out.join("remotes").display().to_string(),
    ]);
    pool.add_worker(&machine)?;
    let tools = repo_root().join(".tools/eval");
    let url = pool.redis.url();
    let suite = repo_root().join("eval").display().to_string();
    let (out_s, tools_s) = (out.display().to_string(), tools.display().to_string());
    let eval_in_pool = |arms: &str| {
        let mut a = vec!["eval", "--use-pool", "--offline", "--suite", &suite];
        a.extend(["--projects", "py-recipes,rs-shapes", "--arms", arms]);
        a.extend(["--out", &out_s, "--tools-dir", &tools_s, "--timeout", "5m"]);
        baton_tests::baton_at(&url, &a, None)
    };
    let refused = eval_in_pool("session,handoff")?;
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(baton_producer::exit::BAD_INPUT.into()),
        "{err}"
    );
    assert!(err.contains("the handoff arm needs workers"), "{err}");
    let o = eval_in_pool("session,isolated")?;
    ensure!(
        o.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
        pool.log_tail()
    );
    let report: Report = serde_json::from_slice(&std::fs::read(out.join("report.json"))?)?;
    assert_eq!(report.plans.len(), 4);
    for p in &report.plans {
        assert_eq!(p.state, "completed", "{p:?}");
        assert!(p.checked.is_some(), "{p:?}");
        if p.arm == Arm::Session {
            assert!(p.clean(), "{p:?}");
        }
    }
    // py-recipes without context reads its data file at a guessed path: only its tests fail.
    let recipes = report
        .plans
        .iter()
        .find(|p| p.arm == Arm::Isolated && p.project == "py-recipes")
        .expect("py-recipes, isolated");
    let c = recipes.checked.as_ref().expect("checked");
    assert_eq!(
        c.counts.missing_import + c.counts.cross_reference + c.counts.other,
        0,
        "{c:?}"
    );
    assert!(c.tests.ran && c.tests.failed > 0, "{:?}", c.tests);
    assert!(report
        .plans
        .iter()
        .all(|p| p.plan_id.starts_with(&format!("eval-{}-", report.run))));
    Ok(())
}

/// Every project of the suite, as one conversation leaves it (`baton-standin render --knowing
/// all`), compiles and passes its own tests with the real toolchains; as tasks without context
/// leave it (`--knowing none`), the checkers find something wrong. Each has 4 to 8 tasks, and
/// each language 4 projects.
#[tokio::test(flavor = "multi_thread")]
async fn every_suite_project_is_clean_with_context_and_broken_without() -> Result<()> {
    use baton_eval::check::Toolchains;
    use baton_eval::suite::{Suite, TASKS_PER_PROJECT};
    let suite = Suite::load(&repo_root().join("eval"))?;
    for l in [Language::Typescript, Language::Python, Language::Rust] {
        let n = suite.projects.iter().filter(|p| p.language == l).count();
        assert_eq!(n, 4, "{l:?}");
    }
    let tools = Toolchains::install(&repo_root().join(".tools/eval"), &suite.languages()).await?;
    let dir = TempDir::new("eval-render");
    let answers = repo_root().join("eval/projects");
    for p in &suite.projects {
        assert!(
            TASKS_PER_PROJECT.contains(&p.tasks.len()),
            "{}: {} tasks",
            p.name,
            p.tasks.len()
        );
        for knowing in ["all", "none"] {
            let tree = dir.path().join(format!("{}-{knowing}", p.name));
            let o = Command::new(bin("baton-standin"))
                .args(["render", "--project", &p.name, "--knowing", knowing])
                .arg("--answers")
                .arg(&answers)
                .arg("--out")
                .arg(&tree)
                .output()?;
            ensure!(
                o.status.success(),
                "render {}: {}",
                p.name,
                String::from_utf8_lossy(&o.stderr)
            );
            let work = dir.path().join(format!("work-{}-{knowing}", p.name));
            std::fs::create_dir_all(&work)?;
            let c = tools.check(p.language, &tree, &p.check, &work).await?;
            let k = c.counts;
            let errors = k.missing_import + k.cross_reference + k.other + k.failing_tests;
            if knowing == "all" {
                assert_eq!(errors, 0, "{} with every fact: {:#?}", p.name, c.errors);
                assert!(
                    c.tests.ran && c.tests.passed > 0,
                    "{}: {:?}",
                    p.name,
                    c.tests
                );
            } else {
                assert!(errors > 0, "{} without context breaks somewhere", p.name);
            }
        }
    }
    Ok(())
}

/// A pool whose workers refuse the eval's plans (here: local remotes not allowed) stops the
/// run at once with the dead letter's field and reason, not at the end of --timeout.
#[tokio::test(flavor = "multi_thread")]
async fn a_pool_that_refuses_the_plans_says_why_at_once() -> Result<()> {
    let mut pool = baton_tests::Pool::start()?;
    let mut machine = pool.machine("a", 1);
    machine
        .extra
        .retain(|a| !a.contains("remotes") && a != "--repo-allow-path");
    pool.add_worker(&machine)?;
    let dir = TempDir::new("eval-refused");
    let (suite, out) = (
        repo_root().join("eval").display().to_string(),
        dir.path().join("out").display().to_string(),
    );
    let tools = repo_root().join(".tools/eval").display().to_string();
    let began = std::time::Instant::now();
    let o = baton_tests::baton_at(
        &pool.redis.url(),
        &[
            "eval",
            "--use-pool",
            "--offline",
            "--suite",
            &suite,
            "--projects",
            "rs-shapes",
        ]
        .into_iter()
        .chain(["--arms", "session", "--out", &out, "--timeout", "5m"])
        .chain(["--tools-dir", &tools])
        .collect::<Vec<_>>(),
        None,
    )?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains("the pool refused plan eval-") && err.contains("repo.url"),
        "{err}"
    );
    assert!(!err.contains("repo.url: repo.url"), "the field once: {err}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(120),
        "not at the deadline"
    );
    Ok(())
}
