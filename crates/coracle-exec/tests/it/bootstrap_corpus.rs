//! Every lightweight Python component command in the kfp corpus is recognised exactly, with
//! the kfp version and packages its bootstrap installs; nothing else is.

use std::fmt::Write as _;

use coracle_exec::{looks_like_kfp_python, parse_kfp_bootstrap};

use crate::common::{container_argv, corpus_dir, executors};

/// The `X` of the first `'kfp==X'` in the text, found without the parser.
fn pinned_kfp(text: &str) -> Option<String> {
    let start = text.find("'kfp==")? + "'kfp==".len();
    let end = text[start..].find('\'')?;
    Some(text[start..start + end].to_string())
}

#[test]
fn corpus_bootstraps_are_recognised() {
    let root = corpus_dir();
    if !root.is_dir() {
        eprintln!(
            "skipped corpus_bootstraps_are_recognised: no corpus at {}",
            root.display()
        );
        return;
    }
    let mut files: Vec<_> = ["critical", "essential", "failing"]
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(root.join(dir))
                .into_iter()
                .flatten()
                .flatten()
        })
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut summary = String::new();
    let (mut recognised, mut others) = (0, 0);
    for path in &files {
        let name = path.strip_prefix(&root).unwrap().display().to_string();
        for (executor, container) in executors(path) {
            let argv = container_argv(&container);
            let lightweight = argv.iter().any(|a| a.contains("kfp.dsl.executor_main"));
            let parsed = parse_kfp_bootstrap(&argv);
            if !lightweight {
                assert_eq!(
                    parsed, None,
                    "{name} {executor} is not a lightweight component"
                );
                others += 1;
                continue;
            }
            recognised += 1;
            assert!(looks_like_kfp_python(&argv));
            let parsed =
                parsed.unwrap_or_else(|| panic!("{name} {executor}: not recognised: {argv:#?}"));
            let script = &argv[2];
            assert_eq!(parsed.kfp_version, pinned_kfp(script), "{name} {executor}");
            for package in &parsed.packages {
                assert!(
                    script.contains(&format!("'{package}'")),
                    "{name} {executor}: {package}"
                );
            }
            assert_eq!(parsed.source, argv[6], "{name} {executor}");
            assert_eq!(parsed.args, argv[7..], "{name} {executor}");
            let function = parsed
                .args
                .iter()
                .position(|a| a == "--function_to_execute")
                .map(|i| parsed.args[i + 1].as_str())
                .expect("--function_to_execute");
            assert!(
                parsed.source.contains(&format!("def {function}(")),
                "{name} {executor}"
            );
            let _ = writeln!(
                summary,
                "{name} {executor}: image={} kfp={} packages={:?} pip_options={:?}{}",
                container["image"].as_str().unwrap_or("?"),
                parsed.kfp_version.as_deref().unwrap_or("-"),
                parsed.packages,
                parsed.pip_options,
                if parsed.use_venv { " use_venv" } else { "" },
            );
        }
    }
    assert!(
        recognised > 100,
        "only {recognised} lightweight components found"
    );
    assert!(others > 10, "only {others} other containers found");
    insta::assert_snapshot!(summary);
}
