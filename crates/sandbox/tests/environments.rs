//! Environments and the REPL against the real engine and both images (`bash
//! scripts/ensure-docker.sh` builds them): a run names its environment and gets that image's
//! packages; the images describe themselves through their labels; a REPL runs the program, then
//! reads lines with the program's names in scope until `exit()`, its idle limit or a cancel.

mod common;

use common::{collect, config, program, sandbox};
use duet_sandbox::{
    DockerConfig, EnvironmentImage, RunLimit, RunStatus, Sandbox, SandboxError, Stdin, Target,
};
use std::time::{Duration, Instant};

fn data_image() -> String {
    std::env::var("DUET_SANDBOX_DATA_IMAGE").unwrap_or_else(|_| "duet-sandbox-data:latest".into())
}

/// Both environments, no pool (each run starts its own container).
fn both(test: &str) -> DockerConfig {
    let mut cfg = config(test);
    cfg.environments
        .push(EnvironmentImage::new("python-data", &data_image()));
    cfg
}

const PANDAS: &str = "import pandas as pd\n\
    df = pd.DataFrame({'team': ['a', 'b', 'a'], 'score': [1, 2, 3]})\n\
    print(df.groupby('team')['score'].sum().to_dict())\n";

#[tokio::test]
async fn pandas_runs_in_python_data_and_is_absent_in_python() {
    let sandbox = sandbox(both("env-pandas")).await;
    let mut data = program(PANDAS);
    data.environment = "python-data".into();
    let ran = common::run(&sandbox, data).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.out(), "{'a': 4, 'b': 2}\n");

    let ran = common::run(&sandbox, program(PANDAS)).await;
    assert_eq!(ran.status(), RunStatus::Error, "{ran:?}");
    assert!(
        ran.err()
            .contains("ModuleNotFoundError: No module named 'pandas'"),
        "{}",
        ran.err()
    );
}

#[tokio::test]
async fn each_environment_lists_its_python_and_packages_from_its_labels() {
    let sandbox = sandbox(both("env-list")).await;
    let listed = sandbox.environments();
    let names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["python", "python-data"]);
    let version = |env: usize, name: &str| {
        listed[env]
            .packages
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.version.clone())
    };
    for env in &listed {
        assert!(env.python.starts_with("3."), "{env:?}");
    }
    assert!(version(0, "pytest").is_some(), "{:?}", listed[0]);
    assert_eq!(version(0, "pandas"), None, "python has no pandas");
    for data in ["numpy", "pandas", "scipy"] {
        assert!(version(1, data).is_some(), "{data} in {:?}", listed[1]);
    }
    // The label says what the image holds: the version pandas itself reports.
    let mut check = program("import pandas, numpy, scipy\nprint(pandas.__version__, numpy.__version__, scipy.__version__)\n");
    check.environment = "python-data".into();
    let ran = common::run(&sandbox, check).await;
    let want = format!(
        "{} {} {}\n",
        version(1, "pandas").unwrap_or_default(),
        version(1, "numpy").unwrap_or_default(),
        version(1, "scipy").unwrap_or_default()
    );
    assert_eq!(ran.out(), want);
}

#[tokio::test]
async fn an_unknown_environment_is_refused_and_a_missing_image_is_reported_per_environment() {
    let sandbox = sandbox(config("env-unknown")).await;
    let mut request = program("print(1)\n");
    request.environment = "python-gpu".into();
    assert!(matches!(
        sandbox.start(request),
        Err(SandboxError::UnknownEnvironment(name)) if name == "python-gpu"
    ));

    // An environment whose image is missing: the other still runs; health says which to build.
    let mut cfg = config("env-missing");
    cfg.environments.push(EnvironmentImage::new(
        "python-data",
        "duet-sandbox-missing:nothing",
    ));
    let sandbox = duet_sandbox::DockerSandbox::new(cfg).expect("config");
    let health = sandbox.check_now().await;
    assert_eq!(health.status, "degraded");
    let detail = health.detail.unwrap_or_default();
    assert!(
        detail.contains("bash sandbox/build-image.sh python-data"),
        "{detail}"
    );
    let statuses: Vec<(&str, &str)> = health
        .environments
        .iter()
        .map(|e| (e.name.as_str(), e.status))
        .collect();
    assert_eq!(statuses, [("python", "ok"), ("python-data", "degraded")]);
    let names: Vec<String> = sandbox.environments().into_iter().map(|e| e.name).collect();
    assert_eq!(names, ["python"]);
    assert_eq!(
        common::run(&sandbox, program("print(1)\n")).await.status(),
        RunStatus::Ok
    );
    let mut data = program("print(1)\n");
    data.environment = "python-data".into();
    let ran = common::run(&sandbox, data).await;
    assert_eq!(ran.status(), RunStatus::SandboxError, "{ran:?}");
    assert!(ran
        .outcome
        .detail
        .unwrap_or_default()
        .contains("python-data"));
}

fn repl(code: &str) -> duet_sandbox::RunRequest {
    let mut request = program(code);
    request.target = Target::Repl {
        entry: "main.py".into(),
    };
    request.keep_stdin_open = true;
    request
}

#[tokio::test]
async fn a_repl_has_the_program_s_names_in_scope_and_exit_ends_it() {
    let sandbox = sandbox(config("repl-exit")).await;
    let handle = sandbox
        .start(repl("totals = {'a': 4}\nprint('loaded')\n"))
        .expect("queued");
    for line in [
        "totals['a'] * 10\n",
        "x = 2\n",
        "print(x + 1)\n",
        "exit()\n",
    ] {
        handle
            .stdin
            .send(Stdin::Data(line.as_bytes().to_vec()))
            .await
            .expect("stdin");
    }
    let ran = collect(handle.events, Instant::now()).await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.out(), "loaded\n40\n3\n");
    // The interpreter's prompts go to stderr, one per line read.
    assert!(ran.err().contains(">>> "), "{}", ran.err());
}

#[tokio::test]
async fn a_repl_without_input_for_its_idle_limit_is_stopped() {
    let sandbox = sandbox(config("repl-idle")).await;
    let mut request = repl("print('ready')\n");
    request.limits.repl_idle = Duration::from_secs(2);
    let handle = sandbox.start(request).expect("queued");
    // One line a second for two seconds keeps it alive past the idle limit...
    let started = Instant::now();
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        handle
            .stdin
            .send(Stdin::Data(b"1 + 1\n".to_vec()))
            .await
            .expect("stdin");
    }
    // ...then silence ends it.
    let ran = collect(handle.events, started).await;
    assert_eq!(ran.status(), RunStatus::Timeout, "{ran:?}");
    assert_eq!(ran.outcome.limit, Some(RunLimit::Idle { ms: 2000 }));
    assert_eq!(
        ran.outcome.detail.as_deref(),
        Some("stopped after 2 s without input")
    );
    assert_eq!(ran.out(), "ready\n2\n2\n");
    assert!(ran.total >= Duration::from_secs(4), "{:?}", ran.total);
}

#[tokio::test]
async fn a_cancelled_repl_ends_as_cancelled() {
    let sandbox = sandbox(config("repl-cancel")).await;
    let handle = sandbox.start(repl("print('up')\n")).expect("queued");
    handle
        .stdin
        .send(Stdin::Data(b"print('still here')\n".to_vec()))
        .await
        .expect("stdin");
    let mut events = handle.events;
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("still here") {
        match events.recv().await {
            Some(duet_sandbox::RunEvent::Stdout(b)) => out.extend(b),
            Some(duet_sandbox::RunEvent::Finished(o)) => panic!("ended early: {o:?}"),
            Some(_) => {}
            None => panic!("no events"),
        }
    }
    handle.cancel.cancel();
    let ran = collect(events, Instant::now()).await;
    assert_eq!(ran.status(), RunStatus::Cancelled, "{ran:?}");
}
