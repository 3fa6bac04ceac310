//! The OpenAPI document: served, OpenAPI 3, and listing exactly the routes the router serves
//! (so a route added without its doc fails here); Swagger UI served from compiled-in assets.

use std::collections::BTreeSet;

use awc::http::Method;
use serde_json::Value;
use tributary::api::BASE_PATH;

use super::Api;

impl Api {
    /// A GET at the server's root (outside the API's base path): status, content type, body.
    async fn get_root(&self, path: &str) -> (u16, String, Vec<u8>) {
        let root = self.app.base.trim_end_matches(BASE_PATH);
        let mut response = self
            .client
            .get(format!("{root}{path}"))
            .send()
            .await
            .expect("request");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = response.body().limit(16 * 1024 * 1024).await.expect("body");
        (response.status().as_u16(), content_type, body.to_vec())
    }
}

#[actix_rt::test]
async fn the_document_lists_exactly_the_routes_served() {
    let api = Api::start().await;
    let (status, _, body) = api.get_root("/openapi.json").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_slice(&body).expect("the document is JSON");
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let methods = item.as_object().expect("path item").keys();
            methods
                .filter(|m| ["get", "post", "put", "patch", "delete"].contains(&m.as_str()))
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = tributary::api::served()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path))
        .collect();
    assert_eq!(documented, served, "documented (left) vs served (right)");

    for (method, path) in &documented {
        let op = &paths[path][method.to_lowercase()];
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no success"
        );
        assert!(
            responses.contains_key("4XX"),
            "{method} {path}: no error body"
        );
        // Every `{parameter}` of the path is documented as a path parameter.
        let params: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let in_path: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(params, in_path, "{method} {path}");

        // The router answers it (whatever the verdict on the made-up values), never a miss.
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "x" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let relative = concrete.strip_prefix(BASE_PATH).unwrap_or(&concrete);
        let request = api.raw(Method::from_bytes(method.as_bytes()).expect("method"), "");
        let root = api.app.base.trim_end_matches(BASE_PATH);
        let url = if concrete.starts_with(BASE_PATH) {
            format!("{}{relative}", api.app.base)
        } else {
            format!("{root}{concrete}")
        };
        let reply = api.send_raw(request.uri(url.as_str()), Vec::new()).await;
        let message = reply.body["errorMessage"].as_str().unwrap_or("");
        assert!(
            !message.starts_with("no route"),
            "{method} {path}: {message}"
        );
        assert!(
            reply.status < 500,
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
    }

    // Every reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap_or_default();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

#[actix_rt::test]
async fn swagger_ui_is_served_from_compiled_in_assets() {
    let api = Api::start().await;
    let (status, content_type, body) = api.get_root("/swagger-ui/").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let page = String::from_utf8_lossy(&body);
    assert!(page.contains("swagger-ui"), "{page}");
    assert!(
        !page.contains("src=\"http"),
        "loads a script from the network: {page}"
    );
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let (status, _, body) = api.get_root(&format!("/swagger-ui/{asset}")).await;
        assert_eq!(status, 200, "{asset}");
        assert!(body.len() > 10_000, "{asset}: {} bytes", body.len());
    }
    let (_, _, init) = api.get_root("/swagger-ui/swagger-initializer.js").await;
    assert!(String::from_utf8_lossy(&init).contains("/openapi.json"));
}
