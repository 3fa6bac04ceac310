//! `/metrics`: served from memory (200 with the last known values while the database is down),
//! HTTP metrics by route template, pool and build gauges, counters named `_total`, and
//! per-connector series labelled with the connector's current name and provider.
//!
//! The `metrics` recorder is process-wide and tests run in parallel in this process: the
//! assertions look at series of their own (their connector's id, their own unique paths) or
//! at what every scrape of this service must satisfy, never at global totals.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tributary::app::Application;
use tributary::monitoring::http::DURATION_BUCKETS;
use tributary::settings::Settings;

use crate::dummypay::{drop_file, payment};
use crate::helpers::{TestDb, eventually, test_settings};
use crate::outage::Proxy;

/// One sample of the Prometheus text.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Sample {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// A parsed scrape: its `# TYPE` lines (in order) and its samples.
struct Scrape {
    types: Vec<(String, String)>,
    samples: Vec<Sample>,
    text: String,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut types = Vec::new();
        let mut samples = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().expect("name").to_string();
                types.push((name, parts.next().expect("kind").to_string()));
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|l| !l.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").expect("label");
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            samples.push(Sample {
                name: name.to_string(),
                labels,
                value: value.parse().expect("number"),
            });
        }
        Scrape {
            types,
            samples,
            text,
        }
    }

    /// The samples of `name` whose labels include every pair of `with`.
    fn find(&self, name: &str, with: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && with.iter().all(|(k, v)| s.label(k) == Some(v)))
            .collect()
    }

    /// The value of the one sample of `name` with `with`, if there is one.
    fn value(&self, name: &str, with: &[(&str, &str)]) -> Option<f64> {
        match self.find(name, with).as_slice() {
            [one] => Some(one.value),
            [] => None,
            many => panic!("{} samples of {name} {with:?}: {many:?}", many.len()),
        }
    }
}

/// A service of the test's own on `url`, with the task gauges refreshed every 100 ms.
struct Service {
    root: String,
    http: awc::Client,
    stop: CancellationToken,
}

impl Service {
    async fn start(url: &str, tune: impl FnOnce(&mut Settings)) -> Service {
        let mut settings = test_settings();
        settings.metrics.refresh_interval = Duration::from_millis(100);
        tune(&mut settings);
        let app = Application::build(&settings, url).await.expect("build");
        let root = format!("http://127.0.0.1:{}", app.port());
        let stop = app.shutdown_token();
        actix_rt::spawn(app.run_until_stopped(None));
        let http = awc::Client::builder()
            .timeout(Duration::from_secs(10))
            .finish();
        Service { root, http, stop }
    }

    /// Scrapes `/metrics`; its status and parsed body.
    async fn scrape(&self) -> (u16, Scrape) {
        let mut reply = self
            .http
            .get(format!("{}/metrics", self.root))
            .send()
            .await
            .expect("scrape");
        let body = reply.body().limit(16 << 20).await.expect("body");
        let text = String::from_utf8(body.to_vec()).expect("utf8");
        (reply.status().as_u16(), Scrape::parse(text))
    }

    /// Scrapes and requires a 200.
    async fn metrics(&self) -> Scrape {
        let (status, scrape) = self.scrape().await;
        assert_eq!(status, 200, "{}", scrape.text);
        scrape
    }

    async fn status(&self, path: &str) -> u16 {
        self.http
            .get(format!("{}{path}", self.root))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Installs a DUMMY-PAY connector named `name` on `dir`; its id.
    async fn install(&self, name: &str, dir: &std::path::Path) -> String {
        let mut reply = self
            .http
            .post(format!("{}/api/payments/connectors/dummy-pay", self.root))
            .send_json(&json!({"name": name, "directory": dir, "filePollingPeriod": "100ms"}))
            .await
            .expect("install");
        let body: Value = reply.json().await.expect("json");
        assert_eq!(reply.status().as_u16(), 201, "{body}");
        body["data"]["connectorID"]
            .as_str()
            .expect("id")
            .to_string()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// This connector's `tributary_tasks` samples, as (status → count).
fn task_gauges(scrape: &Scrape, id: &str) -> BTreeMap<String, f64> {
    scrape
        .find("tributary_tasks", &[("connector_id", id)])
        .into_iter()
        .map(|s| (s.label("status").unwrap_or_default().to_string(), s.value))
        .collect()
}

#[actix_rt::test]
async fn metrics_answer_from_memory_with_the_last_known_values_while_the_database_is_down() {
    let db = TestDb::new().await;
    let (proxy, url) = Proxy::to(&db).await;
    let service = Service::start(&url, |s| s.database.timeout = Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let id = service.install("scraped", dir.path()).await;

    // The refresher counted the install's task: ACTIVE (periodic read-files), every status
    // listed, labelled with the connector's name and provider.
    eventually("the task gauges", Duration::from_secs(20), || async {
        task_gauges(&service.metrics().await, &id).get("ACTIVE") == Some(&1.0)
    })
    .await;
    let before = service.metrics().await;
    let known = task_gauges(&before, &id);
    assert_eq!(known.len(), 5, "{known:?}");
    let labelled = before.find(
        "tributary_tasks",
        &[
            ("connector_id", &id),
            ("name", "scraped"),
            ("provider", "DUMMY-PAY"),
        ],
    );
    assert_eq!(labelled.len(), 5, "{}", before.text);
    assert_eq!(
        before.value("tributary_metrics_refresh_success", &[]),
        Some(1.0)
    );

    proxy.down();
    eventually("health to report 503", Duration::from_secs(10), || async {
        service.status("/api/payments/_health").await == 503
    })
    .await;
    // A refresh fails meanwhile; every scrape still answers 200 at once, from memory.
    eventually("a failed refresh", Duration::from_secs(10), || async {
        let (status, scrape) = service.scrape().await;
        assert_eq!(status, 200, "a scrape during the outage: {}", scrape.text);
        scrape.value("tributary_metrics_refresh_success", &[]) == Some(0.0)
    })
    .await;
    let during = service.metrics().await;
    assert_eq!(task_gauges(&during, &id), known, "the last known counts");
    assert!(
        during
            .value(
                "tributary_metrics_refresh_last_success_timestamp_seconds",
                &[]
            )
            .is_some_and(|t| t > 0.0),
        "{}",
        during.text
    );
    assert!(during.value("tributary_db_pool_max_size", &[]).is_some());
    assert_eq!(service.status("/api/payments/_health").await, 503);

    proxy.restore();
    eventually("a successful refresh", Duration::from_secs(30), || async {
        service
            .metrics()
            .await
            .value("tributary_metrics_refresh_success", &[])
            == Some(1.0)
    })
    .await;
}

#[actix_rt::test]
async fn http_requests_are_counted_by_route_template_never_by_raw_path() {
    let db = TestDb::new().await;
    let service = Service::start(&db.url, |_| {}).await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let templated = format!("/api/payments/payments/{marker}");
    let templated_status = service.status(&templated).await;
    let unmatched = format!("/nowhere/{marker}");
    assert_eq!(service.status(&unmatched).await, 404);
    let brew = service
        .http
        .request(
            actix_web::http::Method::from_bytes(b"BREW").expect("method"),
            format!("{}/api/payments/_live", service.root),
        )
        .send()
        .await
        .expect("brew")
        .status()
        .as_u16();

    let scrape = service.metrics().await;
    assert!(
        !scrape.text.contains(&marker),
        "a raw path reached the labels"
    );
    let status = templated_status.to_string();
    let series = [
        ("method", "GET"),
        ("route", "/api/payments/payments/{paymentID}"),
        ("status", status.as_str()),
    ];
    assert!(
        scrape
            .value("tributary_http_requests_total", &series)
            .is_some_and(|n| n >= 1.0),
        "{}",
        scrape.text
    );
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert!(
        scrape
            .value(
                "tributary_http_requests_total",
                &[("method", "GET")]
                    .iter()
                    .chain(&unmatched)
                    .copied()
                    .collect::<Vec<_>>()
            )
            .is_some_and(|n| n >= 1.0),
        "{}",
        scrape.text
    );
    let brew = brew.to_string();
    assert!(
        !scrape
            .find(
                "tributary_http_requests_total",
                &[("method", "OTHER"), ("status", brew.as_str())]
            )
            .is_empty(),
        "an unknown method is one label value: {}",
        scrape.text
    );
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.label("method") != Some("BREW")),
        "a raw method reached the labels"
    );

    // A histogram with the chosen buckets (not a summary).
    let buckets: BTreeSet<String> = scrape
        .find("tributary_http_request_duration_seconds_bucket", &series)
        .iter()
        .filter_map(|s| s.label("le").map(str::to_string))
        .collect();
    for le in DURATION_BUCKETS {
        assert!(
            buckets.contains(&le.to_string()),
            "bucket {le}: {buckets:?}"
        );
    }
    assert!(buckets.contains("+Inf"));
    assert!(
        scrape
            .value("tributary_http_request_duration_seconds_count", &series)
            .is_some_and(|n| n >= 1.0)
    );
}

#[actix_rt::test]
async fn a_scrape_declares_each_family_once_counters_end_in_total_and_pool_and_build_show() {
    let db = TestDb::new().await;
    let service = Service::start(&db.url, |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let id = service.install("families", dir.path()).await;
    drop_file(dir.path(), "one.json", &payment("one", "1", "SUCCEEDED"));
    eventually("the payment counted", Duration::from_secs(20), || async {
        !service
            .metrics()
            .await
            .find("tributary_ingested_rows_total", &[("connector_id", &id)])
            .is_empty()
    })
    .await;
    let scrape = service.metrics().await;

    let mut seen = BTreeSet::new();
    for (name, kind) in &scrape.types {
        assert!(seen.insert(name.clone()), "family {name} declared twice");
        if kind == "counter" {
            assert!(
                name.ends_with("_total"),
                "counter {name} must end in _total"
            );
        } else {
            assert!(!name.ends_with("_total"), "{kind} {name} ends in _total");
        }
    }
    for sample in &scrape.samples {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| sample.name.strip_suffix(suffix))
            .filter(|f| seen.contains(*f))
            .unwrap_or(&sample.name);
        assert!(seen.contains(family), "{} has no TYPE line", sample.name);
    }
    for name in [
        "tributary_storage_writes_total",
        "tributary_storage_transactions_total",
        "tributary_storage_failed_writes_total",
    ] {
        assert!(
            scrape
                .types
                .contains(&(name.to_string(), "counter".to_string())),
            "{name}"
        );
    }
    assert!(
        scrape
            .value("tributary_storage_writes_total", &[])
            .is_some_and(|n| n > 0.0)
    );

    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        scrape.value("tributary_build_info", &[("version", version)]),
        Some(1.0)
    );

    let gauge = |name: &str| scrape.value(name, &[]).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(
        gauge("tributary_db_pool_max_size"),
        4.0,
        "test_settings' pool"
    );
    let size = gauge("tributary_db_pool_size");
    assert!((1.0..=4.0).contains(&size), "{size}");
    assert_eq!(
        gauge("tributary_db_pool_in_use") + gauge("tributary_db_pool_idle"),
        size
    );
    assert!(gauge("tributary_db_pool_waiting") >= 0.0);
}

#[actix_rt::test]
async fn per_connector_series_carry_name_and_provider_and_follow_a_rename_and_an_uninstall() {
    let db = TestDb::new().await;
    let service = Service::start(&db.url, |_| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let id = service.install("before", dir.path()).await;
    drop_file(dir.path(), "one.json", &payment("one", "1", "SUCCEEDED"));
    // The runtime's counters, the host's, the connector crate's own and the task gauges.
    let families = [
        "tributary_task_runs_total",
        "tributary_ingested_rows_total",
        "tributary_dummypay_files_read_total",
        "tributary_tasks",
    ];
    let of_connector = |scrape: &Scrape| -> Vec<Sample> {
        scrape
            .samples
            .iter()
            .filter(|s| s.label("connector_id") == Some(id.as_str()))
            .cloned()
            .collect()
    };
    eventually(
        "every family for the connector",
        Duration::from_secs(20),
        || async {
            let scrape = service.metrics().await;
            families
                .iter()
                .all(|f| !scrape.find(f, &[("connector_id", &id)]).is_empty())
        },
    )
    .await;
    let scrape = service.metrics().await;
    for sample in of_connector(&scrape) {
        assert_eq!(sample.label("name"), Some("before"), "{sample:?}");
        assert_eq!(sample.label("provider"), Some("DUMMY-PAY"), "{sample:?}");
    }

    let reply = service
        .http
        .post(format!(
            "{}/api/payments/connectors/DUMMY-PAY/{id}/config",
            service.root
        ))
        .send_json(&json!({"name": "after", "directory": dir.path(), "filePollingPeriod": "100ms"}))
        .await
        .expect("update");
    assert_eq!(reply.status().as_u16(), 204);
    // Every series of the connector takes the new name, none keeps the old one, and the
    // counters keep their values.
    eventually(
        "the new name everywhere",
        Duration::from_secs(20),
        || async {
            let scrape = service.metrics().await;
            let series = of_connector(&scrape);
            families.iter().all(|f| series.iter().any(|s| s.name == *f))
                && series.iter().all(|s| s.label("name") == Some("after"))
        },
    )
    .await;
    let renamed = service.metrics().await;
    let runs = |scrape: &Scrape| {
        scrape
            .value("tributary_task_runs_total", &[("connector_id", &id)])
            .unwrap_or(0.0)
    };
    assert!(
        runs(&renamed) >= runs(&scrape),
        "a counter went back after the rename"
    );
    assert!(
        !renamed.text.contains("name=\"before\""),
        "a stale series: {}",
        renamed.text
    );

    let reply = service
        .http
        .delete(format!(
            "{}/api/payments/connectors/DUMMY-PAY/{id}",
            service.root
        ))
        .send()
        .await
        .expect("uninstall");
    assert!(reply.status().is_success(), "{}", reply.status());
    eventually(
        "no series of the uninstalled connector",
        Duration::from_secs(20),
        || async { of_connector(&service.metrics().await).is_empty() },
    )
    .await;
}
