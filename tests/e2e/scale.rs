//! Scaling Redis out: managed Redis over TLS (server verified by a CA file, mutual TLS, the
//! insecure switch), Redis Cluster and Sentinel, each against real `redis-server` processes.

use std::time::Duration;

use baton_producer::exit;
use baton_tests::redis_server::redis_cli;
use baton_tests::tls::TlsFiles;
use baton_tests::*;

fn path(p: &std::path::Path) -> String {
    p.display().to_string()
}

/// The CLI's stderr (and stdout), for messages.
fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn plans_run_over_mutual_tls_and_untrusted_servers_are_refused_clearly() -> anyhow::Result<()>
{
    let dir = TempDir::new("tls");
    let tls = TlsFiles::generate(dir.path())?;
    let tls_port = free_port();
    let server_args = tls.server_args(tls_port);
    let refs: Vec<&str> = server_args.iter().map(String::as_str).collect();
    let mut pool = Pool::start_with_redis(Redis::start_with(&refs)?)?;
    let url = format!("rediss://localhost:{tls_port}");
    let client_cert = [
        "--redis-client-cert".to_owned(),
        path(&tls.client_cert),
        "--redis-client-key".to_owned(),
        path(&tls.client_key),
    ];
    let trusted: Vec<String> = [
        vec!["--redis-ca-file".to_owned(), path(&tls.ca)],
        client_cert.to_vec(),
    ]
    .concat();

    // A worker over mutual TLS, and the CLI over the same: a plan runs end to end.
    let mut opts = pool.machine("a", 1);
    opts.redis_url = Some(url.clone());
    opts.extra.extend(trusted.iter().cloned());
    pool.add_worker(&opts)?;
    let plan = doc("tls").prompts(&["One.", "Two."]).json();
    let args: Vec<&str> = trusted
        .iter()
        .map(String::as_str)
        .chain(["enqueue", "--wait", "-"])
        .collect();
    let out = baton_at(&url, &args, Some(&plan))?;
    assert!(out.status.success(), "{}\n{}", said(&out), pool.log_tail());
    assert_eq!(pool.results(&plan_id("tls")).await?.len(), 2);

    // What a user gets wrong, each refused with a message that says why (exit 3: Redis
    // unreachable), and the insecure switch accepting a server no trusted CA signed.
    let stats = |flags: Vec<String>| -> anyhow::Result<std::process::Output> {
        let args: Vec<&str> = flags.iter().map(String::as_str).chain(["stats"]).collect();
        baton_at(&url, &args, None)
    };
    let wrong_ca = stats(
        [
            vec!["--redis-ca-file".to_owned(), path(&tls.other_ca)],
            client_cert.to_vec(),
        ]
        .concat(),
    )?;
    assert_eq!(
        wrong_ca.status.code(),
        Some(exit::TROUBLE.into()),
        "{}",
        said(&wrong_ca)
    );
    assert!(
        said(&wrong_ca).to_lowercase().contains("certificate"),
        "the error names the certificate: {}",
        said(&wrong_ca)
    );
    let system_roots = stats(client_cert.to_vec())?;
    assert_eq!(
        system_roots.status.code(),
        Some(exit::TROUBLE.into()),
        "{}",
        said(&system_roots)
    );
    let no_client_cert = stats(vec!["--redis-ca-file".to_owned(), path(&tls.ca)])?;
    assert_eq!(
        no_client_cert.status.code(),
        Some(exit::TROUBLE.into()),
        "mutual TLS is required: {}",
        said(&no_client_cert)
    );
    let insecure = stats(
        [
            vec!["--redis-tls-insecure".to_owned()],
            client_cert.to_vec(),
        ]
        .concat(),
    )?;
    assert!(insecure.status.success(), "{}", said(&insecure));
    assert!(said(&insecure).contains("tasks"), "{}", said(&insecure));

    // TLS options with a plain URL are a mistake, not silently ignored (bad input).
    let plain = baton(
        &pool.redis,
        &["--redis-ca-file", &path(&tls.ca), "stats"],
        None,
    )?;
    assert_eq!(
        plain.status.code(),
        Some(exit::BAD_INPUT.into()),
        "{}",
        said(&plain)
    );
    assert!(said(&plain).contains("rediss://"), "{}", said(&plain));
    pool.wait_state(
        &plan_id("tls"),
        &[PlanState::Completed],
        Duration::from_secs(5),
    )
    .await?;
    Ok(())
}

/// The index in `cluster.nodes` of the master serving `key`'s slot, and of its replica.
fn master_and_replica_of(cluster: &Redis, key: &str) -> anyhow::Result<(usize, usize)> {
    let cli = redis_cli;
    let port = cluster.nodes[0].port;
    let slot: u16 = cli(port, &["cluster", "keyslot", key])?.trim().parse()?;
    let nodes = cli(port, &["cluster", "nodes"])?;
    let index_of = |addr: &str| {
        let port: u16 = addr.split(['@', ':']).nth(1)?.parse().ok()?;
        cluster.nodes.iter().position(|n| n.port == port)
    };
    // `<id> <ip:port@cport> <flags> <master id or -> ... <slot ranges>`
    let lines: Vec<Vec<&str>> = nodes.lines().map(|l| l.split(' ').collect()).collect();
    let master = lines
        .iter()
        .find(|f| {
            f[2].contains("master")
                && f[8..].iter().any(|range| {
                    let (a, b) = range.split_once('-').unwrap_or((range, range));
                    a.parse::<u16>().is_ok_and(|a| a <= slot)
                        && b.parse::<u16>().is_ok_and(|b| slot <= b)
                })
        })
        .ok_or_else(|| anyhow::anyhow!("no master serves slot {slot}: {nodes}"))?;
    let replica = lines
        .iter()
        .find(|f| f[3] == master[0])
        .ok_or_else(|| anyhow::anyhow!("the master of slot {slot} has no replica: {nodes}"))?;
    Ok((
        index_of(master[1]).ok_or_else(|| anyhow::anyhow!("unknown node {}", master[1]))?,
        index_of(replica[1]).ok_or_else(|| anyhow::anyhow!("unknown node {}", replica[1]))?,
    ))
}

/// The foundation's load case (3 workers x 2, 20 plans x 5 tasks, every check it makes) on a
/// Redis Cluster of 3 masters and 3 replicas, with a failover of the master that serves the
/// pool's own lists midway: `CLUSTER FAILOVER` on its replica, then `kill -9` of the old master.
#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_runs_the_load_case_through_a_master_failover() -> anyhow::Result<()> {
    let mut pool = Pool::start_with_redis(Redis::cluster(3)?)?;
    let pool_tag = format!("{{{}}}", pool.keys.prefix());
    let (master, replica) = master_and_replica_of(&pool.redis, &pool_tag)?;
    // The test listens on a node that stays up (a Cluster forwards every PUBLISH to all nodes).
    let listen = (0..pool.redis.nodes.len())
        .find(|i| *i != master && *i != replica)
        .map(|i| pool.redis.nodes[i].node_url())
        .expect("six nodes");
    let replica_port = pool.redis.nodes[replica].port;
    let master_pid = pool.redis.nodes[master]
        .proc
        .as_ref()
        .map(Proc::pid)
        .expect("a running master");
    crate::foundation::load_case(&mut pool, &listen, move || {
        redis_cli(replica_port, &["cluster", "failover"])?;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !redis_cli(replica_port, &["role"])?.starts_with("master") {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the replica did not take over"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let killed = std::process::Command::new("kill")
            .args(["-9", &master_pid.to_string()])
            .status()?;
        anyhow::ensure!(killed.success(), "kill -9 of the old master");
        Ok(())
    })
    .await
}

/// Sentinel: a master, a replica and three Sentinels. The master gets `kill -9` while plans
/// run; the Sentinels promote the replica, the workers follow, and every plan finishes with each
/// task committed once, in order.
#[tokio::test(flavor = "multi_thread")]
async fn workers_follow_a_sentinel_failover_and_plans_finish_in_order() -> anyhow::Result<()> {
    const PLANS: usize = 8;
    const TASKS: usize = 4;
    let mut pool = Pool::start_with_redis(Redis::sentinel()?)?;
    for i in 0..2 {
        pool.add_worker(&pool.machine(&format!("w{i}"), 2))?;
    }
    let plans: Vec<String> = (0..PLANS).map(|i| format!("sentinel-{i}")).collect();
    for p in &plans {
        let prompts: Vec<String> = (1..=TASKS)
            .map(|k| format!("Step {k} of {p}. [[standin:sleep 300]]"))
            .collect();
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        pool.submit(&doc(p).prompts(&refs).json()).await?;
    }
    // A quarter of the tasks done, then the master dies.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut done = 0;
        for p in &plans {
            done += pool.results(&plan_id(p)).await?.len();
        }
        if done >= PLANS * TASKS / 4 {
            break;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no progress: {}",
            pool.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.redis.nodes[0].kill();
    for p in &plans {
        let state = pool
            .wait_done(&plan_id(p), TASKS as u64, Duration::from_secs(180))
            .await?;
        assert_eq!(state, PlanState::Completed, "plan {p}");
        let ids: Vec<String> = pool
            .results(&plan_id(p))
            .await?
            .iter()
            .map(|r| r.task_id.to_string())
            .collect();
        let want: Vec<String> = (1..=TASKS).map(|k| format!("t{k}")).collect();
        assert_eq!(ids, want, "plan {p}: each task once, in order");
    }
    // The replica is the master now, and it holds everything.
    assert!(redis_cli(pool.redis.nodes[1].port, &["role"])?.starts_with("master"));
    Ok(())
}

/// A failover can lose a commit the old master acknowledged (replication is asynchronous): the
/// new master has the task still at the head of the plan, and the holder, which moved on, runs
/// the next task. Its commit finds the wrong head; the holder gives the plan back (its lease is
/// still its own), and the lost task runs again: every task ends up committed once, in order.
/// The loss is made here by undoing the first task's commit in Redis while the second runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_lost_in_a_failover_runs_its_task_again() -> anyhow::Result<()> {
    let mut pool = Pool::start()?;
    pool.add_worker(&pool.machine("a", 1))?;
    pool.submit(
        &doc("lost")
            .prompts(&[
                "One. [[standin:sleep 500]]",
                "Two. [[standin:sleep 3000]]",
                "Three.",
            ])
            .json(),
    )
    .await?;
    let plan: baton_core::PlanId = "lost".parse()?;
    let mut conn = pool.conn().await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while pool.results(&plan_id("lost")).await?.is_empty() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "task 1 never committed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Undo task 1's commit as a failover would: its result gone, the task back at the head.
    let result: String = redis::cmd("RPOP")
        .arg(pool.keys.results(&plan))
        .query_async(&mut conn)
        .await?;
    let task1 = serde_json::to_string(&baton_core::records::StoredTask {
        id: "t1".parse()?,
        index: 0,
        kind: None,
        prompt: "One. [[standin:sleep 500]]".into(),
        recoveries: 0,
        review: false,
        rework: 0,
        json_schema: None,
    })?;
    let stored: baton_core::records::TaskResult = serde_json::from_str(&result)?;
    assert_eq!(stored.task_id.as_str(), "t1");
    let _: () = redis::cmd("LPUSH")
        .arg(pool.keys.tasks(&plan))
        .arg(task1)
        .query_async(&mut conn)
        .await?;
    let _: () = redis::cmd("HINCRBY")
        .arg(pool.keys.plan(&plan))
        .arg("done")
        .arg(-1)
        .query_async(&mut conn)
        .await?;
    let state = pool
        .wait_done(&plan_id("lost"), 3, Duration::from_secs(60))
        .await?;
    assert_eq!(state, PlanState::Completed);
    let ids: Vec<String> = pool
        .results(&plan_id("lost"))
        .await?
        .iter()
        .map(|r| r.task_id.to_string())
        .collect();
    assert_eq!(ids, ["t1", "t2", "t3"], "each task once, in order");
    Ok(())
}
