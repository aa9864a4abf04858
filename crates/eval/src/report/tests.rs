use super::*;
use crate::check::{Checked, Counts, TestRun};

fn run(arm: Arm, repeat: u32, project: &str, missing: u32, cross: u32, ms: u64) -> PlanRun {
    PlanRun {
        arm,
        repeat,
        project: project.into(),
        language: if project.starts_with("ts") {
            Language::Typescript
        } else {
            Language::Rust
        },
        plan_id: format!("{arm}-{repeat}-{project}"),
        state: "completed".into(),
        tasks: 4,
        tasks_done: 4,
        task_ms: vec![ms; 4],
        cost_usd: 0.04,
        resumes_attempted: if arm.resumes() { 3 } else { 0 },
        resumes_ok: if arm.resumes() { 3 } else { 0 },
        handoffs: if arm == Arm::Handoff { 3 } else { 0 },
        checked: Some(Checked {
            errors: Vec::new(),
            tests: TestRun {
                ran: true,
                passed: 2,
                failed: 0,
                output_tail: String::new(),
            },
            counts: Counts {
                missing_import: missing,
                cross_reference: cross,
                other: 0,
                failing_tests: 0,
            },
        }),
        check_error: None,
    }
}

fn head(arms: Vec<Arm>, repeat: u32) -> ReportHead {
    ReportHead {
        run: "t".into(),
        started_at: "2026-12-02T00:00:00Z".into(),
        model: "stand-in".into(),
        offline: true,
        session_mode: "warm".into(),
        rotate_at_tokens: None,
        repeat,
        arms,
        wall_secs: 1.0,
    }
}

#[test]
fn figures_add_up_per_arm_and_the_reduction_has_an_interval_over_repeats() {
    // Two repeats: isolated has 4 then 2 missing imports, session 1 then 0.
    let plans = vec![
        run(Arm::Isolated, 0, "ts-a", 3, 1, 1000),
        run(Arm::Isolated, 0, "rs-b", 1, 0, 1000),
        run(Arm::Isolated, 1, "ts-a", 2, 0, 1000),
        run(Arm::Isolated, 1, "rs-b", 0, 2, 1000),
        run(Arm::Session, 0, "ts-a", 1, 0, 1020),
        run(Arm::Session, 0, "rs-b", 0, 0, 1020),
        run(Arm::Session, 1, "ts-a", 0, 0, 1020),
        run(Arm::Session, 1, "rs-b", 0, 0, 1020),
    ];
    let r = Report::new(head(vec![Arm::Session, Arm::Isolated], 2), plans);
    let s = r.overall(Arm::Session).unwrap();
    let i = r.overall(Arm::Isolated).unwrap();
    let ie = i.errors_per_project.unwrap();
    assert_eq!(ie.missing_import, 1.5);
    assert_eq!(ie.cross_reference, 0.75);
    assert_eq!(s.references_correct, Some(0.75));
    assert_eq!(i.references_correct, Some(0.0));
    // Reductions 1 - 1/4 = 0.75 and 1 - 0/2 = 1: mean 0.875, t(1) interval.
    let e = s.missing_import_reduction.unwrap();
    assert!((e.mean - 0.875).abs() < 1e-9);
    let half = 12.706 * (0.03125f64 / 2.0).sqrt();
    assert!((e.high.unwrap() - (0.875 + half)).abs() < 1e-9);
    assert!(i.missing_import_reduction.is_none());
    assert_eq!(s.resume_success, Some(1.0));
    assert_eq!(i.resume_success, None);
    assert_eq!(s.usd_per_task, Some(0.01));
    // Per language too.
    let ts = r
        .summaries
        .iter()
        .find(|x| x.arm == Arm::Session && x.language == Some(Language::Typescript))
        .unwrap();
    assert_eq!(ts.plans, 2);
    assert_eq!(ts.errors_per_project.unwrap().missing_import, 0.5);
    // The criteria: 87.5% >= 80%; 75% < 90%; the overhead is the benchmark's; 100% resumes.
    let met: Vec<Option<bool>> = r.criteria.iter().map(|c| c.met).collect();
    assert_eq!(met, vec![Some(true), Some(false), None, Some(true)]);
    assert!(
        r.criteria[2].measured.contains("1.0 s in one conversation"),
        "{}",
        r.criteria[2].measured
    );
    assert!(r.criteria[0].measured.contains("2 repeats"));
}

#[test]
fn the_report_reads_back_and_renders() {
    let plans = vec![
        run(Arm::Isolated, 0, "ts-a", 3, 1, 1000),
        run(Arm::Session, 0, "ts-a", 0, 0, 900),
        run(Arm::Handoff, 0, "ts-a", 0, 0, 950),
    ];
    let r = Report::new(
        head(vec![Arm::Session, Arm::Isolated, Arm::Handoff], 1),
        plans,
    );
    let json = serde_json::to_string(&r).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    let md = markdown(&r);
    assert!(md.contains("| session | all | 1/1 | 0.00 | 0.00 |"), "{md}");
    assert!(
        md.contains("| isolated | all | 1/1 | 3.00 | 1.00 |"),
        "{md}"
    );
    assert!(md.contains("measure the harness, not a model"));
    assert!(md.contains("(1 repeat: no interval)"));
    let svg = chart_svg(&r).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("handoff") && svg.contains("missing imports"));
    // Without the isolated arm nothing is compared, and says so.
    let alone = Report::new(
        head(vec![Arm::Session], 1),
        vec![run(Arm::Session, 0, "ts-a", 0, 0, 9)],
    );
    assert_eq!(alone.criteria[0].met, None);
    assert!(alone.criteria[0].measured.starts_with("not measured"));
    let cmp = compare_markdown(&r, &alone);
    assert!(cmp.contains("| isolated | all | 4.00 | – |"), "{cmp}");
}
