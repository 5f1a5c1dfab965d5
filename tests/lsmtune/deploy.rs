//! The deployment files under docs/deploy: the Kubernetes manifest parses as YAML and is an
//! Indexed Job whose shard count matches its completions, and the lsmtune command lines in it and
//! in the Slurm script are ones the command line accepts, so a typo cannot ship.

use clap::Parser;

fn deploy_file(name: &str) -> String {
    std::fs::read_to_string(format!("{}/docs/deploy/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// `lsmtune ARGS` parses (clap only: nothing runs).
fn parses(args: &[String]) {
    let argv = std::iter::once("lsmtune".to_string()).chain(args.iter().cloned());
    if let Err(e) = lsmtune::cli::Cli::try_parse_from(argv) {
        panic!("`lsmtune {}` does not parse: {e}", args.join(" "));
    }
}

#[test]
fn the_kubernetes_manifest_is_an_indexed_job_of_shards_lsmtune_accepts() {
    let docs = yaml_rust2::YamlLoader::load_from_str(&deploy_file("compare-indexed-job.yaml"))
        .unwrap_or_else(|e| panic!("compare-indexed-job.yaml: {e}"));
    let job = &docs[0];
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = spec["completions"].as_i64().expect("completions");
    let pod = &spec["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["command"][0].as_str(), Some("lsmtune"));
    let args: Vec<String> = c["args"]
        .as_vec()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("every arg a string").to_string())
        .collect();
    let at = |flag: &str| {
        let i = args
            .iter()
            .position(|a| a == flag)
            .unwrap_or_else(|| panic!("{flag} missing: {args:?}"));
        args[i + 1].clone()
    };
    assert_eq!(at("--shard"), format!("$(SHARD_INDEX)/{completions}"));
    assert_eq!(at("--out"), "/results/shard-$(SHARD_INDEX)");
    // $(SHARD_INDEX) is expanded only for a variable the container declares.
    let env = c["env"].as_vec().expect("env");
    let index = env
        .iter()
        .find(|e| e["name"].as_str() == Some("SHARD_INDEX"))
        .expect("SHARD_INDEX declared");
    assert_eq!(
        index["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
    );
    // Every mount names a volume of the pod, and --out and --work-dir are on mounts.
    let volumes: Vec<&str> = pod["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    let mounts: Vec<(&str, &str)> = c["volumeMounts"]
        .as_vec()
        .expect("volumeMounts")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    for (name, _) in &mounts {
        assert!(volumes.contains(name), "mount {name} has no volume");
    }
    for flag in ["--out", "--work-dir"] {
        let path = at(flag);
        assert!(
            mounts.iter().any(|(_, m)| path.starts_with(m)),
            "{flag} {path} is on no mounted volume"
        );
    }
    // The command line lsmtune gets in pod 0.
    let pod0: Vec<String> = args
        .iter()
        .map(|a| a.replace("$(SHARD_INDEX)", "0"))
        .collect();
    parses(&pod0);
}

#[test]
fn the_slurm_script_runs_a_compare_shard_lsmtune_accepts() {
    let text = deploy_file("compare.sbatch");
    assert!(text.starts_with("#!/bin/bash"), "a batch script");
    assert!(text.contains("#SBATCH --cpus-per-task="));
    // The `exec "$LSMTUNE" compare \` line and its continuation lines, variables filled in.
    let start = text
        .find("exec \"$LSMTUNE\" compare")
        .expect("the lsmtune command");
    let mut words = Vec::new();
    for line in text[start..].lines() {
        let body = line.trim().trim_end_matches('\\').trim();
        words.extend(body.split_whitespace().map(|w| {
            w.trim_matches('"')
                .replace("$MODEL", "/shared/m.gguf")
                .replace("$WORK", "/tmp")
                .replace("$RESULTS", "/shared/results")
                .replace("$SLURM_ARRAY_TASK_ID", "0")
        }));
        if !line.trim_end().ends_with('\\') {
            break;
        }
    }
    assert_eq!(&words[..2], ["exec", "$LSMTUNE"]);
    let args = words[2..].to_vec();
    assert!(
        args.windows(2).any(|w| w[0] == "--shard" && w[1] == "auto"),
        "{args:?}"
    );
    parses(&args);
}
