//! The spare section's tables (`spare.rs`): every round's runs, one line each.

use super::{Cold, Marks, Spare, IDLE, SETTLE};

/// Every round's runs.
#[derive(Default)]
pub(super) struct Runs {
    pub(super) cold: Vec<Cold>,
    pub(super) spare: Vec<Spare>,
    pub(super) cold_marks: Vec<Marks>,
    pub(super) warm_marks: Vec<Marks>,
    /// The cold runs with `--session-mirror`.
    pub(super) mirror_cold: Vec<Cold>,
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "–".to_owned()
    } else {
        format!("{v:.1} ms")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

impl Runs {
    pub(super) fn col<T>(v: &[T], f: impl Fn(&T) -> f64) -> Vec<f64> {
        v.iter().map(f).collect()
    }

    pub(super) fn print_first_task(&self) {
        println!("| round | cold: spawn → result | cold: result → exit | cold CPU | spare: claim → ok | spare: claim → result | spare: result → exit | spare CPU from the claim | spare / cold (to result) |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (r, (c, s)) in self.cold.iter().zip(&self.spare).enumerate() {
            println!(
                "| {} | {} | {} | {:.2} s | {} | {} | {} | {:.2} s | {:.3} |",
                r + 1,
                ms(c.to_result),
                ms(c.to_exit),
                c.cpu,
                ms(s.claim_ok),
                ms(s.to_result),
                ms(s.to_exit),
                s.cpu_from_claim,
                s.to_result / c.to_result
            );
        }
    }

    pub(super) fn print_idle(&self) {
        println!("| round | spawn → ready (`stdin_listen_started`) | CPU to start (at ready + {}s) | CPU while parked {} s | RSS | of which anonymous | Pss | model requests while parked |", SETTLE.as_secs(), IDLE.as_secs());
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (r, s) in self.spare.iter().enumerate() {
            println!(
                "| {} | {} | {:.2} s | {:.2} s | {} | {} | {} | {} |",
                r + 1,
                ms(s.ready),
                s.start_cpu,
                s.idle_cpu,
                mib(s.mem.rss),
                mib(s.mem.anon),
                mib(s.mem.pss),
                s.parked_requests
            );
        }
    }

    pub(super) fn print_mirror(&self) {
        println!("| round | cold: file holds the last message | cold: frame carries it | cold: `cost-state` in the file | cold: `cost-state` frame | cold: exit | warm turn: file holds the last message | warm turn: frame | warm close → `cost-state` frame | warm close → exit |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (r, (c, w)) in self.cold_marks.iter().zip(&self.warm_marks).enumerate() {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r + 1,
                ms(c.file_msg),
                ms(c.frame_msg),
                ms(c.file_cost),
                ms(c.frame_cost),
                ms(c.exit),
                ms(w.file_msg),
                ms(w.frame_msg),
                ms(w.frame_cost),
                ms(w.exit)
            );
        }
    }
}
