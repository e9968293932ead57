//! TLS: `hyphae serve` over HTTPS with a certificate and key from files, the CLI reaching an
//! `https://` host (trusting a private CA with `--ca-file`), and PostgreSQL with `sslmode`.

use std::time::{Duration, Instant};

use hyphae::store::Store;

use crate::harness::{database, Backend};
use crate::support;

/// A CA and a certificate for 127.0.0.1 signed by it: (CA PEM, leaf PEM, leaf key PEM).
fn certificates() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_https_and_the_cli_reaches_it() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (ca_file, cert_file, key_file) = (file("ca.pem", &ca), file("cert.pem", &cert), file("key.pem", &key));
    let plugins = support::plugins_dir(&["echo"]);
    let port = support::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hyphae"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--watch-plugins", "false"])
        .arg("--db")
        .arg(dir.path().join("hyphae.db"))
        .arg("--plugins-dir")
        .arg(plugins.path())
        .arg("--cache-dir")
        .arg(support::repo_root().join("target").join("test-plugin-cache"))
        .arg("--tls-cert-file")
        .arg(&cert_file)
        .arg("--tls-key-file")
        .arg(&key_file)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        match client.get(format!("{url}/readyz")).send().await {
            Ok(r) if r.status().is_success() => break,
            _ => assert!(started.elapsed() < Duration::from_secs(60), "the HTTPS host did not become ready"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A client that never finishes its handshake holds up nobody.
    let _idle = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let health: serde_json::Value = client.get(format!("{url}/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success(), "plain HTTP is not served");

    let status = |ca: Option<&std::path::Path>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hyphae"));
        c.args(["status", "no-such-workflow", "--url", &url]).env_remove("HYPHAE_CA_FILE");
        if let Some(ca) = ca {
            c.arg("--ca-file").arg(ca);
        }
        c.output().unwrap()
    };
    let trusted = status(Some(&ca_file));
    let stderr = String::from_utf8_lossy(&trusted.stderr);
    assert_eq!(trusted.status.code(), Some(65), "the host answered (404): {stderr}");
    assert!(stderr.contains("workflow_not_found"), "{stderr}");
    let untrusted = status(None);
    assert_eq!(untrusted.status.code(), Some(69), "{}", String::from_utf8_lossy(&untrusted.stderr));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_certificate_without_its_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, _) = certificates();
    std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hyphae"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--db")
        .arg(dir.path().join("hyphae.db"))
        .arg("--tls-cert-file")
        .arg(dir.path().join("cert.pem"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("tls_cert_file/tls_key_file"), "{stderr}");
}

/// The local server has SSL on (Debian's default, its snake-oil certificate): `sslmode=require`
/// encrypts without checking the certificate; `verify-full` checks it and refuses this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connects_with_sslmode() {
    let (url, _) = database(Backend::Postgres).await;
    let plain = Store::connect(&url).await.unwrap();
    let on = plain.ping().await.is_ok();
    assert!(on);
    plain.close().await;
    let ssl: String = {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar("SHOW ssl").fetch_one(&mut conn).await.unwrap()
    };
    let required = Store::connect(&format!("{url}?sslmode=require")).await;
    if ssl != "on" {
        let err = required.err().expect("a server without SSL refuses sslmode=require").to_string();
        assert!(!err.contains("without TLS support"), "{err}");
        eprintln!("the PostgreSQL server has ssl = {ssl}: only the refusal was checked");
        return;
    }
    let store = required.expect("sslmode=require connects over TLS");
    store.ping().await.unwrap();
    store.close().await;
    let err = Store::connect(&format!("{url}?sslmode=verify-full")).await.err().expect("an untrusted certificate");
    let err = err.to_string().to_lowercase();
    assert!(err.contains("certificate") || err.contains("tls"), "{err}");
}
