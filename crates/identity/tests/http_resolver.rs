//! `HttpResolver` and `CachingResolver` against a loopback HTTP/1.1 server written here: a
//! PLC-like directory and did:web hosts, with 404s, wrong ids, oversize and slow bodies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use skystream_crypto::{Algorithm, PrivateKey};
use skystream_identity::{
    CacheConfig, CachingResolver, HttpResolver, HttpResolverConfig, ResolveErrorKind, Resolver,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PLC_DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
const OTHER_PLC_DID: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";

/// What the server answers on one path.
#[derive(Clone)]
struct Route {
    status: u16,
    body: Vec<u8>,
    /// Sleep this long before sending anything.
    delay: Duration,
    /// Leave out `Content-Length` (the body ends when the connection closes).
    no_length: bool,
    /// Send the body one byte at a time, this long apart.
    trickle: Option<Duration>,
    /// Extra header lines.
    headers: Vec<String>,
}

impl Route {
    fn json(status: u16, body: serde_json::Value) -> Self {
        Route {
            status,
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
            no_length: false,
            trickle: None,
            headers: Vec::new(),
        }
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1: one request per connection, routes by path, counts
/// requests per path.
struct TestServer {
    port: u16,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let task = {
            let (routes, hits) = (routes.clone(), hits.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (routes, hits) = (routes.clone(), hits.clone());
                    tokio::spawn(async move {
                        let _ = handle(stream, routes, hits).await;
                    });
                }
            })
        };
        TestServer {
            port,
            routes,
            hits,
            task,
        }
    }

    fn route(&self, path: &str, route: Route) {
        self.routes
            .lock()
            .expect("lock")
            .insert(path.to_owned(), route);
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn did_web(&self) -> String {
        format!("did:web:localhost%3A{}", self.port)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    mut stream: TcpStream,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .lines()
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    *hits.lock().expect("lock").entry(path.clone()).or_default() += 1;
    let route = routes
        .lock()
        .expect("lock")
        .get(&path)
        .cloned()
        .unwrap_or_else(|| Route::json(404, json!({"message": "DID not registered"})));
    tokio::time::sleep(route.delay).await;
    let mut response = format!("HTTP/1.1 {} Status\r\nConnection: close\r\n", route.status);
    response.push_str("Content-Type: application/did+ld+json\r\n");
    if !route.no_length {
        response.push_str(&format!("Content-Length: {}\r\n", route.body.len()));
    }
    for h in &route.headers {
        response.push_str(h);
        response.push_str("\r\n");
    }
    response.push_str("\r\n");
    stream.write_all(response.as_bytes()).await?;
    match route.trickle {
        None => stream.write_all(&route.body).await?,
        Some(gap) => {
            for byte in &route.body {
                stream.write_all(&[*byte]).await?;
                stream.flush().await?;
                tokio::time::sleep(gap).await;
            }
        }
    }
    stream.shutdown().await
}

fn doc(did: &str, key: &PrivateKey) -> serde_json::Value {
    json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1"
        ],
        "id": did,
        "alsoKnownAs": ["at://alice.test"],
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": key.public_key().to_multikey(),
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": "https://pds.example.com"
        }]
    })
}

fn resolver(server: &TestServer) -> HttpResolver {
    resolver_with_timeout(server, Duration::from_secs(5))
}

fn resolver_with_timeout(server: &TestServer, timeout: Duration) -> HttpResolver {
    HttpResolver::with_config(HttpResolverConfig {
        plc_url: server.url(),
        timeout,
        max_document_bytes: 4096,
        allow_loopback_did_web: true,
        ..HttpResolverConfig::default()
    })
    .expect("resolver")
}

fn plc_path(did: &str) -> String {
    format!("/{did}")
}

const WELL_KNOWN: &str = "/.well-known/did.json";

#[tokio::test]
async fn resolves_did_plc_through_the_directory() {
    let server = TestServer::start().await;
    let key = PrivateKey::from_seed(Algorithm::K256, 1);
    server.route(&plc_path(PLC_DID), Route::json(200, doc(PLC_DID, &key)));

    let got = resolver(&server).resolve(PLC_DID).await.expect("resolve");
    assert_eq!(got.id, PLC_DID);
    assert_eq!(got.handle(), Some("alice.test"));
    assert_eq!(got.pds_endpoint(), Some("https://pds.example.com"));
    assert_eq!(got.signing_key().expect("key"), key.public_key());
    assert_eq!(server.hits(&plc_path(PLC_DID)), 1);
}

#[tokio::test]
async fn resolves_did_web_on_loopback_with_a_port() {
    let server = TestServer::start().await;
    let key = PrivateKey::from_seed(Algorithm::P256, 2);
    let did = server.did_web();
    server.route(WELL_KNOWN, Route::json(200, doc(&did, &key)));

    let got = resolver(&server).resolve(&did).await.expect("resolve");
    assert_eq!(got.id, did);
    assert_eq!(got.signing_key().expect("key"), key.public_key());

    // 127.0.0.1 works too (the document must then name that DID).
    let did_ip = format!("did:web:127.0.0.1%3A{}", server.port);
    server.route(WELL_KNOWN, Route::json(200, doc(&did_ip, &key)));
    let got = resolver(&server).resolve(&did_ip).await.expect("resolve");
    assert_eq!(got.id, did_ip);
    assert_eq!(server.hits(WELL_KNOWN), 2);
}

#[tokio::test]
async fn loopback_did_web_is_refused_unless_allowed() {
    let server = TestServer::start().await;
    let key = PrivateKey::from_seed(Algorithm::P256, 2);
    server.route(WELL_KNOWN, Route::json(200, doc(&server.did_web(), &key)));
    let strict = HttpResolver::new().expect("resolver");
    let e = strict
        .resolve(&server.did_web())
        .await
        .expect_err("refused");
    assert_eq!(e.kind, ResolveErrorKind::Unsupported);
    assert_eq!(server.hits(WELL_KNOWN), 0);
}

#[tokio::test]
async fn not_found_and_gone_are_not_found() {
    let server = TestServer::start().await;
    server.route(
        &plc_path(OTHER_PLC_DID),
        Route::json(410, json!({"message": "DID not available"})),
    );
    let r = resolver(&server);
    let e = r.resolve(PLC_DID).await.expect_err("404");
    assert_eq!(e.kind, ResolveErrorKind::NotFound, "{e}");
    let e = r.resolve(OTHER_PLC_DID).await.expect_err("410");
    assert_eq!(e.kind, ResolveErrorKind::NotFound, "{e}");
    let e = r.resolve(&server.did_web()).await.expect_err("web 404");
    assert_eq!(e.kind, ResolveErrorKind::NotFound, "{e}");
}

#[tokio::test]
async fn other_statuses_and_redirects_are_network_errors() {
    let server = TestServer::start().await;
    server.route(&plc_path(PLC_DID), Route::json(500, json!({})));
    let mut redirect = Route::json(302, json!({}));
    redirect
        .headers
        .push(format!("Location: {}/elsewhere", server.url()));
    server.route(WELL_KNOWN, redirect);

    let r = resolver(&server);
    let e = r.resolve(PLC_DID).await.expect_err("500");
    assert_eq!(e.kind, ResolveErrorKind::Network, "{e}");
    let e = r.resolve(&server.did_web()).await.expect_err("302");
    assert_eq!(e.kind, ResolveErrorKind::Network, "{e}");
    assert!(e.detail.contains("redirect"), "{e}");
    assert_eq!(server.hits("/elsewhere"), 0);
}

#[tokio::test]
async fn a_document_for_another_did_is_a_mismatch() {
    let server = TestServer::start().await;
    let key = PrivateKey::from_seed(Algorithm::K256, 3);
    server.route(
        &plc_path(PLC_DID),
        Route::json(200, doc(OTHER_PLC_DID, &key)),
    );
    server.route(
        WELL_KNOWN,
        Route::json(200, doc("did:web:evil.example.com", &key)),
    );
    let r = resolver(&server);
    let e = r.resolve(PLC_DID).await.expect_err("mismatch");
    assert_eq!(e.kind, ResolveErrorKind::Mismatch, "{e}");
    let e = r.resolve(&server.did_web()).await.expect_err("mismatch");
    assert_eq!(e.kind, ResolveErrorKind::Mismatch, "{e}");
}

#[tokio::test]
async fn malformed_and_oversize_bodies_are_bad_documents() {
    let server = TestServer::start().await;
    let key = PrivateKey::from_seed(Algorithm::K256, 4);
    let mut big = doc(PLC_DID, &key);
    big["padding"] = json!("x".repeat(5000));
    // Declared too large: refused from the Content-Length.
    server.route(&plc_path(PLC_DID), Route::json(200, big.clone()));
    // Undeclared length: refused once the streamed body passes the bound.
    let mut unbounded = Route::json(200, big);
    unbounded.no_length = true;
    server.route(&plc_path(OTHER_PLC_DID), unbounded);
    // Not a document.
    let mut garbage = Route::json(200, json!({}));
    garbage.body = b"<html>hello</html>".to_vec();
    server.route(WELL_KNOWN, garbage);

    let r = resolver(&server);
    for did in [PLC_DID, OTHER_PLC_DID] {
        let e = r.resolve(did).await.expect_err("oversize");
        assert_eq!(e.kind, ResolveErrorKind::BadDocument, "{e}");
        assert!(e.detail.contains("larger than 4096"), "{e}");
    }
    let e = r.resolve(&server.did_web()).await.expect_err("garbage");
    assert_eq!(e.kind, ResolveErrorKind::BadDocument, "{e}");

    // An object without an id is not a document either.
    server.route(WELL_KNOWN, Route::json(200, json!({"alsoKnownAs": []})));
    let e = r.resolve(&server.did_web()).await.expect_err("no id");
    assert_eq!(e.kind, ResolveErrorKind::BadDocument, "{e}");
}

#[tokio::test]
async fn slow_servers_time_out() {
    let server = TestServer::start().await;
    let key = PrivateKey::from_seed(Algorithm::K256, 5);
    let mut slow = Route::json(200, doc(PLC_DID, &key));
    slow.delay = Duration::from_secs(3);
    server.route(&plc_path(PLC_DID), slow);
    let mut trickle = Route::json(200, doc(OTHER_PLC_DID, &key));
    trickle.trickle = Some(Duration::from_millis(20));
    server.route(&plc_path(OTHER_PLC_DID), trickle);

    let r = resolver_with_timeout(&server, Duration::from_millis(300));
    for did in [PLC_DID, OTHER_PLC_DID] {
        let started = std::time::Instant::now();
        let e = r.resolve(did).await.expect_err("timeout");
        assert_eq!(e.kind, ResolveErrorKind::Network, "{e}");
        assert!(e.detail.contains("timed out"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    // Bind then drop, so nothing listens on the port.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let r = HttpResolver::with_config(HttpResolverConfig {
        plc_url: format!("http://127.0.0.1:{port}"),
        ..HttpResolverConfig::default()
    })
    .expect("resolver");
    let e = r.resolve(PLC_DID).await.expect_err("refused");
    assert_eq!(e.kind, ResolveErrorKind::Network, "{e}");
}

#[tokio::test]
async fn caching_resolver_avoids_refetching_until_purged() {
    let server = TestServer::start().await;
    let old = PrivateKey::from_seed(Algorithm::K256, 6);
    let new = PrivateKey::from_seed(Algorithm::K256, 7);
    let path = plc_path(PLC_DID);
    server.route(&path, Route::json(200, doc(PLC_DID, &old)));
    let web_did = server.did_web();
    server.route(WELL_KNOWN, Route::json(200, doc(&web_did, &old)));

    let cache = CachingResolver::new(resolver(&server));
    for _ in 0..3 {
        let got = cache.resolve(PLC_DID).await.expect("resolve");
        assert_eq!(got.signing_key().expect("key"), old.public_key());
        cache.resolve(&web_did).await.expect("resolve");
    }
    assert_eq!(server.hits(&path), 1);
    assert_eq!(server.hits(WELL_KNOWN), 1);

    // The key rotates; the cache keeps serving the old document until purged.
    server.route(&path, Route::json(200, doc(PLC_DID, &new)));
    let got = cache.resolve(PLC_DID).await.expect("resolve");
    assert_eq!(got.signing_key().expect("key"), old.public_key());
    cache.purge(PLC_DID);
    let got = cache.resolve(PLC_DID).await.expect("resolve");
    assert_eq!(got.signing_key().expect("key"), new.public_key());
    assert_eq!(server.hits(&path), 2);
    // Purging one DID leaves the others cached.
    cache.resolve(&web_did).await.expect("resolve");
    assert_eq!(server.hits(WELL_KNOWN), 1);
}

#[tokio::test]
async fn caching_resolver_caches_not_found_briefly_but_not_network_errors() {
    let server = TestServer::start().await;
    let cache = CachingResolver::with_config(
        resolver(&server),
        CacheConfig {
            negative_ttl: Duration::from_millis(300),
            ..CacheConfig::default()
        },
    );
    let path = plc_path(PLC_DID);
    for _ in 0..3 {
        let e = cache.resolve(PLC_DID).await.expect_err("404");
        assert_eq!(e.kind, ResolveErrorKind::NotFound);
    }
    assert_eq!(server.hits(&path), 1);

    // After the negative TTL the DID is looked up again (and now exists).
    let key = PrivateKey::from_seed(Algorithm::K256, 8);
    server.route(&path, Route::json(200, doc(PLC_DID, &key)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    cache.resolve(PLC_DID).await.expect("now found");
    assert_eq!(server.hits(&path), 2);

    // A failing server is asked every time.
    let other = plc_path(OTHER_PLC_DID);
    server.route(&other, Route::json(503, json!({})));
    for _ in 0..3 {
        let e = cache.resolve(OTHER_PLC_DID).await.expect_err("503");
        assert_eq!(e.kind, ResolveErrorKind::Network);
    }
    assert_eq!(server.hits(&other), 3);
}

#[tokio::test]
async fn caching_resolver_coalesces_concurrent_lookups() {
    let server = TestServer::start().await;
    let key = PrivateKey::from_seed(Algorithm::K256, 9);
    let mut slow = Route::json(200, doc(PLC_DID, &key));
    slow.delay = Duration::from_millis(200);
    server.route(&plc_path(PLC_DID), slow);
    let cache = Arc::new(CachingResolver::new(resolver(&server)));
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                cache.resolve(PLC_DID).await.expect("resolve");
                calls.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 10);
    assert_eq!(server.hits(&plc_path(PLC_DID)), 1);
}
