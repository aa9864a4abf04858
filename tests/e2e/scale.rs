//! Scaling Redis out: managed Redis over TLS (server verified by a CA file, mutual TLS, the
//! insecure switch), Redis Cluster and Sentinel, each against real `redis-server` processes.

use std::time::Duration;

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
    assert_eq!(pool.results("tls").await?.len(), 2);

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
    assert_eq!(wrong_ca.status.code(), Some(3), "{}", said(&wrong_ca));
    assert!(
        said(&wrong_ca).to_lowercase().contains("certificate"),
        "the error names the certificate: {}",
        said(&wrong_ca)
    );
    let system_roots = stats(client_cert.to_vec())?;
    assert_eq!(
        system_roots.status.code(),
        Some(3),
        "{}",
        said(&system_roots)
    );
    let no_client_cert = stats(vec!["--redis-ca-file".to_owned(), path(&tls.ca)])?;
    assert_eq!(
        no_client_cert.status.code(),
        Some(3),
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

    // TLS options with a plain URL are a mistake, not silently ignored (exit 2: bad input).
    let plain = baton(
        &pool.redis,
        &["--redis-ca-file", &path(&tls.ca), "stats"],
        None,
    )?;
    assert_eq!(plain.status.code(), Some(2), "{}", said(&plain));
    assert!(said(&plain).contains("rediss://"), "{}", said(&plain));
    pool.wait_state("tls", &["completed"], Duration::from_secs(5))
        .await?;
    Ok(())
}
