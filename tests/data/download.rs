//! The downloader against a local HTTP server on 127.0.0.1.

use gradverify::Error;
use gradverify::data::download::sha256_file;
use gradverify::data::{DataError, Manifest, ManifestEntry, download, download_mnist};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A tiny HTTP/1.1 server answering `GET /<name>` from `routes` (404
/// otherwise), one request per connection, recording the paths requested.
/// It stops by itself after `max_requests` requests or 20 seconds.
struct Server {
    base_url: String,
    requests: Arc<Mutex<Vec<String>>>,
    handle: Option<JoinHandle<()>>,
}

impl Server {
    fn start(routes: HashMap<String, Vec<u8>>, max_requests: usize) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base_url = format!("http://{}/files/", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let handle = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut served = 0;
            while served < max_requests && Instant::now() < deadline {
                let mut stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                served += 1;
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(k) => req.extend_from_slice(&buf[..k]),
                    }
                }
                let line = String::from_utf8_lossy(&req)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                log.lock().unwrap().push(path.clone());
                let name = path.strip_prefix("/files/").unwrap_or("");
                let (status, body) = match routes.get(name) {
                    Some(b) => ("200 OK", b.clone()),
                    None => ("404 Not Found", b"not found".to_vec()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        Server {
            base_url,
            requests,
            handle: Some(handle),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Unblock a server still waiting for requests, then wait for it.
        for _ in 0..64 {
            if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
                break;
            }
            let addr = self
                .base_url
                .trim_start_matches("http://")
                .trim_end_matches("/files/");
            let _ = std::net::TcpStream::connect(addr);
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    std::fs::write(&p, bytes).unwrap();
    sha256_file(&p).unwrap().0
}

/// File names in `dir`, sorted (temporary files included).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn two_files() -> (Vec<u8>, Vec<u8>) {
    let a: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    (a, b"second file".to_vec())
}

#[test]
fn good_files_are_fetched_verified_renamed_and_then_skipped() {
    let (a, b) = two_files();
    let routes = HashMap::from([
        ("a.gz".to_string(), a.clone()),
        ("b.gz".to_string(), b.clone()),
    ]);
    let server = Server::start(routes, 2);
    let manifest = Manifest::new([("a.gz", sha256(&a)), ("b.gz", sha256(&b).to_uppercase())]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mnist");

    let got = download(&dir, &server.base_url, &manifest, false).unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|f| !f.skipped));
    assert_eq!((got[0].bytes, got[1].bytes), (200_000, 11));
    assert_eq!(std::fs::read(dir.join("a.gz")).unwrap(), a);
    assert_eq!(std::fs::read(dir.join("b.gz")).unwrap(), b);
    assert_eq!(
        listing(&dir),
        vec!["a.gz", "b.gz"],
        "no temporary file left"
    );
    assert_eq!(server.requests(), vec!["/files/a.gz", "/files/b.gz"]);

    // Present with the right digest: nothing is requested again.
    let again = download(&dir, &server.base_url, &manifest, true).unwrap();
    assert!(again.iter().all(|f| f.skipped));
    assert_eq!(server.requests().len(), 2);
}

#[test]
fn a_present_file_with_the_wrong_digest_is_replaced() {
    let (a, _) = two_files();
    let server = Server::start(HashMap::from([("a.gz".to_string(), a.clone())]), 1);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("a.gz"), b"stale").unwrap();
    let manifest = Manifest::new([("a.gz", sha256(&a))]);
    let got = download(tmp.path(), &server.base_url, &manifest, false).unwrap();
    assert!(!got[0].skipped);
    assert_eq!(std::fs::read(tmp.path().join("a.gz")).unwrap(), a);
}

#[test]
fn a_404_is_a_typed_http_error_naming_url_and_status() {
    let server = Server::start(HashMap::new(), 1);
    let tmp = tempfile::tempdir().unwrap();
    let manifest = Manifest::new([("missing.gz", "00".repeat(32))]);
    let e = download(tmp.path(), &server.base_url, &manifest, false).unwrap_err();
    let url = format!("{}missing.gz", server.base_url);
    match &e {
        Error::Data(DataError::Http {
            url: u,
            status: 404,
        }) => assert_eq!(u, &url),
        other => panic!("expected an HTTP 404 error, got {other:?}"),
    }
    assert_eq!(
        e.to_string(),
        format!("{url}: HTTP status 404, expected 200")
    );
    assert!(listing(tmp.path()).is_empty(), "no file left");
}

#[test]
fn a_corrupted_file_is_a_checksum_error_and_leaves_nothing() {
    let (a, _) = two_files();
    let mut corrupted = a.clone();
    corrupted[1234] ^= 1;
    let server = Server::start(HashMap::from([("a.gz".to_string(), corrupted.clone())]), 1);
    let tmp = tempfile::tempdir().unwrap();
    let manifest = Manifest::new([("a.gz", sha256(&a))]);
    let e = download(tmp.path(), &server.base_url, &manifest, true).unwrap_err();
    match &e {
        Error::Data(DataError::Checksum { expected, got, .. }) => {
            assert_eq!(expected, &sha256(&a));
            assert_eq!(got, &sha256(&corrupted));
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert!(e.to_string().contains("SHA-256 mismatch: expected "), "{e}");
    assert!(listing(tmp.path()).is_empty(), "no file or temporary left");
}

#[test]
fn a_body_larger_than_the_manifest_size_is_cut_off() {
    let (a, _) = two_files();
    let server = Server::start(HashMap::from([("a.gz".to_string(), a.clone())]), 1);
    let tmp = tempfile::tempdir().unwrap();
    let manifest = Manifest {
        entries: vec![ManifestEntry {
            file_name: "a.gz".into(),
            sha256: sha256(&a),
            size: Some(1000),
        }],
    };
    let e = download(tmp.path(), &server.base_url, &manifest, false).unwrap_err();
    assert!(
        matches!(e, Error::Data(DataError::TooLarge { limit: 1000, .. })),
        "{e:?}"
    );
    assert!(listing(tmp.path()).is_empty());
}

#[test]
fn download_mnist_asks_the_mirror_for_the_four_standard_files() {
    // The first file 404s, so only one request is made; a connection-refused
    // port gives a network error instead.
    let server = Server::start(HashMap::new(), 1);
    let tmp = tempfile::tempdir().unwrap();
    let base = server.base_url.trim_end_matches('/').to_string();
    let e = download_mnist(tmp.path(), &base, false).unwrap_err();
    assert!(
        matches!(e, Error::Data(DataError::Http { status: 404, .. })),
        "{e:?}"
    );
    assert_eq!(server.requests(), vec!["/files/train-images-idx3-ubyte.gz"]);

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = download_mnist(tmp.path(), &format!("http://127.0.0.1:{port}/"), false).unwrap_err();
    assert!(matches!(e, Error::Data(DataError::Network { .. })), "{e:?}");
    assert!(listing(tmp.path()).is_empty());
}
