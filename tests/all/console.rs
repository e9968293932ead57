//! The operator's console: its files served under `/ui`, and the pages driven in headless
//! Chromium (tests/browser/console.test.mjs, playwright-core) against a live `hyphae serve`.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};

use crate::api::app;
use crate::harness::Backend;
use crate::support::{repo_root, Served};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_url_serves_the_app_and_assets_revalidate() {
    let app = app(Backend::Sqlite).await;
    for page in ["/ui", "/ui/", "/ui/workflows", "/ui/workflows/abc/tasks/t1", "/ui/failures"] {
        let (s, headers, body) = app.send(Request::get(page).body(Body::empty()).unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8", "{page}");
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(String::from_utf8_lossy(&body).contains("/ui/assets/app.js"), "{page}");
    }
    let (s, headers, body) = app.send(Request::get("/ui/assets/app.js").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert!(!body.is_empty());
    let etag = headers[header::ETAG].clone();
    let again = Request::get("/ui/assets/app.js").header(header::IF_NONE_MATCH, etag).body(Body::empty()).unwrap();
    let (s, _, body) = app.send(again).await;
    assert_eq!((s, body.len()), (StatusCode::NOT_MODIFIED, 0));
    let (s, _, _) = app.send(Request::get("/ui/assets/nope.js").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, headers, _) = app.send(Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!((s, &headers[header::LOCATION]), (StatusCode::SEE_OTHER, &"/ui".parse().unwrap()));
}

/// The dashboard in a real browser: list, a workflow's graph and timeline updating live, pause
/// and resume, a failed task's error, the other pages (what tests/browser/console.test.mjs checks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_headless_chromium() {
    let dir = repo_root().join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run `npm ci` in tests/browser (scripts/test.sh does)"
    );
    let served = Served::start(&["echo", "fib", "testkit"], "").await;
    let out = std::process::Command::new("node")
        .args(["--test", "--test-reporter=spec", "console.test.mjs"])
        .current_dir(&dir)
        .env("HYPHAE_URL", served.base())
        .output()
        .expect("node runs (Node 20 or later)");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser test failed:\n{stdout}\n{stderr}\nhost log:\n{}", served.stderr());
}
