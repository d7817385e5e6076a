//! Golden invoice scenarios: each JSON file in `tests/golden/` sets up a customer, metrics, plans and a
//! subscription, moves the simulated clock, and says which invoices the clock must make, with amounts
//! computed by hand. The format is described in `tests/golden/README.md`; adding a scenario needs no
//! Rust.
//!
//! Every scenario runs on its own simulated server, all of them at once. Mismatches are collected with
//! the file name and a JSON path, and the test fails once, listing them all. `GOLDEN=<part of a file
//! name>` runs only the matching scenarios.

use std::path::{Path, PathBuf};

mod compare;
mod scenario;

use scenario::run_file;

/// Scenarios that fail because of a known billing bug: (file name, the bug). Their expectations stay
/// hand-computed. A listed scenario that passes fails the suite, so each entry is removed when its bug
/// is fixed.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_scenarios_bill_as_computed_by_hand() {
    let only = std::env::var("GOLDEN").ok();
    let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .expect("tests/golden exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .filter(|path| {
            only.as_deref()
                .is_none_or(|part| file_name(path).contains(part))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario in tests/golden matches");

    let mut tasks = Vec::with_capacity(files.len());
    for path in &files {
        let name = file_name(path);
        let text = std::fs::read_to_string(path).expect("readable scenario");
        tasks.push((name.clone(), tokio::spawn(run_file(text))));
    }
    let mut report = Vec::new();
    let mut ran = Vec::new();
    for (name, task) in tasks {
        let failures = match task.await {
            Ok(failures) => failures,
            Err(error) => vec![format!("the scenario panicked: {error}")],
        };
        let known = KNOWN_FAILURES.iter().find(|(file, _)| *file == name);
        match (failures.is_empty(), known) {
            (true, Some((_, bug))) => report.push(format!(
                "{name}: passes but is listed in KNOWN_FAILURES ({bug}); remove it from the list"
            )),
            (false, None) => report.extend(failures.iter().map(|f| format!("{name}: {f}"))),
            (false, Some((_, bug))) => {
                eprintln!(
                    "{name}: known failure ({bug}):\n  {}",
                    failures.join("\n  ")
                )
            }
            (true, None) => {}
        }
        ran.push(name);
    }
    if only.is_none() {
        for (file, _) in KNOWN_FAILURES {
            if !ran.iter().any(|name| name == file) {
                report.push(format!("KNOWN_FAILURES names {file}, which does not exist"));
            }
        }
    }
    assert!(
        report.is_empty(),
        "{} golden mismatch(es):\n  {}",
        report.len(),
        report.join("\n  ")
    );
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
