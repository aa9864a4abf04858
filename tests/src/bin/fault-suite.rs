//! `fault-suite`: runs every fault scenario at full size (50 plans x 5 tasks, 3 workers, the
//! real CLI against the stand-in) and prints the table of docs/RELIABILITY.md. Exit 1 if any
//! row breaks the delivery guarantee. `scripts/faults.sh` runs it; `--ci` runs the CI size.

use baton_tests::faults::{run, Fault, Row, Scale};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ci = std::env::args().any(|a| a == "--ci");
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let scale = if ci { Scale::ci() } else { Scale::full() };
    println!("{}", Row::header());
    let mut failed = false;
    for fault in Fault::ALL {
        if !only.is_empty() && !only.iter().any(|o| fault.name().contains(o.as_str())) {
            continue;
        }
        match run(fault, scale).await {
            Ok(row) => {
                failed |= !row.passed();
                println!("{row}");
            }
            Err(e) => {
                failed = true;
                println!("| {:<32} | error: {e:#} |", fault.name());
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}
