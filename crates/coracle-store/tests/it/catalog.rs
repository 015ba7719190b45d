use coracle_store::listing::ListRequest;
use coracle_store::run_api::{RunApiFields, StorageState};
use coracle_store::{
    DEFAULT_EXPERIMENT_NAME, Error, ExperimentRecord, PipelineRecord, PipelineVersionRecord, Store,
};
use serde_json::json;

use crate::common::{run, temp_store, time};

pub fn pipeline(id: &str, name: &str, created_at: &str) -> PipelineRecord {
    PipelineRecord {
        pipeline_id: id.to_owned(),
        name: name.to_owned(),
        display_name: format!("Display {name}"),
        description: format!("about {name}"),
        namespace: String::new(),
        tags: [("team".to_owned(), "ml".to_owned())].into(),
        created_at: time(created_at),
    }
}

pub fn version(id: &str, pipeline_id: &str, name: &str, created_at: &str) -> PipelineVersionRecord {
    PipelineVersionRecord {
        pipeline_version_id: id.to_owned(),
        pipeline_id: pipeline_id.to_owned(),
        name: name.to_owned(),
        display_name: name.to_uppercase(),
        description: String::new(),
        code_source_url: "https://example.com/src".to_owned(),
        package_url: String::new(),
        tags: Default::default(),
        created_at: time(created_at),
    }
}

pub fn experiment(id: &str, name: &str, created_at: &str) -> ExperimentRecord {
    ExperimentRecord {
        experiment_id: id.to_owned(),
        display_name: name.to_owned(),
        description: String::new(),
        namespace: String::new(),
        storage_state: StorageState::Available,
        created_at: time(created_at),
        last_run_created_at: None,
    }
}

fn first_page() -> ListRequest {
    ListRequest {
        page_size: 100,
        page_token: None,
        sort: None,
        filter: vec![],
    }
}

fn spec() -> serde_json::Value {
    json!({"pipelineInfo": {"name": "p"}, "root": {"dag": {"tasks": {}}}})
}

#[tokio::test]
async fn a_pipeline_and_its_first_version_round_trip() {
    let (_directory, store) = temp_store().await;
    let p = pipeline("p1", "adder", "2024-05-01T12:00:00Z");
    let v = version("v1", "p1", "adder", "2024-05-01T12:00:00Z");
    store
        .insert_pipeline(&p, Some((&v, &spec())))
        .await
        .unwrap();

    assert_eq!(store.get_pipeline("p1").await.unwrap(), Some(p.clone()));
    assert_eq!(store.get_pipeline("p2").await.unwrap(), None);
    assert_eq!(
        store.get_pipeline_by_name("", "adder").await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        store.get_pipeline_by_name("other", "adder").await.unwrap(),
        None
    );
    assert_eq!(
        store.get_pipeline_version("p1", "v1").await.unwrap(),
        Some((v.clone(), spec()))
    );
    // A version is found only under its own pipeline.
    assert_eq!(store.get_pipeline_version("p2", "v1").await.unwrap(), None);
    let page = store
        .list_pipeline_versions("p1", &first_page())
        .await
        .unwrap();
    assert_eq!(page.items, vec![v]);
    assert_eq!(page.total_size, 1);
}

#[tokio::test]
async fn names_are_unique_and_a_failed_insert_stores_nothing() {
    let (_directory, store) = temp_store().await;
    let p = pipeline("p1", "adder", "2024-05-01T12:00:00Z");
    store.insert_pipeline(&p, None).await.unwrap();

    // Same name, other id: refused, and its version is not stored either.
    let clash = pipeline("p2", "adder", "2024-05-01T12:00:01Z");
    let v = version("v2", "p2", "first", "2024-05-01T12:00:01Z");
    let error = store
        .insert_pipeline(&clash, Some((&v, &spec())))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::AlreadyExists { kind: "pipeline", id } if id == "adder"),
        "{error:?}"
    );
    assert_eq!(store.get_pipeline("p2").await.unwrap(), None);
    assert_eq!(store.get_pipeline_version("p2", "v2").await.unwrap(), None);

    // The same name in another namespace is another pipeline.
    let mut elsewhere = clash.clone();
    elsewhere.namespace = "team-b".to_owned();
    store.insert_pipeline(&elsewhere, None).await.unwrap();

    // Version names are unique within their pipeline.
    store
        .insert_pipeline_version(&version("v1", "p1", "one", "2024-05-01T12:00:02Z"), &spec())
        .await
        .unwrap();
    let error = store
        .insert_pipeline_version(&version("v3", "p1", "one", "2024-05-01T12:00:03Z"), &spec())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::AlreadyExists { kind: "pipeline version", id } if id == "one"),
        "{error:?}"
    );
    store
        .insert_pipeline_version(&version("v3", "p2", "one", "2024-05-01T12:00:03Z"), &spec())
        .await
        .unwrap();
    // A version of an unknown pipeline.
    let error = store
        .insert_pipeline_version(&version("v4", "nope", "x", "2024-05-01T12:00:03Z"), &spec())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::NotFound { kind: "pipeline", id } if id == "nope"),
        "{error:?}"
    );
}

#[tokio::test]
async fn deleting_a_pipeline_with_versions_needs_cascade() {
    let (_directory, store) = temp_store().await;
    let p = pipeline("p1", "adder", "2024-05-01T12:00:00Z");
    let v = version("v1", "p1", "adder", "2024-05-01T12:00:00Z");
    store
        .insert_pipeline(&p, Some((&v, &spec())))
        .await
        .unwrap();

    let error = store.delete_pipeline("p1", false).await.unwrap_err();
    match error {
        Error::FailedPrecondition(message) => {
            assert!(message.contains("has 1 version"), "{message}");
            assert!(message.contains("cascade=true"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(store.get_pipeline("p1").await.unwrap().is_some());

    store.delete_pipeline_version("p1", "v1").await.unwrap();
    assert!(matches!(
        store.delete_pipeline_version("p1", "v1").await,
        Err(Error::NotFound {
            kind: "pipeline version",
            ..
        })
    ));
    store.delete_pipeline("p1", false).await.unwrap();
    assert!(matches!(
        store.delete_pipeline("p1", false).await,
        Err(Error::NotFound {
            kind: "pipeline",
            ..
        })
    ));

    // With cascade, the versions and their specs go too.
    store
        .insert_pipeline(&p, Some((&v, &spec())))
        .await
        .unwrap();
    store.delete_pipeline("p1", true).await.unwrap();
    assert_eq!(store.get_pipeline_version("p1", "v1").await.unwrap(), None);
    assert!(matches!(
        store.list_pipeline_versions("p1", &first_page()).await,
        Err(Error::NotFound {
            kind: "pipeline",
            ..
        })
    ));
    // The name is free again.
    store
        .insert_pipeline(&p, Some((&v, &spec())))
        .await
        .unwrap();
}

#[tokio::test]
async fn experiments_round_trip_and_names_are_unique() {
    let (_directory, store) = temp_store().await;
    let e = experiment("e1", "exp", "2024-05-01T12:00:00Z");
    store.insert_experiment(&e).await.unwrap();
    assert_eq!(store.get_experiment("e1").await.unwrap(), Some(e.clone()));
    let error = store
        .insert_experiment(&experiment("e2", "exp", "2024-05-01T12:00:00Z"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::AlreadyExists { kind: "experiment", id } if id == "exp"),
        "{error:?}"
    );
    store.delete_experiment("e1").await.unwrap();
    assert_eq!(store.get_experiment("e1").await.unwrap(), None);
    assert!(matches!(
        store.delete_experiment("e1").await,
        Err(Error::NotFound {
            kind: "experiment",
            ..
        })
    ));
}

async fn insert_run_in(store: &Store, run_id: &str, experiment_id: &str, created_at: &str) {
    let api = RunApiFields {
        experiment_id: Some(experiment_id.to_owned()),
        ..RunApiFields::default()
    };
    store
        .insert_api_run(&run(run_id, created_at), &api)
        .await
        .unwrap();
}

async fn run_storage_state(store: &Store, run_id: &str) -> StorageState {
    store
        .get_api_run(run_id)
        .await
        .unwrap()
        .unwrap()
        .api
        .storage_state
}

#[tokio::test]
async fn archiving_an_experiment_archives_its_runs_and_unarchiving_only_itself() {
    let (_directory, store) = temp_store().await;
    store
        .insert_experiment(&experiment("e1", "one", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    store
        .insert_experiment(&experiment("e2", "two", "2024-05-01T12:00:00Z"))
        .await
        .unwrap();
    insert_run_in(&store, "r1", "e1", "2024-05-01T12:01:00Z").await;
    insert_run_in(&store, "r2", "e1", "2024-05-01T12:03:00Z").await;
    insert_run_in(&store, "r3", "e2", "2024-05-01T12:02:00Z").await;

    // The newest run's time, read from the runs.
    let e1 = store.get_experiment("e1").await.unwrap().unwrap();
    assert_eq!(e1.last_run_created_at, Some(time("2024-05-01T12:03:00Z")));

    store
        .set_experiment_storage_state("e1", StorageState::Archived)
        .await
        .unwrap();
    let e1 = store.get_experiment("e1").await.unwrap().unwrap();
    assert_eq!(e1.storage_state, StorageState::Archived);
    assert_eq!(
        run_storage_state(&store, "r1").await,
        StorageState::Archived
    );
    assert_eq!(
        run_storage_state(&store, "r2").await,
        StorageState::Archived
    );
    assert_eq!(
        run_storage_state(&store, "r3").await,
        StorageState::Available
    );

    store
        .set_experiment_storage_state("e1", StorageState::Available)
        .await
        .unwrap();
    let e1 = store.get_experiment("e1").await.unwrap().unwrap();
    assert_eq!(e1.storage_state, StorageState::Available);
    assert_eq!(
        run_storage_state(&store, "r1").await,
        StorageState::Archived
    );

    assert!(matches!(
        store
            .set_experiment_storage_state("nope", StorageState::Archived)
            .await,
        Err(Error::NotFound {
            kind: "experiment",
            ..
        })
    ));
}

#[tokio::test]
async fn the_default_experiment_is_made_once() {
    let (_directory, store) = temp_store().await;
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.default_experiment_id().await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for handle in handles {
        ids.push(handle.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let default = store.get_experiment(&ids[0]).await.unwrap().unwrap();
    assert_eq!(default.display_name, DEFAULT_EXPERIMENT_NAME);
    assert_eq!(default.namespace, "");
    assert_eq!(store.default_experiment_id().await.unwrap(), ids[0]);
    let page = store.list_experiments(None, &first_page()).await.unwrap();
    assert_eq!(page.total_size, 1);
}
