//! KFP's list parameters through the router: page_size, page_token, sort_by and filter, and
//! the 400s of bad ones.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::common::TestServer;
use crate::pipelines::assert_error;

/// Percent-encodes a query parameter value.
pub fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// 25 experiments, `e-00` … `e-24`, made in that order.
async fn server_with_experiments() -> TestServer {
    let server = TestServer::start().await;
    for i in 0..25 {
        let (status, body) = server
            .post(
                "/experiments",
                json!({"display_name": format!("e-{i:02}"), "description": if i % 2 == 0 { "even" } else { "odd" }}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    server
}

fn names(body: &Value) -> Vec<String> {
    body["experiments"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| e["display_name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every page of `/experiments?{query}`, following next_page_token.
async fn walk(server: &TestServer, query: &str) -> (Vec<String>, usize) {
    let mut all = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let path = if token.is_empty() {
            format!("/experiments?{query}")
        } else {
            format!("/experiments?{query}&page_token={}", encode(&token))
        };
        let (status, body) = server.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        all.extend(names(&body));
        match body.get("next_page_token").and_then(Value::as_str) {
            Some(next) if !next.is_empty() => token = next.to_owned(),
            _ => {
                assert_eq!(body["total_size"].as_u64().unwrap() as usize, all.len());
                return (all, pages);
            }
        }
    }
}

#[tokio::test]
async fn pages_in_the_default_and_requested_orders() {
    let server = server_with_experiments().await;
    let newest_first: Vec<String> = (0..25).rev().map(|i| format!("e-{i:02}")).collect();
    // Default: 20 a page, newest first.
    let (status, first) = server.get("/experiments").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&first), newest_first[..20]);
    assert_eq!(first["total_size"], 25);
    assert!(!first["next_page_token"].as_str().unwrap().is_empty());

    let (all, pages) = walk(&server, "page_size=10").await;
    assert_eq!((all, pages), (newest_first.clone(), 3));
    let (all, _) = walk(&server, "page_size=7&sort_by=display_name").await;
    let mut ascending = newest_first.clone();
    ascending.reverse();
    assert_eq!(all, ascending);
    let (all, _) = walk(&server, "page_size=7&sort_by=name%20desc").await;
    assert_eq!(all, newest_first);
    let (all, pages) = walk(&server, "page_size=0").await;
    assert_eq!((all.len(), pages), (25, 2));
    let (all, pages) = walk(&server, "page_size=1000").await;
    assert_eq!((all.len(), pages), (25, 1));
}

#[tokio::test]
async fn filters_with_every_operation() {
    let server = server_with_experiments().await;
    let check = |filter: Value, expected: Vec<&'static str>| {
        let server = &server;
        async move {
            let query = format!(
                "page_size=3&sort_by=display_name&filter={}",
                encode(&filter.to_string())
            );
            let (all, _) = walk(server, &query).await;
            assert_eq!(all, expected, "{filter}");
        }
    };
    check(
        json!({"predicates": [{"operation": "IN", "key": "display_name", "string_values": {"values": ["e-03", "e-07", "zzz"]}}]}),
        vec!["e-03", "e-07"],
    )
    .await;
    check(
        json!({"predicates": [
            {"operation": "GREATER_THAN_EQUALS", "key": "display_name", "string_value": "e-20"},
            {"operation": "NOT_EQUALS", "key": "description", "string_value": "even"}
        ]}),
        vec!["e-21", "e-23"],
    )
    .await;
    check(
        json!({"predicates": [{"operation": 9, "key": "display_name", "string_value": "-1"}]}),
        vec![
            "e-10", "e-11", "e-12", "e-13", "e-14", "e-15", "e-16", "e-17", "e-18", "e-19",
        ],
    )
    .await;
    check(
        json!({"predicates": [{"operation": "LESS_THAN", "key": "created_at", "timestamp_value": "2000-01-01T00:00:00Z"}]}),
        vec![],
    )
    .await;
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let server = server_with_experiments().await;
    let cases = [
        ("page_size=-1", "invalid page_size -1"),
        ("page_size=ten", "invalid page_size \"ten\""),
        (
            "sort_by=name%20sideways",
            "invalid sort_by \"name sideways\"",
        ),
        ("sort_by=colour", "cannot sort experiments by \"colour\""),
        ("page_token=garbage", "invalid page_token"),
        ("filter=%7Bnot%20json", "invalid filter: not JSON"),
        (
            "filter=%7B%22predicates%22%3A%5B%7B%22operation%22%3A%22EQUAL%22%2C%22key%22%3A%22a%22%2C%22string_value%22%3A%22x%22%7D%5D%7D",
            "invalid filter: predicates[0].operation: unknown operation \"EQUAL\"",
        ),
    ];
    for (query, expected) in cases {
        assert_error(
            &server.get(&format!("/experiments?{query}")).await,
            StatusCode::BAD_REQUEST,
            expected,
        );
    }
    let filter =
        json!({"predicates": [{"operation": "EQUALS", "key": "colour", "string_value": "x"}]});
    assert_error(
        &server
            .get(&format!(
                "/experiments?filter={}",
                encode(&filter.to_string())
            ))
            .await,
        StatusCode::BAD_REQUEST,
        "cannot filter experiments by \"colour\"",
    );
    let filter = json!({"predicates": [{"operation": "EQUALS", "key": "created_at", "string_value": "yesterday"}]});
    assert_error(
        &server
            .get(&format!(
                "/experiments?filter={}",
                encode(&filter.to_string())
            ))
            .await,
        StatusCode::BAD_REQUEST,
        "filter on \"created_at\"",
    );
    // The same errors on pipelines and versions.
    assert_error(
        &server.get("/pipelines?sort_by=colour").await,
        StatusCode::BAD_REQUEST,
        "cannot sort pipelines by \"colour\"",
    );
    // A token of experiments does not page pipelines.
    let (_, first) = server.get("/experiments?page_size=2").await;
    let token = first["next_page_token"].as_str().unwrap();
    assert_error(
        &server
            .get(&format!("/pipelines?page_token={}", encode(token)))
            .await,
        StatusCode::BAD_REQUEST,
        "a token of the experiments list",
    );
}
