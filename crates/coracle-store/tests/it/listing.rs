//! Listing through the catalog's collections: pages, orders, filters, scopes and bad
//! arguments, against a real database.

use coracle_store::listing::{FilterValue, ListRequest, Op, Predicate, Sort};
use coracle_store::{Error, ExperimentRecord, Store};
use serde_json::json;

use crate::catalog::{experiment, pipeline, version};
use crate::common::temp_store;

fn request(page_size: u32, sort: Option<(&str, bool)>, filter: Vec<Predicate>) -> ListRequest {
    ListRequest {
        page_size,
        page_token: None,
        sort: sort.map(|(key, descending)| Sort {
            key: key.to_owned(),
            descending,
        }),
        filter,
    }
}

fn predicate(key: &str, op: Op, value: FilterValue) -> Predicate {
    Predicate {
        key: key.to_owned(),
        op,
        value,
    }
}

/// 25 experiments: `exp-00` … `exp-24`, one second apart, names in the reverse order of
/// creation for every third one so that name order differs from time order.
async fn store_with_experiments() -> (tempfile::TempDir, Store) {
    let (directory, store) = temp_store().await;
    for i in 0..25 {
        let name = if i % 3 == 0 {
            format!("z-exp-{:02}", 24 - i)
        } else {
            format!("exp-{i:02}")
        };
        let mut record = experiment(
            &format!("e{i:02}"),
            &name,
            &format!("2024-05-01T12:00:{i:02}Z"),
        );
        record.namespace = if i % 2 == 0 { "even" } else { "odd" }.to_owned();
        store.insert_experiment(&record).await.unwrap();
    }
    (directory, store)
}

/// Every page, as ids; asserts the totals agree and the last token is empty.
async fn walk(
    store: &Store,
    namespace: Option<&str>,
    mut request: ListRequest,
) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.list_experiments(namespace, &request).await.unwrap();
        pages += 1;
        ids.extend(
            page.items
                .iter()
                .map(|e: &ExperimentRecord| e.experiment_id.clone()),
        );
        if page.next_page_token.is_empty() {
            assert_eq!(page.total_size as usize, ids.len());
            return (ids, pages);
        }
        assert_eq!(page.items.len(), request.page_size as usize);
        request.page_token = Some(page.next_page_token);
    }
}

#[tokio::test]
async fn default_order_is_newest_first_in_pages() {
    let (_directory, store) = store_with_experiments().await;
    let (ids, pages) = walk(&store, None, request(10, None, vec![])).await;
    let expected: Vec<String> = (0..25).rev().map(|i| format!("e{i:02}")).collect();
    assert_eq!(ids, expected);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn sorted_by_name_both_ways() {
    let (_directory, store) = store_with_experiments().await;
    let all = store
        .list_experiments(None, &request(200, None, vec![]))
        .await
        .unwrap();
    let mut by_name: Vec<(String, String)> = all
        .items
        .iter()
        .map(|e| (e.display_name.clone(), e.experiment_id.clone()))
        .collect();
    by_name.sort();
    let ascending: Vec<String> = by_name.iter().map(|(_, id)| id.clone()).collect();
    // `name` is the display name's other key.
    for key in ["display_name", "name"] {
        let (ids, _) = walk(&store, None, request(4, Some((key, false)), vec![])).await;
        assert_eq!(ids, ascending);
        let (ids, _) = walk(&store, None, request(4, Some((key, true)), vec![])).await;
        let mut descending = ascending.clone();
        descending.reverse();
        assert_eq!(ids, descending);
    }
}

#[tokio::test]
async fn filters_and_namespace_scope_apply_to_pages_and_total() {
    let (_directory, store) = store_with_experiments().await;
    // The way `kfp.Client.get_experiment(experiment_name=…)` looks one up.
    let page = store
        .list_experiments(
            None,
            &request(
                20,
                None,
                vec![predicate(
                    "display_name",
                    Op::Equals,
                    FilterValue::String("exp-04".into()),
                )],
            ),
        )
        .await
        .unwrap();
    assert_eq!(page.total_size, 1);
    assert_eq!(page.items[0].experiment_id, "e04");

    // Substring, within a namespace, in pages of 2.
    let (ids, _) = walk(
        &store,
        Some("odd"),
        request(
            2,
            Some(("created_at", false)),
            vec![predicate(
                "display_name",
                Op::IsSubstring,
                FilterValue::String("Z-EXP".into()),
            )],
        ),
    )
    .await;
    // Odd i with i % 3 == 0: 3, 9, 15, 21.
    assert_eq!(ids, ["e03", "e09", "e15", "e21"]);

    let (ids, _) = walk(
        &store,
        None,
        request(
            3,
            None,
            vec![
                predicate(
                    "created_at",
                    Op::GreaterThanEquals,
                    FilterValue::Timestamp("2024-05-01T12:00:20Z".parse().unwrap()),
                ),
                predicate(
                    "experiment_id",
                    Op::In,
                    FilterValue::Strings(vec!["e21".into(), "e05".into(), "e23".into()]),
                ),
            ],
        ),
    )
    .await;
    assert_eq!(ids, ["e23", "e21"]);

    let none = store
        .list_experiments(Some("nobody"), &request(5, None, vec![]))
        .await
        .unwrap();
    assert_eq!((none.items.len(), none.total_size), (0, 0));
    assert_eq!(none.next_page_token, "");
}

#[tokio::test]
async fn bad_keys_values_and_tokens_are_invalid_arguments() {
    let (_directory, store) = store_with_experiments().await;
    let message = |error: Error| match error {
        Error::InvalidArgument(message) => message,
        other => panic!("{other:?}"),
    };
    let error = store
        .list_experiments(None, &request(5, Some(("colour", true)), vec![]))
        .await
        .unwrap_err();
    assert!(message(error).starts_with("cannot sort experiments by \"colour\""));
    let error = store
        .list_experiments(
            None,
            &request(
                5,
                None,
                vec![predicate("created_at", Op::Equals, FilterValue::Bool(true))],
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(
        message(error),
        "filter on \"created_at\" (EQUALS timestamp): a timestamp key cannot be compared with a \
         bool_value"
    );
    let mut bad = request(5, None, vec![]);
    bad.page_token = Some("not-a-token".into());
    let error = store.list_experiments(None, &bad).await.unwrap_err();
    assert!(message(error).starts_with("invalid page_token"));

    // A token of one collection is refused by another.
    let page = store
        .list_experiments(None, &request(5, None, vec![]))
        .await
        .unwrap();
    let mut other = request(5, None, vec![]);
    other.page_token = Some(page.next_page_token);
    let error = store.list_pipelines(None, &other).await.unwrap_err();
    assert!(message(error).contains("a token of the experiments list, not of pipelines"));
}

#[tokio::test]
async fn versions_are_listed_per_pipeline() {
    let (_directory, store) = temp_store().await;
    let spec = json!({"pipelineInfo": {"name": "p"}});
    for p in ["p1", "p2"] {
        store
            .insert_pipeline(&pipeline(p, p, "2024-05-01T12:00:00Z"), None)
            .await
            .unwrap();
        for i in 0..5 {
            store
                .insert_pipeline_version(
                    &version(
                        &format!("{p}-v{i}"),
                        p,
                        &format!("v{i}"),
                        &format!("2024-05-01T12:00:0{i}Z"),
                    ),
                    &spec,
                )
                .await
                .unwrap();
        }
    }
    let mut request = request(2, Some(("name", false)), vec![]);
    let mut names = Vec::new();
    loop {
        let page = store.list_pipeline_versions("p2", &request).await.unwrap();
        assert_eq!(page.total_size, 5);
        names.extend(page.items.into_iter().map(|v| v.pipeline_version_id));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = Some(page.next_page_token);
    }
    assert_eq!(names, ["p2-v0", "p2-v1", "p2-v2", "p2-v3", "p2-v4"]);

    let pipelines = store
        .list_pipelines(
            None,
            &self::request(
                10,
                None,
                vec![predicate(
                    "name",
                    Op::NotEquals,
                    FilterValue::String("p1".into()),
                )],
            ),
        )
        .await
        .unwrap();
    assert_eq!(pipelines.total_size, 1);
    assert_eq!(pipelines.items[0].pipeline_id, "p2");
}
