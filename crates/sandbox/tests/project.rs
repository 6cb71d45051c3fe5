//! A run carries a project, not one file: files in folders reach the container as they are
//! named, so `import shop.cart` works from `main.py` and from a test in `tests/`; a path that
//! climbs out of the work dir is refused before anything starts. Real engine and image.
#![allow(clippy::unwrap_used)] // a scenario: a failed unwrap is a failed test

mod common;

use common::{assert_no_containers, config, program, run, sandbox};
use duet_sandbox::{RunStatus, Sandbox, SandboxError, Target};
use std::collections::BTreeMap;

const CART: &str = "def total(prices):\n    return round(sum(prices), 2)\n";

fn project(entry_or_tests: Target) -> duet_sandbox::RunRequest {
    let mut request = program("");
    request.files = BTreeMap::from([
        (
            "main.py".to_string(),
            "from shop.cart import total\nprint(total([1.5, 2.25]))\n".to_string(),
        ),
        ("shop/cart.py".to_string(), CART.to_string()),
        (
            "tests/test_cart.py".to_string(),
            "from shop.cart import total\n\ndef test_total():\n    assert total([1, 2]) == 3\n"
                .to_string(),
        ),
        ("data/prices.csv".to_string(), "1.5\n2.25\n".to_string()),
    ]);
    request.target = entry_or_tests;
    request
}

#[tokio::test]
async fn main_imports_a_module_from_a_folder_and_a_test_in_a_folder_imports_it_too() {
    let config = config("project");
    let instance = config.instance.clone();
    let sandbox = sandbox(config).await;

    let ran = run(
        &sandbox,
        project(Target::Program {
            entry: "main.py".into(),
        }),
    )
    .await;
    assert_eq!(ran.status(), RunStatus::Ok, "{ran:?}");
    assert_eq!(ran.out(), "3.75\n");

    let tested = run(
        &sandbox,
        project(Target::Pytest {
            test_files: vec!["tests/test_cart.py".into()],
        }),
    )
    .await;
    assert_eq!(tested.status(), RunStatus::Ok, "{tested:?}");
    let report = tested.outcome.tests.clone().expect("a test report");
    assert_eq!(report.passed, 1, "{report:?}");

    // A data file sits where the program reads it.
    let mut reads = project(Target::Program {
        entry: "main.py".into(),
    });
    reads.files.insert(
        "main.py".into(),
        "print(open('data/prices.csv').read().split())\n".into(),
    );
    let ran = run(&sandbox, reads).await;
    assert_eq!(ran.out(), "['1.5', '2.25']\n", "{ran:?}");
    assert_no_containers(&instance).await;
}

#[tokio::test]
async fn a_path_out_of_the_work_dir_is_refused_before_anything_starts() {
    let sandbox = sandbox(config("project-bad")).await;
    for bad in [
        "../escape.py",
        "/etc/x.py",
        "a//b.py",
        "./a.py",
        "shop/../x.py",
    ] {
        let mut request = program("print(1)\n");
        request.files.insert(bad.into(), "x = 1\n".into());
        match sandbox.start(request) {
            Err(SandboxError::Invalid(why)) => assert!(why.contains("file name"), "{bad}: {why}"),
            Err(other) => panic!("{bad}: {other:?}"),
            Ok(_) => panic!("{bad} was accepted"),
        }
    }
}
