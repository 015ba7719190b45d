//! Volumes, secrets and config maps: roundtrips, create vs replace, name and key checks, and
//! listings that never carry secret values.

use std::collections::BTreeMap;
use std::path::Path;

use coracle_store::resources::{validate_key, validate_name};
use coracle_store::{Error, Store, VolumeRecord, volume_dir};

use crate::common::{db_path, temp_store, time};

fn volume(name: &str) -> VolumeRecord {
    VolumeRecord {
        name: name.to_owned(),
        created_at: time("2024-05-01T12:00:00.123456789Z"),
        created_by_run: Some("run-1".to_owned()),
        size: Some("1Gi".to_owned()),
        access_modes: vec!["ReadWriteOnce".to_owned(), "ReadOnlyMany".to_owned()],
        storage_class: Some("standard".to_owned()),
        annotations: BTreeMap::from([
            ("note".to_owned(), "naïve ✓".to_owned()),
            ("owner".to_owned(), "team-a".to_owned()),
        ]),
    }
}

fn secret(entries: &[(&str, &[u8])]) -> BTreeMap<String, Vec<u8>> {
    entries
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.to_vec()))
        .collect()
}

fn config(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn invalid_argument(error: Error) -> String {
    match error {
        Error::InvalidArgument(message) => message,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn volume_dir_is_under_home_volumes() {
    assert_eq!(
        volume_dir(Path::new("/data/coracle"), "my-vol"),
        Path::new("/data/coracle/volumes/my-vol")
    );
}

#[tokio::test]
async fn volume_roundtrip_list_and_delete() {
    let (_directory, store) = temp_store().await;
    let full = volume("data.v1");
    let bare = VolumeRecord {
        name: "a-scratch".to_owned(),
        created_by_run: None,
        size: None,
        access_modes: Vec::new(),
        storage_class: None,
        annotations: BTreeMap::new(),
        ..volume("x")
    };
    store.create_volume(&full).await.unwrap();
    store.create_volume(&bare).await.unwrap();

    assert_eq!(
        store.get_volume("data.v1").await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        store.get_volume("a-scratch").await.unwrap(),
        Some(bare.clone())
    );
    assert_eq!(store.get_volume("missing").await.unwrap(), None);
    assert_eq!(
        store.list_volumes().await.unwrap(),
        vec![bare, full.clone()]
    );

    assert!(store.delete_volume("a-scratch").await.unwrap());
    assert!(!store.delete_volume("a-scratch").await.unwrap());
    assert_eq!(store.list_volumes().await.unwrap(), vec![full]);
}

#[tokio::test]
async fn creating_a_volume_twice_is_already_exists() {
    let (_directory, store) = temp_store().await;
    store.create_volume(&volume("shared")).await.unwrap();
    let mut again = volume("shared");
    again.size = Some("5Gi".to_owned());
    match store.create_volume(&again).await {
        Err(Error::AlreadyExists { kind, id }) => {
            assert_eq!((kind, id.as_str()), ("volume", "shared"));
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    // The first one is untouched.
    let stored = store.get_volume("shared").await.unwrap().unwrap();
    assert_eq!(stored.size.as_deref(), Some("1Gi"));
}

#[tokio::test]
async fn bad_volume_fields_are_refused_and_nothing_is_written() {
    let (_directory, store) = temp_store().await;
    let mut bad_size = volume("v");
    bad_size.size = Some("1GB".to_owned());
    let message = invalid_argument(store.create_volume(&bad_size).await.unwrap_err());
    assert!(
        message.contains("invalid size \"1GB\" of volume \"v\""),
        "{message}"
    );

    let mut bad_mode = volume("v");
    bad_mode.access_modes = vec!["ReadWriteSometimes".to_owned()];
    let message = invalid_argument(store.create_volume(&bad_mode).await.unwrap_err());
    assert!(
        message.contains("invalid access mode \"ReadWriteSometimes\" of volume \"v\"")
            && message.contains("ReadWriteOncePod"),
        "{message}"
    );

    let message = invalid_argument(store.create_volume(&volume("Data")).await.unwrap_err());
    assert!(
        message.starts_with("invalid volume name \"Data\""),
        "{message}"
    );
    assert!(store.list_volumes().await.unwrap().is_empty());

    for size in ["1Gi", "500Mi", "10G", "1.5Ti", "1e9", "+2k", "100"] {
        let mut ok = volume(&format!("ok-{}", store.list_volumes().await.unwrap().len()));
        ok.size = Some(size.to_owned());
        store
            .create_volume(&ok)
            .await
            .unwrap_or_else(|e| panic!("{size}: {e}"));
    }
    for size in ["", "Gi", "1 Gi", "1GB", "-1Gi", "1.2.3", "1e", "one"] {
        let mut bad = volume("bad");
        bad.size = Some(size.to_owned());
        assert!(
            matches!(
                store.create_volume(&bad).await,
                Err(Error::InvalidArgument(_))
            ),
            "size {size:?} was accepted"
        );
    }
}

#[test]
fn name_validation_says_what_is_wrong_with_which_name() {
    for good in [
        "a",
        "0",
        "my-secret",
        "db.prod-1",
        "a.b.c",
        &"x".repeat(253),
    ] {
        validate_name("secret", good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
    }
    let cases = [
        ("", "invalid secret name \"\": it is empty"),
        (
            "My-Secret",
            "invalid secret name \"My-Secret\": 'M' at position 1 is not allowed (names are \
             lowercase): use lowercase letters, digits, '-' and '.'",
        ),
        (
            "my_secret",
            "invalid secret name \"my_secret\": '_' at position 3 is not allowed: use lowercase \
             letters, digits, '-' and '.'",
        ),
        (
            "-db",
            "invalid secret name \"-db\": it must start and end with a lowercase letter or digit",
        ),
        (
            "db.",
            "invalid secret name \"db.\": it must start and end with a lowercase letter or digit",
        ),
        (
            "db..prod",
            "invalid secret name \"db..prod\": each '.'-separated part must start and end with a \
             lowercase letter or digit",
        ),
        (
            "db.-prod",
            "invalid secret name \"db.-prod\": each '.'-separated part must start and end with a \
             lowercase letter or digit",
        ),
        (
            "a/b",
            "invalid secret name \"a/b\": '/' at position 2 is not allowed",
        ),
    ];
    for (name, expected) in cases {
        let message = invalid_argument(validate_name("secret", name).unwrap_err());
        assert!(message.starts_with(expected), "{name:?}: {message}");
    }
    let long = "y".repeat(254);
    let message = invalid_argument(validate_name("config map", &long).unwrap_err());
    assert!(
        message.starts_with("invalid config map name \"yyyy")
            && message.contains("…\": it has 254 characters, at most 253 are allowed"),
        "{message}"
    );
}

#[test]
fn key_validation_follows_kubernetes_config_keys() {
    for good in [
        "a",
        "A_b-c.d",
        "config.json",
        ".hidden",
        "x".repeat(253).as_str(),
    ] {
        validate_key("secret", "s", good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
    }
    let cases = [
        ("", "invalid key in secret \"s\": it is empty"),
        (
            "a b",
            "invalid key \"a b\" in secret \"s\": ' ' at position 2 is not allowed: use letters, \
             digits, '-', '_' and '.'",
        ),
        (
            "a/b",
            "invalid key \"a/b\" in secret \"s\": '/' at position 2",
        ),
        (
            ".",
            "invalid key \".\" in secret \"s\": it must not be '.' or start with '..'",
        ),
        (
            "..data",
            "invalid key \"..data\" in secret \"s\": it must not be '.'",
        ),
    ];
    for (key, expected) in cases {
        let message = invalid_argument(validate_key("secret", "s", key).unwrap_err());
        assert!(message.starts_with(expected), "{key:?}: {message}");
    }
    assert!(validate_key("secret", "s", &"x".repeat(254)).is_err());
}

#[tokio::test]
async fn secrets_roundtrip_binary_values_exactly() {
    let (_directory, store) = temp_store().await;
    let all_bytes: Vec<u8> = (0..=255).collect();
    let data = secret(&[
        ("password", b"hunter2"),
        ("binary", &all_bytes),
        ("empty", b""),
        ("not-utf8", &[0xff, 0xfe, 0x00, 0x80]),
        ("multi.line", b"line 1\nline 2\n"),
    ]);
    assert!(!store.put_secret("db", &data, false).await.unwrap());
    assert_eq!(store.get_secret("db").await.unwrap(), Some(data));
    assert_eq!(store.get_secret("other").await.unwrap(), None);
}

#[tokio::test]
async fn putting_a_secret_again_needs_replace_and_replaces_it_whole() {
    let (_directory, store) = temp_store().await;
    store
        .put_secret(
            "api",
            &secret(&[("token", b"first"), ("user", b"me")]),
            false,
        )
        .await
        .unwrap();
    let before = store.list_secrets().await.unwrap().remove(0);

    match store
        .put_secret("api", &secret(&[("token", b"second")]), false)
        .await
    {
        Err(error @ Error::AlreadyExists { .. }) => {
            assert_eq!(error.to_string(), "secret \"api\" already exists");
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(
        store.get_secret("api").await.unwrap(),
        Some(secret(&[("token", b"first"), ("user", b"me")])),
        "a refused put changes nothing"
    );

    assert!(
        store
            .put_secret("api", &secret(&[("token", b"second")]), true)
            .await
            .unwrap(),
        "put with replace says it replaced one"
    );
    assert_eq!(
        store.get_secret("api").await.unwrap(),
        Some(secret(&[("token", b"second")])),
        "keys not given again are gone"
    );
    let after = store.list_secrets().await.unwrap().remove(0);
    assert_eq!(after.created_at, before.created_at);
    assert!(
        after.updated_at > before.updated_at,
        "{after:?} vs {before:?}"
    );
    assert_eq!(after.keys, vec!["token"]);

    // Replace also creates.
    assert!(
        !store
            .put_secret("fresh", &secret(&[("k", b"v")]), true)
            .await
            .unwrap()
    );
    assert!(store.get_secret("fresh").await.unwrap().is_some());
}

#[tokio::test]
async fn bad_secret_names_and_keys_write_nothing_and_never_quote_values() {
    let (_directory, store) = temp_store().await;
    let value: &[u8] = b"s3cr3t-value";
    let error = store
        .put_secret("Bad_Name", &secret(&[("k", value)]), false)
        .await
        .unwrap_err();
    let message = invalid_argument(error);
    assert!(
        message.starts_with("invalid secret name \"Bad_Name\""),
        "{message}"
    );
    assert!(!message.contains("s3cr3t"), "{message}");

    let error = store
        .put_secret("good", &secret(&[("ok", b"x"), ("bad key", value)]), false)
        .await
        .unwrap_err();
    let message = invalid_argument(error);
    assert!(
        message.starts_with("invalid key \"bad key\" in secret \"good\""),
        "{message}"
    );
    assert!(!message.contains("s3cr3t"), "{message}");
    assert!(store.list_secrets().await.unwrap().is_empty());
    assert_eq!(store.get_secret("good").await.unwrap(), None);
}

#[tokio::test]
async fn secret_listings_carry_names_and_keys_only() {
    let (directory, store) = temp_store().await;
    store
        .put_secret(
            "b-creds",
            &secret(&[("zeta", b"VALUE-ONE"), ("alpha", b"VALUE-TWO")]),
            false,
        )
        .await
        .unwrap();
    store
        .put_secret("a-creds", &secret(&[("token", b"VALUE-THREE")]), false)
        .await
        .unwrap();
    let listed = store.list_secrets().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a-creds", "b-creds"]);
    assert_eq!(listed[1].keys, ["alpha", "zeta"]);
    assert_eq!(listed[0].keys, ["token"]);
    let shown = format!("{listed:?}");
    assert!(!shown.contains("VALUE"), "{shown}");

    // The values are in the secrets table and nowhere else in the database.
    store.close().await;
    let bytes = std::fs::read(db_path(&directory)).unwrap();
    let wal = std::fs::read(directory.path().join("coracle.db-wal")).unwrap_or_default();
    let reopened = Store::open(&db_path(&directory)).await.unwrap();
    assert_eq!(reopened.list_secrets().await.unwrap().len(), 2);
    // The rows are in these files (the check below would see plain text), and stored as
    // base64, so the plain text is not in them.
    assert!(
        [&bytes, &wal]
            .iter()
            .any(|file| file.windows(7).any(|w| w == b"b-creds")),
        "the secret rows are not in the files read"
    );
    for file in [&bytes, &wal] {
        assert!(
            !file.windows(9).any(|w| w == b"VALUE-ONE"),
            "a secret value is stored in plain text"
        );
    }
}

#[tokio::test]
async fn deleting_secrets_and_config_maps() {
    let (_directory, store) = temp_store().await;
    store
        .put_secret("s", &secret(&[("k", b"v")]), false)
        .await
        .unwrap();
    store
        .put_config_map("s", &config(&[("k", "v")]), false)
        .await
        .unwrap();
    // A secret and a config map may share a name; deleting one leaves the other.
    assert!(store.delete_secret("s").await.unwrap());
    assert!(!store.delete_secret("s").await.unwrap());
    assert_eq!(store.get_secret("s").await.unwrap(), None);
    assert_eq!(
        store.get_config_map("s").await.unwrap(),
        Some(config(&[("k", "v")]))
    );
    assert!(store.delete_config_map("s").await.unwrap());
    assert!(!store.delete_config_map("s").await.unwrap());
    assert!(store.list_config_maps().await.unwrap().is_empty());
}

#[tokio::test]
async fn config_maps_roundtrip_replace_and_list() {
    let (_directory, store) = temp_store().await;
    let data = config(&[
        ("settings.json", "{\"a\": 1}\n"),
        ("greeting", "héllo ✓"),
        ("empty", ""),
    ]);
    assert!(!store.put_config_map("app", &data, false).await.unwrap());
    assert_eq!(store.get_config_map("app").await.unwrap(), Some(data));
    assert_eq!(store.get_config_map("nope").await.unwrap(), None);

    match store
        .put_config_map("app", &config(&[("x", "y")]), false)
        .await
    {
        Err(Error::AlreadyExists { kind, id }) => {
            assert_eq!((kind, id.as_str()), ("config map", "app"));
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert!(
        store
            .put_config_map("app", &config(&[("x", "y")]), true)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_config_map("app").await.unwrap(),
        Some(config(&[("x", "y")]))
    );
    let listed = store.list_config_maps().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), listed[0].keys.clone()),
        ("app", vec!["x".to_owned()])
    );
    assert!(listed[0].updated_at >= listed[0].created_at);

    let message = invalid_argument(
        store
            .put_config_map("app", &config(&[("a:b", "v")]), true)
            .await
            .unwrap_err(),
    );
    assert!(
        message.starts_with("invalid key \"a:b\" in config map \"app\""),
        "{message}"
    );
}

#[tokio::test]
async fn a_resource_written_by_one_store_is_seen_by_another_on_the_same_file() {
    let (directory, first) = temp_store().await;
    let second = Store::open(&db_path(&directory)).await.unwrap();
    first.create_volume(&volume("shared")).await.unwrap();
    first
        .put_secret("s", &secret(&[("k", b"v")]), false)
        .await
        .unwrap();
    assert!(second.get_volume("shared").await.unwrap().is_some());
    assert_eq!(
        second.get_secret("s").await.unwrap(),
        Some(secret(&[("k", b"v")]))
    );
    assert!(matches!(
        second.put_secret("s", &secret(&[("k", b"w")]), false).await,
        Err(Error::AlreadyExists { .. })
    ));
}

#[tokio::test]
async fn corrupt_secret_data_is_reported_without_its_text() {
    let (directory, store) = temp_store().await;
    store
        .put_secret("s", &secret(&[("k", b"v")]), false)
        .await
        .unwrap();
    store.close().await;
    // Edit the row by hand, as a broken tool might: a value that is not base64.
    {
        use sqlx::Connection;
        let url = format!("sqlite://{}", db_path(&directory).display());
        let mut connection = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE secrets SET data = '{\"k\": \"plain!text*leak\"}'")
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.unwrap();
    }
    let store = Store::open(&db_path(&directory)).await.unwrap();
    let error = store.get_secret("s").await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::InvalidData { .. }), "{message}");
    assert!(
        message.contains("secrets.data of secret \"s\"") && message.contains("key \"k\""),
        "{message}"
    );
    assert!(
        !message.contains("leak") && !message.contains('!'),
        "{message}"
    );
}

#[tokio::test]
async fn data_is_limited_to_one_mebibyte_as_in_kubernetes() {
    let (_directory, store) = temp_store().await;
    // Keys count too: "k" plus a value one byte short of the limit fits exactly.
    let fits = vec![b'x'; (1 << 20) - 1];
    store
        .put_secret("big", &secret(&[("k", &fits)]), false)
        .await
        .unwrap();
    let too_big = vec![b'x'; 1 << 20];
    let message = invalid_argument(
        store
            .put_secret("bigger", &secret(&[("k", &too_big)]), false)
            .await
            .unwrap_err(),
    );
    assert_eq!(
        message,
        "secret \"bigger\" holds 1048577 bytes of keys and values; at most 1048576 (1 MiB) are \
         allowed, as in Kubernetes"
    );
    let text = "y".repeat(1 << 20);
    assert!(matches!(
        store
            .put_config_map("big", &config(&[("k", &text)]), false)
            .await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(store.get_secret("bigger").await.unwrap(), None);
    assert_eq!(store.get_config_map("big").await.unwrap(), None);
}
