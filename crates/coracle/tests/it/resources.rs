//! `coracle volume|secret|configmap`: create, list, get and delete through the binary, exit
//! codes of bad input, and secret values that no command ever prints.

use std::path::Path;
use std::process::Output;

use serde_json::{Value, json};

use crate::*;

/// A secret value distinctive enough that finding it anywhere is a leak.
const SECRET: &str = "pw-Zq8Xk2Lm9Rt4";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a command that must succeed; returns its stdout.
fn ok(home: &Home, args: &[&str]) -> String {
    let out = home.coracle(args);
    assert!(
        out.status.success(),
        "coracle {args:?} failed ({:?}): {}",
        out.status.code(),
        stderr(&out)
    );
    stdout(&out)
}

/// Runs a command that must exit 2 with `message` on stderr and nothing on stdout.
fn refused(home: &Home, args: &[&str], message: &str) -> Output {
    let out = home.coracle(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "coracle {args:?}: {err}");
    assert!(err.starts_with("error: "), "coracle {args:?}: {err}");
    assert!(err.contains(message), "coracle {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(stdout(&out), "", "coracle {args:?}");
    out
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn volumes_are_created_listed_and_deleted_with_their_directories() {
    let home = Home::new();
    let out = ok(
        &home,
        &[
            "volume",
            "create",
            "data",
            "--size",
            "1Gi",
            "--access-mode",
            "ReadWriteOnce",
            "--access-mode",
            "ReadOnlyMany",
            "--storage-class",
            "standard",
            "--annotation",
            "team=ml",
        ],
    );
    let dir = home.dir.path().canonicalize().unwrap().join("volumes/data");
    assert!(dir.is_dir(), "{} was not made", dir.display());
    assert!(out.contains("volume \"data\" created at"), "{out}");
    ok(&home, &["volume", "create", "scratch"]);

    let table = ok(&home, &["volume", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(
        lines[1].starts_with("data ")
            && lines[1].contains(" 1Gi ")
            && lines[1].ends_with("volumes/data"),
        "{table}"
    );
    assert!(
        lines[2].starts_with("scratch ") && lines[2].contains(" - "),
        "{table}"
    );
    // `table` is a name of the text format too.
    assert_eq!(ok(&home, &["volume", "list", "--output", "table"]), table);

    let list = json_of(&ok(&home, &["volume", "list", "--output", "json"]));
    let data = &list[0];
    assert_eq!(data["name"], "data");
    assert_eq!(data["size"], "1Gi");
    assert_eq!(
        data["access_modes"],
        json!(["ReadWriteOnce", "ReadOnlyMany"])
    );
    assert_eq!(data["storage_class"], "standard");
    assert_eq!(data["annotations"], json!({"team": "ml"}));
    assert_eq!(data["created_by_run"], Value::Null);
    assert_eq!(
        Path::new(data["path"].as_str().unwrap())
            .canonicalize()
            .unwrap(),
        dir
    );
    assert_eq!(list[1]["name"], "scratch");
    assert_eq!(list[1]["size"], Value::Null);

    refused(
        &home,
        &["volume", "create", "data"],
        "volume \"data\" already exists",
    );

    // Files in the volume go with it.
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/file.txt"), "x").unwrap();
    let out = ok(&home, &["volume", "delete", "data"]);
    assert!(out.contains("volume \"data\" deleted"), "{out}");
    assert!(!dir.exists(), "{} is still there", dir.display());
    let list = json_of(&ok(&home, &["volume", "list", "--output", "json"]));
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    refused(
        &home,
        &["volume", "delete", "data"],
        "volume \"data\" not found",
    );
}

#[test]
fn bad_volume_input_exits_2_and_makes_nothing() {
    let home = Home::new();
    refused(
        &home,
        &["volume", "create", "My_Data"],
        "invalid volume name \"My_Data\": 'M' at position 1 is not allowed",
    );
    refused(
        &home,
        &["volume", "create", "data", "--size", "1GB"],
        "invalid size \"1GB\" of volume \"data\"",
    );
    refused(
        &home,
        &[
            "volume",
            "create",
            "data",
            "--access-mode",
            "ReadWriteAlways",
        ],
        "invalid access mode \"ReadWriteAlways\" of volume \"data\"",
    );
    refused(
        &home,
        &["volume", "create", "data", "--annotation", "novalue"],
        "--annotation \"novalue\" (entry 1) is not KEY=VALUE",
    );
    refused(
        &home,
        &["volume", "delete", "../escape"],
        "invalid volume name \"../escape\"",
    );
    assert!(!home.dir.path().join("volumes/data").exists());
    let list = json_of(&ok(&home, &["volume", "list", "--output", "json"]));
    assert_eq!(list, json!([]));
}

#[test]
fn secrets_are_created_replaced_listed_and_deleted() {
    let home = Home::new();
    let files = tempfile::tempdir().unwrap();
    let key_file = files.path().join("tls.key");
    std::fs::write(&key_file, [0u8, 159, 146, 150, 255]).unwrap();
    let token_file = files.path().join("whatever.txt");
    std::fs::write(&token_file, "token-text").unwrap();
    let out = ok(
        &home,
        &[
            "secret",
            "create",
            "db-creds",
            "--from-literal",
            &format!("password={SECRET}"),
            "--from-literal",
            "user=admin",
            "--from-file",
            key_file.to_str().unwrap(),
            "--from-file",
            &format!("token={}", token_file.display()),
        ],
    );
    assert_eq!(
        out.trim(),
        "secret \"db-creds\" created (keys: password, tls.key, token, user)"
    );

    let table = ok(&home, &["secret", "list"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("NAME") && lines[0].ends_with("KEYS"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("db-creds ") && lines[1].ends_with("password, tls.key, token, user"),
        "{table}"
    );
    let list = json_of(&ok(&home, &["secret", "list", "--output", "json"]));
    assert_eq!(list[0]["name"], "db-creds");
    assert_eq!(
        list[0]["keys"],
        json!(["password", "tls.key", "token", "user"])
    );
    assert_eq!(list[0]["created_at"], list[0]["updated_at"]);

    refused(
        &home,
        &[
            "secret",
            "create",
            "db-creds",
            "--from-literal",
            "user=other",
        ],
        "secret \"db-creds\" already exists",
    );
    let out = ok(
        &home,
        &[
            "secret",
            "create",
            "db-creds",
            "--from-literal",
            "user=other",
            "--replace",
        ],
    );
    assert_eq!(out.trim(), "secret \"db-creds\" replaced (keys: user)");
    let list = json_of(&ok(&home, &["secret", "list", "--output", "json"]));
    assert_eq!(list[0]["keys"], json!(["user"]));
    assert_ne!(list[0]["created_at"], list[0]["updated_at"]);

    assert_eq!(
        ok(&home, &["secret", "delete", "db-creds"]).trim(),
        "secret \"db-creds\" deleted"
    );
    assert_eq!(
        json_of(&ok(&home, &["secret", "list", "--output", "json"])),
        json!([])
    );
    refused(
        &home,
        &["secret", "delete", "db-creds"],
        "secret \"db-creds\" not found",
    );
}

#[test]
fn bad_secret_input_exits_2_naming_what_is_wrong() {
    let home = Home::new();
    let files = tempfile::tempdir().unwrap();
    let spaced = files.path().join("my key.txt");
    std::fs::write(&spaced, "x").unwrap();
    let missing = files.path().join("missing.txt");

    refused(
        &home,
        &["secret", "create", "Bad.Name", "--from-literal", "k=v"],
        "invalid secret name \"Bad.Name\"",
    );
    refused(
        &home,
        &["secret", "create", "s"],
        "secret \"s\" needs at least one entry",
    );
    refused(
        &home,
        &[
            "secret",
            "create",
            "s",
            "--from-literal",
            "k=1",
            "--from-literal",
            "k=2",
        ],
        "key \"k\" of secret \"s\" is given twice (again by --from-literal entry 2)",
    );
    refused(
        &home,
        &[
            "secret",
            "create",
            "s",
            "--from-literal",
            "my key.txt=1",
            "--from-literal",
            "ok=2",
        ],
        "invalid key \"my key.txt\" in secret \"s\": ' ' at position 3 is not allowed",
    );
    refused(
        &home,
        &[
            "secret",
            "create",
            "s",
            "--from-file",
            spaced.to_str().unwrap(),
        ],
        "(the key is the name of the file",
    );
    let out = refused(
        &home,
        &[
            "secret",
            "create",
            "s",
            "--from-file",
            &format!("k={}", missing.display()),
        ],
        &format!(
            "failed to read {} for key \"k\" of secret \"s\"",
            missing.display()
        ),
    );
    assert!(stderr(&out).contains("No such file"), "{}", stderr(&out));
    refused(
        &home,
        &[
            "secret",
            "create",
            "s",
            "--from-file",
            &format!("k={}", files.path().display()),
        ],
        "gives key \"k\" a directory",
    );
    refused(
        &home,
        &["secret", "delete", "nope"],
        "secret \"nope\" not found",
    );
    assert_eq!(
        json_of(&ok(&home, &["secret", "list", "--output", "json"])),
        json!([])
    );
}

/// Every command touching a secret, failing ones too: the value appears in no output and in
/// no file of the data directory (the store keeps it as base64).
#[test]
fn secret_values_are_never_printed() {
    let home = Home::new();
    let files = tempfile::tempdir().unwrap();
    let value_file = files.path().join("password");
    std::fs::write(&value_file, SECRET).unwrap();
    let literal = format!("password={SECRET}");
    let file_entry = format!("from-file={}", value_file.display());
    let bad_key = format!("bad key={SECRET}");
    let same_key_file = format!("password={}", value_file.display());
    let runs: Vec<Vec<&str>> = vec![
        vec![
            "secret",
            "create",
            "s",
            "--from-literal",
            &literal,
            "--from-file",
            &file_entry,
        ],
        vec!["secret", "list"],
        vec!["secret", "list", "--output", "json"],
        // Already exists, with the value given again.
        vec!["secret", "create", "s", "--from-literal", &literal],
        // A literal without '=' is all value: it must not be quoted back.
        vec!["secret", "create", "t", "--from-literal", SECRET],
        // A bad key, a bad name and a repeated key, each with the value beside it.
        vec!["secret", "create", "t", "--from-literal", &bad_key],
        vec!["secret", "create", "T", "--from-literal", &literal],
        vec![
            "secret",
            "create",
            "t",
            "--from-literal",
            &literal,
            "--from-file",
            &same_key_file,
        ],
        vec![
            "secret",
            "create",
            "s",
            "--replace",
            "--from-file",
            value_file.to_str().unwrap(),
        ],
        vec!["secret", "list"],
        vec!["configmap", "list"],
        vec!["volume", "list"],
        vec!["runs", "list"],
        vec!["secret", "delete", "s"],
        vec!["secret", "delete", "s"],
    ];
    let mut codes = Vec::new();
    for args in &runs {
        let out = home
            .command()
            .env("CORACLE_LOG", "trace")
            .args(args)
            .output()
            .unwrap();
        for text in [stdout(&out), stderr(&out)] {
            assert!(
                !text.contains(SECRET),
                "coracle {args:?} printed the secret: {text}"
            );
        }
        codes.push(out.status.code().unwrap());
    }
    assert_eq!(codes, [0, 0, 0, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 2]);
    for file in files_under(home.dir.path()) {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "{} holds the secret in plain text",
            file.display()
        );
    }
}

#[test]
fn from_file_with_a_directory_takes_each_file_as_kubectl_does() {
    let home = Home::new();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("app.conf"), "a=1\n").unwrap();
    std::fs::write(files.path().join("log.level"), "debug").unwrap();
    std::fs::write(files.path().join("not a key"), "skipped").unwrap();
    std::fs::create_dir(files.path().join("nested")).unwrap();
    let out = home.coracle(&[
        "configmap",
        "create",
        "app",
        "--from-file",
        files.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not a key: its name is not a valid key"),
        "{}",
        stderr(&out)
    );
    let got = json_of(&ok(&home, &["configmap", "get", "app", "--output", "json"]));
    assert_eq!(
        got,
        json!({"name": "app", "data": {"app.conf": "a=1\n", "log.level": "debug"}})
    );
}

#[test]
fn config_maps_are_created_shown_listed_and_deleted() {
    let home = Home::new();
    let files = tempfile::tempdir().unwrap();
    let settings = files.path().join("settings.json");
    std::fs::write(&settings, "{\"lr\": 0.1}\n").unwrap();
    let binary = files.path().join("blob.bin");
    std::fs::write(&binary, [0xffu8, 0xfe, 0x00]).unwrap();

    let out = ok(
        &home,
        &[
            "configmap",
            "create",
            "train-config",
            "--from-literal",
            "epochs=10",
            "--from-file",
            settings.to_str().unwrap(),
        ],
    );
    assert_eq!(
        out.trim(),
        "config map \"train-config\" created (keys: epochs, settings.json)"
    );
    let text = ok(&home, &["configmap", "get", "train-config"]);
    assert_eq!(
        text,
        "config map \"train-config\": 2 keys\n\nepochs:\n----\n10\n\nsettings.json:\n----\n{\"lr\": 0.1}\n"
    );
    let got = json_of(&ok(
        &home,
        &["configmap", "get", "train-config", "--output", "json"],
    ));
    assert_eq!(
        got["data"],
        json!({"epochs": "10", "settings.json": "{\"lr\": 0.1}\n"})
    );
    // `config-map` is accepted as well.
    let list = json_of(&ok(&home, &["config-map", "list", "--output", "json"]));
    assert_eq!(list[0]["name"], "train-config");
    assert_eq!(list[0]["keys"], json!(["epochs", "settings.json"]));
    let table = ok(&home, &["configmap", "list"]);
    assert!(
        table.lines().nth(1).unwrap().starts_with("train-config "),
        "{table}"
    );

    refused(
        &home,
        &[
            "configmap",
            "create",
            "train-config",
            "--from-literal",
            "epochs=5",
        ],
        "config map \"train-config\" already exists",
    );
    ok(
        &home,
        &[
            "configmap",
            "create",
            "train-config",
            "--from-literal",
            "epochs=5",
            "--replace",
        ],
    );
    let got = json_of(&ok(
        &home,
        &["configmap", "get", "train-config", "--output", "json"],
    ));
    assert_eq!(got["data"], json!({"epochs": "5"}));

    refused(
        &home,
        &[
            "configmap",
            "create",
            "bin",
            "--from-file",
            binary.to_str().unwrap(),
        ],
        "the value of key \"blob.bin\" of config map \"bin\" is not UTF-8 text",
    );
    refused(
        &home,
        &["configmap", "get", "missing"],
        "config map \"missing\" not found",
    );
    refused(
        &home,
        &["configmap", "get", "Missing"],
        "invalid config map name \"Missing\"",
    );
    ok(&home, &["configmap", "delete", "train-config"]);
    refused(
        &home,
        &["configmap", "delete", "train-config"],
        "config map \"train-config\" not found",
    );
    assert_eq!(
        json_of(&ok(&home, &["configmap", "list", "--output", "json"])),
        json!([])
    );
}
