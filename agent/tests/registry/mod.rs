//! A minimal read-only OCI registry for tests: serves the manifests and
//! blobs of fixture images under `/v2/{repo}/...` over plain HTTP/1.1 on a
//! loopback port (one request per connection), and records the
//! `Authorization` headers and the paths it received.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use bramble_tests::fixtures::MultiImage;

/// A running registry; it lives as long as the test process.
pub struct Registry {
    pub base: String,
    auth_seen: Arc<Mutex<Vec<String>>>,
    paths_seen: Arc<Mutex<Vec<String>>>,
}

type Routes = BTreeMap<String, (String, Vec<u8>)>;

impl Registry {
    /// Serves `images` as `(repo, tag, image)`.
    pub fn start(images: &[(&str, &str, &MultiImage)]) -> Registry {
        let mut routes = Routes::new();
        for (repo, tag, image) in images {
            let index = (image.index.media_type.clone(), image.index.bytes.clone());
            routes.insert(format!("/v2/{repo}/manifests/{tag}"), index.clone());
            routes.insert(
                format!("/v2/{repo}/manifests/{}", image.index.digest()),
                index,
            );
            for i in &image.images {
                routes.insert(
                    format!("/v2/{repo}/manifests/{}", i.manifest.digest()),
                    (i.manifest.media_type.clone(), i.manifest.bytes.clone()),
                );
            }
            for b in image.blobs() {
                routes.insert(
                    format!("/v2/{repo}/blobs/{}", b.digest()),
                    ("application/octet-stream".into(), b.bytes.clone()),
                );
            }
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let auth_seen = Arc::new(Mutex::new(Vec::new()));
        let paths_seen = Arc::new(Mutex::new(Vec::new()));
        let (seen, paths) = (auth_seen.clone(), paths_seen.clone());
        let routes = Arc::new(routes);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let routes = routes.clone();
                let (seen, paths) = (seen.clone(), paths.clone());
                std::thread::spawn(move || serve(conn, &routes, &seen, &paths));
            }
        });
        Registry {
            base,
            auth_seen,
            paths_seen,
        }
    }

    /// How many requests asked for `path` so far.
    pub fn requests_for(&self, path: &str) -> usize {
        self.paths_seen
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }

    /// Every `Authorization` header received so far.
    pub fn auth_seen(&self) -> Vec<String> {
        self.auth_seen.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, routes: &Routes, seen: &Mutex<Vec<String>>, paths: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            seen.lock().unwrap().push(v.trim().to_string());
        }
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    paths.lock().unwrap().push(path.to_string());
    let mut out = conn;
    let _ = match routes.get(path) {
        Some((ct, body)) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            out.write_all(head.as_bytes()).and_then(|()| {
                if method == "HEAD" {
                    Ok(())
                } else {
                    out.write_all(body)
                }
            })
        }
        None => {
            let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"not found"}]}"#;
            let head = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            out.write_all(head.as_bytes())
                .and_then(|()| out.write_all(body))
        }
    };
}
