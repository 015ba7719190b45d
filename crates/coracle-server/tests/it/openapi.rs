//! The OpenAPI document lists exactly what the router serves: each of its operations gets an
//! answer from a handler, not the router's fallback ("no API route") or a 405.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};

use crate::common::TestServer;

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let server = TestServer::start().await;
    let (status, document) = server.get("/openapi.json").await;
    assert_eq!(status, StatusCode::OK, "{document}");
    assert_eq!(document["openapi"], "3.0.3");
    let paths = document["paths"].as_object().unwrap();
    let mut n_operations = 0;
    for (path, methods) in paths {
        for (method, operation) in methods.as_object().unwrap() {
            n_operations += 1;
            // Path parameters get ids that exist nowhere.
            let mut uri = String::new();
            let mut rest = path.as_str();
            while let Some(start) = rest.find('{') {
                let end = start + rest[start..].find('}').unwrap();
                uri.push_str(&rest[..start]);
                uri.push_str("no-such-id");
                rest = &rest[end + 1..];
            }
            uri.push_str(rest);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = Request::builder().method(method.clone()).uri(&uri);
            let body = if method == Method::POST && operation.get("requestBody").is_some() {
                request = request.header("content-type", "application/json");
                Body::from("{}")
            } else {
                Body::empty()
            };
            let (status, body) = server.send(request.body(body).unwrap()).await;
            let message = body["message"].as_str().unwrap_or_default();
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri}: {body}"
            );
            assert!(
                !(status == StatusCode::NOT_FOUND && message.starts_with("no API route")),
                "{method} {uri} is not routed: {body}"
            );
            assert!(
                status.is_success() || status.is_client_error(),
                "{method} {uri}: {status} {body}"
            );
            if !status.is_success() {
                assert!(
                    body["code"].is_number(),
                    "{method} {uri}: not a KFP error body: {body}"
                );
            }
        }
    }
    assert!(n_operations >= 35, "{n_operations} operations");

    // And the fallback is what it looks like for an undocumented path.
    let (status, body) = server.get("/nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("no API route")
    );
}

#[tokio::test]
async fn answers_the_router_gives_by_itself_carry_the_error_body() {
    let server = TestServer::start().await;
    // healthz serves GET only.
    let (status, body) = server
        .call(
            axum::http::Method::DELETE,
            "/healthz",
            serde_json::Value::Null,
        )
        .await;
    assert_eq!(status, axum::http::StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], 12, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("HTTP method"),
        "{body}"
    );
}
