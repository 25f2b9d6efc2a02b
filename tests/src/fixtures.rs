//! Small OCI images built in-process for tests: an OCI image layout (directory
//! or archive tar) with gzip layers (of listed entries or of a root
//! filesystem's directory), one manifest per platform and an index.

use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of bytes.
pub fn digest(bytes: &[u8]) -> String {
    let h = Sha256::digest(bytes);
    let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A blob with its descriptor fields.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn digest(&self) -> String {
        digest(&self.bytes)
    }
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest(), "size": self.bytes.len()})
    }
}

/// One entry of a test layer.
#[derive(Debug, Clone)]
pub enum Entry<'a> {
    /// `(path, content, mode)`.
    File(&'a str, &'a [u8], u32),
    /// `(path, target)`.
    Symlink(&'a str, &'a str),
}

/// A tar.gz layer holding `files` (path, content, mode).
pub fn layer(files: &[(&str, &[u8], u32)]) -> (Blob, String) {
    let entries: Vec<Entry> = files
        .iter()
        .map(|(p, c, m)| Entry::File(p, c, *m))
        .collect();
    layer_of(&entries)
}

/// A tar.gz layer of `entries`, and its diff_id.
pub fn layer_of(entries: &[Entry]) -> (Blob, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_700_000_000);
        match e {
            Entry::File(path, content, mode) => {
                h.set_size(content.len() as u64);
                h.set_mode(*mode);
                h.set_cksum();
                tar.append_data(&mut h, path, *content).expect("tar entry");
            }
            Entry::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_mode(0o777);
                tar.append_link(&mut h, path, target).expect("tar symlink");
            }
        }
    }
    let raw = tar.into_inner().expect("tar");
    let diff_id = digest(&raw);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&raw).expect("gzip");
    let blob = Blob {
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        bytes: gz.finish().expect("gzip"),
    };
    (blob, diff_id)
}

/// A tar.gz layer of everything under `root` (a root filesystem), and its
/// diff_id: entries sorted by path, symlinks stored as links (never
/// followed), modes, owners and mtimes as on disk.
pub fn layer_of_dir(root: &Path) -> std::io::Result<(Blob, String)> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(false);
    append_tree(&mut tar, root, Path::new(""))?;
    let raw = tar.into_inner()?;
    let diff_id = digest(&raw);
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&raw)?;
    let blob = Blob {
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        bytes: gz.finish()?,
    };
    Ok((blob, diff_id))
}

/// Appends the entries of directory `root/rel`, sorted, each directory
/// before what it holds.
fn append_tree(tar: &mut tar::Builder<Vec<u8>>, root: &Path, rel: &Path) -> std::io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let rel = rel.join(name);
        let path = root.join(&rel);
        tar.append_path_with_name(&path, &rel)?;
        if std::fs::symlink_metadata(&path)?.is_dir() {
            append_tree(tar, root, &rel)?;
        }
    }
    Ok(())
}

/// One platform's image: config, layers and manifest blobs.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Blob,
}

/// Builds a one-layer image for `os/arch[/variant]` whose layer holds `files`.
pub fn platform_image(platform: &str, files: &[(&str, &[u8], u32)], cmd: &[&str]) -> PlatformImage {
    let entries: Vec<Entry> = files
        .iter()
        .map(|(p, c, m)| Entry::File(p, c, *m))
        .collect();
    platform_image_of(platform, &entries, cmd)
}

/// Like [`platform_image`] with symlinks allowed.
pub fn platform_image_of(platform: &str, entries: &[Entry], cmd: &[&str]) -> PlatformImage {
    let (layer, diff_id) = layer_of(entries);
    platform_image_with(
        platform,
        (layer, diff_id),
        json!({"Cmd": cmd, "Env": ["PATH=/bin"]}),
    )
}

/// A one-layer image for `os/arch[/variant]` of `layer` (blob and diff_id,
/// from [`layer_of`] or [`layer_of_dir`]) whose config's `config` is
/// `config` (Docker's names: `Cmd`, `Env`, `ExposedPorts`, …).
pub fn platform_image_with(platform: &str, layer: (Blob, String), config: Value) -> PlatformImage {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or("linux").to_string();
    let arch = parts.next().unwrap_or("amd64").to_string();
    let variant = parts.next().map(str::to_string);
    let (layer, diff_id) = layer;
    let mut cfg = json!({
        "architecture": arch, "os": os,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    if let Some(v) = &variant {
        cfg["variant"] = v.clone().into();
    }
    let config = Blob {
        media_type: "application/vnd.oci.image.config.v1+json".into(),
        bytes: serde_json::to_vec(&cfg).expect("json"),
    };
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    });
    let manifest = Blob {
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        bytes: serde_json::to_vec(&manifest).expect("json"),
    };
    PlatformImage {
        os,
        arch,
        variant,
        config,
        layers: vec![layer],
        manifest,
    }
}

/// A multi-platform image: an index over per-platform images.
#[derive(Debug, Clone)]
pub struct MultiImage {
    pub images: Vec<PlatformImage>,
    pub index: Blob,
}

impl MultiImage {
    pub fn new(images: Vec<PlatformImage>) -> MultiImage {
        let manifests: Vec<Value> = images
            .iter()
            .map(|i| {
                let mut d = i.manifest.descriptor();
                let mut p = json!({"os": i.os, "architecture": i.arch});
                if let Some(v) = &i.variant {
                    p["variant"] = v.clone().into();
                }
                d["platform"] = p;
                d
            })
            .collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        MultiImage {
            images,
            index: Blob {
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                bytes: serde_json::to_vec(&index).expect("json"),
            },
        }
    }

    /// Every blob (configs, layers, manifests, index).
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut out = Vec::new();
        for i in &self.images {
            out.push(&i.config);
            out.extend(i.layers.iter());
            out.push(&i.manifest);
        }
        out.push(&self.index);
        out
    }

    /// Writes an OCI image layout directory whose index.json points at the
    /// index with the ref name `tag`.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> std::io::Result<()> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs)?;
        for b in self.blobs() {
            std::fs::write(blobs.join(&b.digest()["sha256:".len()..]), &b.bytes)?;
        }
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let mut d = self.index.descriptor();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        let top = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [d]});
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&top).expect("json"),
        )
    }

    /// Writes the layout as an OCI archive tar at `file`.
    pub fn write_archive(&self, file: &Path, tag: &str) -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        self.write_layout(tmp.path(), tag)?;
        let mut tar = tar::Builder::new(std::fs::File::create(file)?);
        tar.append_dir_all(".", tmp.path())?;
        tar.finish()
    }
}

/// Pushes `image` to the registry at `base` (`https://host:port`, whose
/// CA is `ca_pem`; or `http://`) as `repo:tag` through the distribution
/// API (monolithic blob uploads).
pub fn push(
    base: &str,
    token: &str,
    ca_pem: &[u8],
    repo: &str,
    tag: &str,
    image: &MultiImage,
) -> Result<(), String> {
    let agent = crate::agent_trusting(ca_pem, std::time::Duration::from_secs(60));
    let auth = format!("Bearer {token}");
    let check = |what: &str,
                 r: Result<ureq::http::Response<ureq::Body>, ureq::Error>|
     -> Result<(), String> {
        let mut r = r.map_err(|e| format!("{what}: {e}"))?;
        if r.status().as_u16() != 201 {
            return Err(format!(
                "{what}: HTTP {}: {}",
                r.status(),
                r.body_mut().read_to_string().unwrap_or_default()
            ));
        }
        Ok(())
    };
    for i in &image.images {
        for b in std::iter::once(&i.config).chain(i.layers.iter()) {
            let url = format!("{base}/v2/{repo}/blobs/uploads/?digest={}", b.digest());
            check(
                "blob",
                agent
                    .post(&url)
                    .header("Authorization", &auth)
                    .send(&b.bytes[..]),
            )?;
        }
        let url = format!("{base}/v2/{repo}/manifests/{}", i.manifest.digest());
        check(
            "manifest",
            agent
                .put(&url)
                .header("Authorization", &auth)
                .content_type(&i.manifest.media_type)
                .send(&i.manifest.bytes[..]),
        )?;
    }
    let url = format!("{base}/v2/{repo}/manifests/{tag}");
    check(
        "index",
        agent
            .put(&url)
            .header("Authorization", &auth)
            .content_type(&image.index.media_type)
            .send(&image.index.bytes[..]),
    )
}

/// The content of regular file `path` inside a tar.gz layer blob.
pub fn file_in_layer(layer: &[u8], path: &str) -> Option<Vec<u8>> {
    let gz = flate2::read::GzDecoder::new(layer);
    let mut archive = tar::Archive::new(gz);
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        let p = entry
            .path()
            .ok()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if p == path.trim_start_matches('/') {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut out).ok()?;
            return Some(out);
        }
    }
    None
}
