//! `baton limit` (how many plans of a concurrency key run at once, pool-wide) and `baton
//! budget` (raise a plan's budget, or set a key's daily budget). Limits and daily budgets live
//! in the pool's slot and take effect at the next claim or task; a plan's raised budget is an
//! action document a worker applies (it may also have to schedule the plan).

use baton_core::limits::{check_key, DEFAULT_REPO_KEY, MAX_DAILY_USD, MAX_LIMIT};
use baton_core::scripts::limits::{KeyBudgetSet, SetKeyBudget, SetLimit};
use baton_core::scripts::ScriptCall;
use baton_core::{ActionRequest, PlanAction, PlanId, PlanState};

use crate::{Ctx, Failure};

/// Limit how many plans of one concurrency key run at once across the pool. A plan's key is
/// its `options.concurrency_key`, or `repo:<url>` for a plan with a repository. A claim that
/// meets a plan whose key is at its limit parks it and takes the next plan; the parked plan
/// goes back in line, first, when a plan of its key leaves its worker.
#[derive(clap::Args, Debug)]
pub(crate) struct Limit {
    #[command(subcommand)]
    command: LimitCommand,
}

#[derive(clap::Subcommand, Debug)]
enum LimitCommand {
    /// Set the limit of KEY (or, with --default-repo, of every repo: key without its own).
    Set {
        /// A concurrency key, e.g. team:payments or repo:https://git.example/web.git.
        #[arg(required_unless_present = "default_repo")]
        key: Option<String>,
        /// Plans of the key that may run at once (1-100000).
        limit: Option<u64>,
        /// Set the default for repo: keys instead (the one number given is the limit).
        #[arg(long, conflicts_with = "limit")]
        default_repo: bool,
    },
    /// Remove the limit of KEY (or the repo default): its parked plans go back in line.
    Remove {
        #[arg(required_unless_present = "default_repo")]
        key: Option<String>,
        #[arg(long)]
        default_repo: bool,
    },
    /// List the keys: limit, plans running and waiting, daily budget and spend today.
    List {
        #[arg(long)]
        json: bool,
    },
}

fn key_arg(key: Option<&str>, default_repo: bool) -> Result<String, Failure> {
    if default_repo {
        return Ok(DEFAULT_REPO_KEY.to_owned());
    }
    let key = key.unwrap_or_default();
    check_key(key).map_err(|p| Failure::BadInput(format!("KEY {p}")))?;
    Ok(key.to_owned())
}

impl Limit {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let mut conn = ctx.conn().await?;
        match self.command {
            LimitCommand::Set {
                key,
                limit,
                default_repo,
            } => {
                // With --default-repo the one positional is the limit.
                let (key, limit) = if default_repo {
                    (None, key.as_deref().map(str::parse::<u64>).transpose())
                } else {
                    (key, Ok(limit))
                };
                let n = match limit {
                    Ok(Some(n)) if (1..=MAX_LIMIT).contains(&n) => n,
                    Ok(None) => return Err(Failure::BadInput("LIMIT is missing".into())),
                    _ => {
                        return Err(Failure::BadInput(format!(
                            "LIMIT must be a whole number from 1 to {MAX_LIMIT}"
                        )))
                    }
                };
                let key = key_arg(key.as_deref(), default_repo)?;
                let call = SetLimit {
                    key: &key,
                    limit: Some(n),
                };
                let moved: u64 = call.invocation(&ctx.env).invoke_async(&mut conn).await?;
                println!("limit of {key}: {n} running at once ({moved} waiting plans let go)");
            }
            LimitCommand::Remove { key, default_repo } => {
                let key = key_arg(key.as_deref(), default_repo)?;
                let call = SetLimit {
                    key: &key,
                    limit: None,
                };
                let moved: u64 = call.invocation(&ctx.env).invoke_async(&mut conn).await?;
                println!("limit of {key} removed ({moved} waiting plans let go)");
            }
            LimitCommand::List { json } => {
                let limits = ctx.client().await?.limits().await?;
                if json {
                    let text =
                        serde_json::to_string_pretty(&limits).map_err(anyhow::Error::from)?;
                    println!("{text}");
                } else {
                    print_limits(&limits);
                }
            }
        }
        Ok(())
    }
}

fn print_limits(l: &baton_client::limits::Limits) {
    match l.default_repo_limit {
        Some(n) => println!("default limit of repo: keys: {n}"),
        None => println!("default limit of repo: keys: none"),
    }
    if l.keys.is_empty() {
        println!("no concurrency keys yet");
        return;
    }
    println!(
        "{:<40} {:>7} {:>7} {:>7} {:>12} {:>12}",
        "KEY", "LIMIT", "RUNNING", "WAITING", "BUDGET/DAY", "SPENT TODAY"
    );
    for k in &l.keys {
        let limit = k.limit.map_or("-".into(), |n| {
            if k.default_limit {
                format!("{n}*")
            } else {
                n.to_string()
            }
        });
        let budget = k
            .budget_per_day_usd
            .map_or("-".into(), |b| format!("${b:.2}"));
        println!(
            "{:<40} {:>7} {:>7} {:>7} {:>12} {:>12}",
            k.key,
            limit,
            k.running,
            k.waiting,
            budget,
            format!("${:.4}", k.spent_today_usd)
        );
    }
}

/// Raise a plan's budget (PLAN --usd X): a plan paused because its budget was spent resumes,
/// with its conversation. Or set a concurrency key's budget per UTC day (--key K --per-day
/// USD): once the key's plans have spent it, each is paused before its next task (the task
/// running then finishes) until the next UTC day or until the budget is raised.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["plan", "key"])))]
pub(crate) struct Budget {
    /// The plan id.
    #[arg(requires = "usd")]
    plan: Option<PlanId>,
    /// The plan's new budget in US dollars (above what it has spent).
    #[arg(long, requires = "plan")]
    usd: Option<f64>,
    /// A concurrency key (e.g. team:payments).
    #[arg(long, conflicts_with = "plan")]
    key: Option<String>,
    /// The key's budget per UTC day, in US dollars.
    #[arg(long, requires = "key", conflicts_with = "clear")]
    per_day: Option<f64>,
    /// Remove the key's daily budget.
    #[arg(long, requires = "key")]
    clear: bool,
}

impl Budget {
    pub(crate) async fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        if let Some(key) = &self.key {
            return self.key_budget(ctx, key).await;
        }
        let (Some(plan), Some(usd)) = (self.plan, self.usd) else {
            return Err(Failure::BadInput(
                "give PLAN --usd X, or --key K --per-day USD".into(),
            ));
        };
        if !(usd.is_finite() && usd > 0.0) {
            return Err(Failure::BadInput(
                "--usd must be a positive number of US dollars".into(),
            ));
        }
        let view = ctx.client().await?.plan(&plan).await?;
        let Some(view) = view else {
            return Err(Failure::BadInput(format!(
                "no plan {plan} (never submitted, or past its retention)"
            )));
        };
        let state = view.hash.state;
        let open = [
            PlanState::Queued,
            PlanState::Running,
            PlanState::Paused,
            PlanState::AwaitingReview,
        ];
        if !state.is_some_and(|s| open.contains(&s)) {
            return Err(Failure::BadInput(PlanAction::Budget.refusal(&plan, state)));
        }
        if usd <= view.hash.cost_usd {
            return Err(Failure::BadInput(format!(
                "--usd ${usd:.4} is not above what plan {plan} has spent (${:.4})",
                view.hash.cost_usd
            )));
        }
        let mut action = ActionRequest::new(plan.clone(), PlanAction::Budget);
        action.max_budget_usd = Some(usd);
        let doc = action.to_json();
        crate::enqueue::submit(ctx, &plan, doc.into_bytes(), false, false).await?;
        println!("budget of plan {plan}: ${usd:.4} submitted; a plan paused on its budget resumes");
        Ok(())
    }

    async fn key_budget(&self, ctx: &Ctx, key: &str) -> Result<(), Failure> {
        check_key(key).map_err(|p| Failure::BadInput(format!("--key {p}")))?;
        let per_day = match (self.per_day, self.clear) {
            (_, true) => None,
            (Some(u), false) if u.is_finite() && u > 0.0 && u <= MAX_DAILY_USD => Some(u),
            (Some(_), false) => {
                return Err(Failure::BadInput(format!(
                    "--per-day must be a positive number of US dollars, at most {MAX_DAILY_USD}"
                )))
            }
            (None, false) => return Err(Failure::BadInput("give --per-day USD or --clear".into())),
        };
        let mut conn = ctx.conn().await?;
        let call = SetKeyBudget {
            key,
            per_day_usd: per_day,
        };
        let set: KeyBudgetSet = call.invocation(&ctx.env).invoke_async(&mut conn).await?;
        match per_day {
            Some(u) => println!(
                "budget of {key}: ${u:.2} per UTC day (${:.4} spent today; {} paused plans let go)",
                set.spent_usd, set.resumed
            ),
            None => println!(
                "budget of {key} removed ({} paused plans let go)",
                set.resumed
            ),
        }
        Ok(())
    }
}
