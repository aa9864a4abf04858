//! The deploy files, linted: they are not run here (no container engine), so this checks what
//! breaks them silently: YAML that does not parse, an environment variable no baton binary
//! reads, and a metrics port that the scrape configuration or the annotations do not match.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{ensure, Context, Result};
use baton_tests::proc::{bin, repo_root};
use yaml_rust2::{Yaml, YamlLoader};

fn load(relative: &str) -> Result<Vec<Yaml>> {
    let path = repo_root().join("deploy").join(relative);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    YamlLoader::load_from_str(&text).with_context(|| format!("{relative} is not valid YAML"))
}

/// The `BATON_*` variables a binary reads, from its `--help` (clap prints `[env: NAME=]`).
fn env_names(binary: &str, args: &[&str]) -> Result<BTreeSet<String>> {
    let out = Command::new(bin(binary))
        .args(args)
        .arg("--help")
        .output()?;
    ensure!(out.status.success(), "{binary} {args:?} --help failed");
    let help = String::from_utf8(out.stdout)?;
    let mut names: BTreeSet<String> = help
        .split("[env: ")
        .skip(1)
        .filter_map(|rest| rest.split('=').next())
        .map(str::to_owned)
        .collect();
    // Read by both binaries' logging set-up, before clap.
    names.insert("BATON_LOG_FORMAT".to_owned());
    Ok(names)
}

fn port_of(addr: &str) -> Result<u16> {
    let addr: std::net::SocketAddr = addr.parse().with_context(|| format!("{addr:?}"))?;
    Ok(addr.port())
}

fn unknown_baton_vars<'a>(
    vars: impl Iterator<Item = &'a str>,
    known: &BTreeSet<String>,
) -> Vec<String> {
    vars.filter(|v| v.starts_with("BATON_") && !known.contains(*v))
        .map(str::to_owned)
        .collect()
}

#[test]
fn compose_file_runs_the_dashboard_and_scrapes_every_worker() -> Result<()> {
    let compose = load("docker-compose.yml")?.remove(0);
    let services = &compose["services"];
    for name in ["redis", "worker", "dashboard", "prometheus"] {
        ensure!(
            !services[name].is_badvalue(),
            "compose has no {name} service"
        );
    }

    let worker_vars = env_names("baton-worker", &[])?;
    let mut dashboard_vars = env_names("baton", &["dashboard"])?;
    dashboard_vars.extend(env_names("baton", &[])?);
    for (service, known) in [("worker", &worker_vars), ("dashboard", &dashboard_vars)] {
        let env = services[service]["environment"]
            .as_hash()
            .with_context(|| format!("{service} has an environment map"))?;
        let unknown = unknown_baton_vars(env.keys().filter_map(Yaml::as_str), known);
        ensure!(
            unknown.is_empty(),
            "{service} sets variables baton does not read: {unknown:?}"
        );
    }

    let metrics_port = port_of(
        services["worker"]["environment"]["BATON_METRICS_ADDR"]
            .as_str()
            .context("the worker sets BATON_METRICS_ADDR")?,
    )?;

    let dashboard = &services["dashboard"];
    let entry: Vec<_> = dashboard["entrypoint"]
        .as_vec()
        .context("entrypoint")?
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    let command: Vec<_> = dashboard["command"]
        .as_vec()
        .context("command")?
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    ensure!(
        entry == ["baton"] && command.first() == Some(&"dashboard"),
        "dashboard runs `baton dashboard`: {entry:?} {command:?}"
    );
    // The dashboard has no auth when read-only: the host side of its port stays on loopback.
    for port in dashboard["ports"].as_vec().context("dashboard ports")? {
        let port = port.as_str().context("port as a string")?;
        ensure!(
            port.starts_with("127.0.0.1:"),
            "dashboard published beyond loopback: {port}"
        );
    }

    let mounts = services["prometheus"]["volumes"]
        .as_vec()
        .context("prometheus volumes")?;
    ensure!(
        mounts
            .iter()
            .filter_map(Yaml::as_str)
            .any(|m| m.starts_with("./prometheus.yml:")),
        "prometheus mounts deploy/prometheus.yml"
    );
    let prometheus = load("prometheus.yml")?.remove(0);
    let job = prometheus["scrape_configs"]
        .as_vec()
        .context("scrape_configs")?
        .iter()
        .find(|job| job["job_name"].as_str() == Some("baton-worker"))
        .context("a baton-worker scrape job")?
        .clone();
    let discovery = &job["dns_sd_configs"][0];
    ensure!(
        discovery["names"]
            .as_vec()
            .is_some_and(|n| n.iter().any(|n| n.as_str() == Some("worker"))),
        "the scrape finds the worker replicas by their service name"
    );
    ensure!(
        discovery["port"].as_i64() == Some(i64::from(metrics_port)),
        "scrape port {:?} is not the workers' metrics port {metrics_port}",
        discovery["port"]
    );
    Ok(())
}

#[test]
fn kubernetes_worker_exposes_metrics_with_scrape_annotations() -> Result<()> {
    let docs = load("k8s/worker.yaml")?;
    let deployment = docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .context("worker.yaml has a Deployment")?;
    let template = &deployment["spec"]["template"];
    let annotations = &template["metadata"]["annotations"];
    ensure!(
        annotations["prometheus.io/scrape"].as_str() == Some("true"),
        "scrape annotation"
    );
    ensure!(
        annotations["prometheus.io/path"].as_str() == Some("/metrics"),
        "path annotation"
    );
    let annotated: u16 = annotations["prometheus.io/port"]
        .as_str()
        .context("port annotation")?
        .parse()?;

    let container = &template["spec"]["containers"][0];
    let env = container["env"].as_vec().context("container env")?;
    let known = env_names("baton-worker", &[])?;
    let unknown = unknown_baton_vars(env.iter().filter_map(|e| e["name"].as_str()), &known);
    ensure!(
        unknown.is_empty(),
        "the worker sets variables it does not read: {unknown:?}"
    );
    let metrics_addr = env
        .iter()
        .find(|e| e["name"].as_str() == Some("BATON_METRICS_ADDR"))
        .and_then(|e| e["value"].as_str())
        .context("the worker sets BATON_METRICS_ADDR")?;
    let listening = port_of(metrics_addr)?;
    let declared = container["ports"]
        .as_vec()
        .context("container ports")?
        .iter()
        .find(|p| p["name"].as_str() == Some("metrics"))
        .and_then(|p| p["containerPort"].as_i64())
        .context("a port named metrics")?;
    ensure!(
        i64::from(listening) == declared && listening == annotated,
        "metrics port disagrees: listens on {listening}, declared {declared}, annotated {annotated}"
    );

    for file in ["k8s/autoscale.yaml", "k8s/autoscale-managed.yaml"] {
        for doc in load(file)? {
            ensure!(
                !doc["kind"].is_badvalue(),
                "{file}: every document has a kind"
            );
            if doc["kind"].as_str() != Some("ScaledObject") {
                continue;
            }
            // Each scales on the pool's ready lists (one per priority), named as the workers
            // name them, and watches every one of them.
            let keys = baton_core::Keys::new("baton");
            let lists = keys.ready_lists();
            let mut watched = Vec::new();
            for trigger in doc["spec"]["triggers"].as_vec().context("triggers")? {
                let list = trigger["metadata"]["listName"].as_str().unwrap_or_default();
                ensure!(
                    lists.iter().any(|l| l == list),
                    "{file}: a trigger watches {list:?}, not a ready list ({lists:?})"
                );
                watched.push(list.to_owned());
            }
            for list in &lists {
                ensure!(
                    watched.contains(list),
                    "{file}: no trigger watches the ready list {list}"
                );
            }
        }
    }
    Ok(())
}

/// The deploy files run workers with the sandbox on and give the box what it needs: bubblewrap
/// in the image, and a runtime that lets it make namespaces and mount a /proc of its own.
#[test]
fn deploy_files_run_workers_in_the_sandbox() -> Result<()> {
    let dockerfile = std::fs::read_to_string(repo_root().join("deploy/Dockerfile"))?;
    ensure!(
        dockerfile.contains("bubblewrap"),
        "the image installs bubblewrap"
    );
    let compose = load("docker-compose.yml")?.remove(0);
    let worker = &compose["services"]["worker"];
    ensure!(
        worker["environment"]["BATON_SANDBOX"].as_str() != Some("off"),
        "compose turns the sandbox off"
    );
    let opts: Vec<&str> = worker["security_opt"]
        .as_vec()
        .context("compose worker security_opt")?
        .iter()
        .filter_map(Yaml::as_str)
        .collect();
    for needed in [
        "seccomp=unconfined",
        "apparmor=unconfined",
        "systempaths=unconfined",
    ] {
        ensure!(opts.contains(&needed), "compose worker lacks {needed}");
    }
    let docs = load("k8s/worker.yaml")?;
    let pod = &docs
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .context("worker.yaml has a Deployment")?["spec"]["template"]["spec"];
    ensure!(
        pod["hostUsers"].as_bool() == Some(false),
        "pod user namespace"
    );
    let container = &pod["containers"][0];
    let sc = &container["securityContext"];
    ensure!(sc["procMount"].as_str() == Some("Unmasked"), "procMount");
    ensure!(
        sc["seccompProfile"]["type"].as_str() == Some("Unconfined"),
        "seccomp"
    );
    ensure!(
        sc["appArmorProfile"]["type"].as_str() == Some("Unconfined"),
        "apparmor"
    );
    ensure!(
        pod["securityContext"]["runAsNonRoot"].as_bool() == Some(true),
        "still non-root"
    );
    let sandbox_off =
        container["env"].as_vec().context("env")?.iter().any(|e| {
            e["name"].as_str() == Some("BATON_SANDBOX") && e["value"].as_str() == Some("off")
        });
    ensure!(!sandbox_off, "the Kubernetes worker turns the sandbox off");
    Ok(())
}
