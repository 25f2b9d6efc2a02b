//! Import and export of real-shaped image archives built in a tempdir: OCI
//! layout directories, OCI archive tars (plain and gzipped), `docker save` tars
//! (legacy and Docker ≥ 25 forms). Multi-arch resolution on the imported
//! index, export → re-import with identical digests, and refusal of tampered,
//! truncated and incomplete archives with the store left without the bad blob.
//!
//! Length: over 600 lines because one suite (every archive format importers
//! meet) with its fixtures.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use bramble_images::export::ExportImage;
use bramble_images::import::{self, ImportError, ImportKind, ImportReport};
use bramble_images::oci::{ManifestOrIndex, media_types as mt};
use bramble_images::platform::{self, Platform};
use bramble_images::{BlobStore, Digest, export_oci_archive, parse_manifest};
use serde_json::json;

/// A set of files (path → bytes) that becomes a directory or a tar.
#[derive(Default, Clone)]
struct Files(BTreeMap<String, Vec<u8>>);

impl Files {
    fn put(&mut self, path: &str, bytes: Vec<u8>) {
        self.0.insert(path.to_string(), bytes);
    }

    fn blob(&mut self, bytes: Vec<u8>) -> (Digest, u64) {
        let d = Digest::of(&bytes);
        let n = bytes.len() as u64;
        self.put(&format!("blobs/sha256/{}", d.hex()), bytes);
        (d, n)
    }

    fn write_dir(&self, dir: &Path) {
        for (p, b) in &self.0 {
            let full = dir.join(p);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, b).unwrap();
        }
    }

    fn tar_bytes(&self) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in &self.0 {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, p, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn write_tar(&self, path: &Path) {
        std::fs::write(path, self.tar_bytes()).unwrap();
    }
}

/// A tar layer holding one file; returns (tar bytes, diff_id).
fn layer_tar(name: &str, content: &[u8]) -> (Vec<u8>, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o755);
    h.set_cksum();
    b.append_data(&mut h, name, content).unwrap();
    let tar = b.into_inner().unwrap();
    let d = Digest::of(&tar);
    (tar, d)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn config(arch: &str, variant: Option<&str>, diff_ids: &[&Digest]) -> Vec<u8> {
    let mut c = json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/app"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    });
    if let Some(v) = variant {
        c["variant"] = json!(v);
    }
    serde_json::to_vec(&c).unwrap()
}

/// One platform image in `files`: a gzip layer, a config, a manifest.
/// Returns (manifest digest, size, layer digest).
fn platform_image(files: &mut Files, arch: &str, variant: Option<&str>) -> (Digest, u64, Digest) {
    let (tar, diff_id) = layer_tar("bin/app", format!("binary for {arch}").as_bytes());
    let (layer, layer_size) = files.blob(gzip(&tar));
    let (cfg, cfg_size) = files.blob(config(arch, variant, &[&diff_id]));
    let m = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_MANIFEST,
        "config": {"mediaType": mt::OCI_CONFIG, "digest": cfg, "size": cfg_size},
        "layers": [{"mediaType": mt::OCI_LAYER_GZIP, "digest": layer, "size": layer_size}],
    });
    let (md, ms) = files.blob(serde_json::to_vec(&m).unwrap());
    (md, ms, layer)
}

struct MultiArch {
    files: Files,
    index: Digest,
    amd64: Digest,
    arm64: Digest,
    armv7: Digest,
    /// Layer of the arm64 image.
    arm64_layer: Digest,
}

/// An OCI layout with a multi-arch index (amd64, arm64/v8, arm/v7 and an
/// attestation manifest) named `web:1`.
fn multi_arch() -> MultiArch {
    let mut files = Files::default();
    files.put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    let (amd64, amd64_size, _) = platform_image(&mut files, "amd64", None);
    let (arm64, arm64_size, arm64_layer) = platform_image(&mut files, "arm64", Some("v8"));
    let (armv7, armv7_size, _) = platform_image(&mut files, "arm", Some("v7"));
    let (att, att_size, _) = platform_image(&mut files, "unknown", None);
    let entry = |d: &Digest, size: u64, p: serde_json::Value| json!({"mediaType": mt::OCI_MANIFEST, "digest": d, "size": size, "platform": p});
    let mut att_entry = entry(
        &att,
        att_size,
        json!({"os": "unknown", "architecture": "unknown"}),
    );
    att_entry["annotations"] = json!({"vnd.docker.reference.type": "attestation-manifest"});
    let index = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": [
            entry(&amd64, amd64_size, json!({"os": "linux", "architecture": "amd64"})),
            entry(&arm64, arm64_size, json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
            entry(&armv7, armv7_size, json!({"os": "linux", "architecture": "arm", "variant": "v7"})),
            att_entry,
        ],
    });
    let (index_digest, index_size) = files.blob(serde_json::to_vec(&index).unwrap());
    let top = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": mt::OCI_INDEX, "digest": index_digest, "size": index_size,
            "annotations": {"org.opencontainers.image.ref.name": "web:1"},
        }],
    });
    files.put("index.json", serde_json::to_vec(&top).unwrap());
    MultiArch {
        files,
        index: index_digest,
        amd64,
        arm64,
        armv7,
        arm64_layer,
    }
}

fn blob_digests(files: &Files) -> Vec<Digest> {
    let mut v: Vec<Digest> = files
        .0
        .keys()
        .filter_map(|k| k.strip_prefix("blobs/sha256/"))
        .map(|h| format!("sha256:{h}").parse().unwrap())
        .collect();
    v.sort();
    v
}

fn new_store(dir: &Path, name: &str) -> BlobStore {
    BlobStore::open(dir.join(name)).unwrap()
}

fn import_quiet(store: &BlobStore, path: &Path) -> Result<ImportReport, ImportError> {
    import::import(store, path, |_| {})
}

fn tmp_is_empty(store: &BlobStore) -> bool {
    std::fs::read_dir(store.tmp_dir()).unwrap().count() == 0
}

#[test]
fn oci_layout_directory_imports_and_resolves_per_platform() {
    let dir = tempfile::tempdir().unwrap();
    let img = multi_arch();
    let layout = dir.path().join("layout");
    img.files.write_dir(&layout);
    let store = new_store(dir.path(), "store");

    let mut calls = Vec::new();
    let report = import::import(&store, &layout, |p| {
        calls.push((p.bytes_done, p.bytes_total, p.current.to_string()))
    })
    .unwrap();
    assert_eq!(report.kind, ImportKind::OciLayout);
    assert_eq!(report.images.len(), 1);
    let top = &report.images[0];
    assert_eq!(top.names, ["web:1"]);
    assert_eq!(top.digest, img.index);
    assert_eq!(top.media_type, mt::OCI_INDEX);
    assert_eq!(top.size, store.size(&img.index).unwrap().unwrap());
    assert_eq!(store.list().unwrap(), blob_digests(&img.files));
    assert_eq!(report.blobs_written, blob_digests(&img.files).len());

    // Progress is monotonic and ends at the total, which is every blob's size.
    let total: u64 = blob_digests(&img.files)
        .iter()
        .map(|d| store.size(d).unwrap().unwrap())
        .sum();
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    let last = calls.last().unwrap();
    assert_eq!((last.0, last.1), (total, total));
    assert!(
        calls
            .iter()
            .any(|c| c.2 == format!("blobs/sha256/{}", img.arm64_layer.hex()))
    );

    // The stored index resolves per node platform.
    let (doc, _) = parse_manifest(&store.read(&img.index).unwrap(), None, "index").unwrap();
    let ManifestOrIndex::Index(index) = doc else {
        panic!("not an index")
    };
    let pick = |node: Platform| {
        platform::select(&index, &node)
            .unwrap()
            .digest()
            .to_string()
    };
    assert_eq!(
        pick(Platform::new("linux", "aarch64", None)),
        img.arm64.to_string()
    );
    assert_eq!(
        pick(Platform::new("linux", "armv7l", None)),
        img.armv7.to_string()
    );
    assert_eq!(
        pick(Platform::new("linux", "x86_64", None)),
        img.amd64.to_string()
    );
    let err = platform::select(&index, &"linux/riscv64".parse().unwrap())
        .unwrap_err()
        .for_image("web:1");
    assert_eq!(
        err.to_string(),
        "image web:1 has no linux/riscv64 manifest; it has linux/amd64, linux/arm/v7, linux/arm64"
    );

    // Importing again writes nothing new.
    let again = import_quiet(&store, &layout).unwrap();
    assert_eq!(again.blobs_written, 0);
    assert_eq!(again.blobs_present, report.blobs_written);
}

#[test]
fn oci_archive_plain_and_gzipped_give_the_same_digests() {
    let dir = tempfile::tempdir().unwrap();
    let img = multi_arch();
    let tar_path = dir.path().join("web.tar");
    img.files.write_tar(&tar_path);
    let gz_path = dir.path().join("web.tar.gz");
    std::fs::write(&gz_path, gzip(&img.files.tar_bytes())).unwrap();
    assert_eq!(import::detect(&tar_path).unwrap(), ImportKind::OciArchive);
    assert_eq!(import::detect(&gz_path).unwrap(), ImportKind::OciArchive);

    for (name, path) in [("plain", &tar_path), ("gz", &gz_path)] {
        let store = new_store(dir.path(), name);
        let report = import_quiet(&store, path).unwrap();
        assert_eq!(report.kind, ImportKind::OciArchive);
        assert_eq!(report.images[0].digest, img.index, "{name}");
        assert_eq!(store.list().unwrap(), blob_digests(&img.files), "{name}");
        assert!(
            tmp_is_empty(&store),
            "{name}: the decompressed copy is removed"
        );
    }
}

#[test]
fn export_then_reimport_keeps_every_digest() {
    let dir = tempfile::tempdir().unwrap();
    let img = multi_arch();
    let layout = dir.path().join("layout");
    img.files.write_dir(&layout);
    let store = new_store(dir.path(), "a");
    import_quiet(&store, &layout).unwrap();

    let images = [ExportImage {
        digest: img.index.clone(),
        name: "hub.local:7480/team/web:1".into(),
    }];
    let out = dir.path().join("export.tar");
    let summary =
        export_oci_archive(&store, &images, std::fs::File::create(&out).unwrap()).unwrap();
    assert_eq!(summary.blobs, blob_digests(&img.files).len());
    let mut again = Vec::new();
    export_oci_archive(&store, &images, &mut again).unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        again,
        "export is deterministic"
    );

    let store2 = new_store(dir.path(), "b");
    let report = import_quiet(&store2, &out).unwrap();
    assert_eq!(report.kind, ImportKind::OciArchive);
    assert_eq!(report.images.len(), 1);
    assert_eq!(report.images[0].digest, img.index);
    assert_eq!(report.images[0].names, ["hub.local:7480/team/web:1"]);
    assert_eq!(store2.list().unwrap(), store.list().unwrap());

    // Exporting one platform manifest alone works too.
    let mut one = Vec::new();
    let s = export_oci_archive(
        &store,
        &[ExportImage {
            digest: img.arm64.clone(),
            name: "web:1-arm64".into(),
        }],
        &mut one,
    )
    .unwrap();
    assert_eq!(s.blobs, 3);
}

/// A legacy `docker save`: two images sharing a base layer, the second one
/// through a symlink as Docker writes it.
fn legacy_docker_save() -> (Files, Vec<u8>, Digest, Digest) {
    let mut files = Files::default();
    let (base, base_id) = layer_tar("bin/sh", b"shell");
    let (app, app_id) = layer_tar("bin/app", b"app");
    let cfg1 = config("arm64", None, &[&base_id]);
    let cfg2 = config("arm64", None, &[&base_id, &app_id]);
    let c1 = Digest::of(&cfg1);
    let c2 = Digest::of(&cfg2);
    files.put(&format!("{}.json", c1.hex()), cfg1);
    files.put(&format!("{}.json", c2.hex()), cfg2);
    files.put("aaaa/layer.tar", base.clone());
    files.put("bbbb/layer.tar", app);
    let manifest = json!([
        {"Config": format!("{}.json", c1.hex()), "RepoTags": ["base:1"], "Layers": ["aaaa/layer.tar"]},
        {"Config": format!("{}.json", c2.hex()), "RepoTags": ["web:1", "web:latest"],
         "Layers": ["cccc/layer.tar", "bbbb/layer.tar"]},
    ]);
    files.put("manifest.json", serde_json::to_vec(&manifest).unwrap());
    files.put("repositories", b"{}".to_vec());
    // Build the tar with `cccc/layer.tar` as a symlink to `../aaaa/layer.tar`.
    let mut b = tar::Builder::new(Vec::new());
    for (p, data) in &files.0 {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, p, &data[..]).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "cccc/layer.tar", "../aaaa/layer.tar")
        .unwrap();
    (files, b.into_inner().unwrap(), base_id, c2)
}

#[test]
fn legacy_docker_save_builds_oci_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let (_, tar, base_id, web_config) = legacy_docker_save();
    let path = dir.path().join("save.tar");
    std::fs::write(&path, &tar).unwrap();
    assert_eq!(import::detect(&path).unwrap(), ImportKind::DockerSave);
    let store = new_store(dir.path(), "s");
    let report = import_quiet(&store, &path).unwrap();
    assert_eq!(report.kind, ImportKind::DockerSave);
    assert_eq!(report.images.len(), 2);
    assert_eq!(report.images[0].names, ["base:1"]);
    assert_eq!(report.images[1].names, ["web:1", "web:latest"]);
    // 2 layers (the shared one once) + 2 configs + 2 manifests.
    assert_eq!(store.list().unwrap().len(), 6);

    let web = &report.images[1];
    assert_eq!(web.media_type, mt::OCI_MANIFEST);
    let (doc, t) = parse_manifest(&store.read(&web.digest).unwrap(), None, "m").unwrap();
    assert_eq!(t, mt::OCI_MANIFEST);
    let ManifestOrIndex::Manifest(m) = doc else {
        panic!("not a manifest")
    };
    assert_eq!(m.config().digest().to_string(), web_config.to_string());
    assert_eq!(m.layers().len(), 2);
    assert_eq!(m.layers()[0].digest().to_string(), base_id.to_string());
    assert!(
        m.layers()
            .iter()
            .all(|l| l.media_type().to_string() == mt::OCI_LAYER_TAR)
    );

    // Deterministic: a fresh import builds the same manifest digests.
    let store2 = new_store(dir.path(), "s2");
    let again = import_quiet(&store2, &path).unwrap();
    assert_eq!(again.images, report.images);

    // And the built image exports and re-imports unchanged.
    let mut out = Vec::new();
    export_oci_archive(
        &store,
        &[ExportImage {
            digest: web.digest.clone(),
            name: "web:1".into(),
        }],
        &mut out,
    )
    .unwrap();
    let p = dir.path().join("web-oci.tar");
    std::fs::write(&p, out).unwrap();
    let store3 = new_store(dir.path(), "s3");
    assert_eq!(
        import_quiet(&store3, &p).unwrap().images[0].digest,
        web.digest
    );
}

#[test]
fn docker_25_save_prefers_index_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Files::default();
    files.put("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec());
    let (m1, s1, _) = platform_image(&mut files, "arm64", None);
    let (m2, s2, _) = platform_image(&mut files, "amd64", None);
    let (doc, _) =
        parse_manifest(&files.0[&format!("blobs/sha256/{}", m2.hex())], None, "m").unwrap();
    let ManifestOrIndex::Manifest(m) = doc else {
        panic!()
    };
    let c2 = m.config().digest().to_string().replace("sha256:", "");
    files.put(
        "index.json",
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_INDEX,
            "manifests": [
                {"mediaType": mt::OCI_MANIFEST, "digest": m1, "size": s1, "annotations": {
                    "io.containerd.image.name": "docker.io/library/busybox:latest",
                    "org.opencontainers.image.ref.name": "latest"}},
                {"mediaType": mt::OCI_MANIFEST, "digest": m2, "size": s2},
            ],
        }))
        .unwrap(),
    );
    files.put(
        "manifest.json",
        serde_json::to_vec(&json!([
            {"Config": format!("blobs/sha256/{c2}"), "RepoTags": ["app:2"], "Layers": []},
        ]))
        .unwrap(),
    );
    let path = dir.path().join("save.tar");
    files.write_tar(&path);
    let store = new_store(dir.path(), "s");
    let report = import_quiet(&store, &path).unwrap();
    assert_eq!(report.kind, ImportKind::OciArchive);
    assert_eq!(report.images.len(), 2);
    assert_eq!(report.images[0].digest, m1);
    assert_eq!(report.images[0].names, ["docker.io/library/busybox:latest"]);
    assert_eq!(report.images[1].digest, m2);
    assert_eq!(report.images[1].names, ["app:2"]);
}

// ---- refusals -------------------------------------------------------------

fn archive_of(dir: &Path, files: &Files, name: &str) -> PathBuf {
    let p = dir.join(name);
    files.write_tar(&p);
    p
}

#[test]
fn wrong_digest_is_refused_and_the_bad_blob_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let img = multi_arch();
    let mut files = img.files.clone();
    // Same size, different content: only hashing can tell.
    let entry = format!("blobs/sha256/{}", img.arm64_layer.hex());
    let mut bad = files.0[&entry].clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let bad_digest = Digest::of(&bad);
    files.put(&entry, bad);
    let path = archive_of(dir.path(), &files, "bad.tar");
    let store = new_store(dir.path(), "s");
    let err = import_quiet(&store, &path).unwrap_err();
    match &err {
        ImportError::DigestMismatch {
            entry: e,
            expected,
            actual,
        } => {
            assert_eq!(e, &entry);
            assert_eq!(expected, &img.arm64_layer);
            assert_eq!(actual, &bad_digest);
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains(&entry), "{err}");
    assert!(!store.has(&img.arm64_layer));
    assert!(!store.has(&bad_digest));
    // No manifest or index referring to it was written, and no temp file left.
    assert!(!store.has(&img.arm64));
    assert!(!store.has(&img.index));
    assert!(tmp_is_empty(&store));
}

#[test]
fn tampered_manifest_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let img = multi_arch();
    let mut files = img.files.clone();
    let entry = format!("blobs/sha256/{}", img.armv7.hex());
    let mut m = files.0[&entry].clone();
    let i = m.iter().position(|&b| b == b'2').unwrap(); // any digit: same size, other bytes
    m[i] = b'3';
    files.put(&entry, m);
    let path = archive_of(dir.path(), &files, "bad.tar");
    let store = new_store(dir.path(), "s");
    let err = import_quiet(&store, &path).unwrap_err();
    assert!(matches!(err, ImportError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&img.armv7.hex()[..12]), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn truncated_blob_is_refused_with_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let img = multi_arch();
    let mut files = img.files.clone();
    let entry = format!("blobs/sha256/{}", img.arm64_layer.hex());
    let mut short = files.0[&entry].clone();
    short.truncate(short.len() / 2);
    files.put(&entry, short);
    for (name, as_dir) in [("archive", false), ("layout", true)] {
        let store = new_store(dir.path(), &format!("s-{name}"));
        let path = if as_dir {
            let p = dir.path().join("layout");
            files.write_dir(&p);
            p
        } else {
            archive_of(dir.path(), &files, "short.tar")
        };
        let err = import_quiet(&store, &path).unwrap_err();
        assert!(
            matches!(&err, ImportError::SizeMismatch { entry: e, .. } if *e == entry),
            "{name}: {err}"
        );
        assert!(store.list().unwrap().is_empty(), "{name}");
        assert!(tmp_is_empty(&store), "{name}");
    }
}

#[test]
fn truncated_archive_is_refused_with_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let img = multi_arch();
    let bytes = img.files.tar_bytes();
    // Cut inside the data of the last-but-one entry (entries are sorted; the
    // tail of a tar is two zero blocks).
    let path = dir.path().join("cut.tar");
    std::fs::write(&path, &bytes[..bytes.len() - 1024 - 700]).unwrap();
    let store = new_store(dir.path(), "s");
    let err = import_quiet(&store, &path).unwrap_err();
    assert!(matches!(err, ImportError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("cut.tar"), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn missing_blob_is_refused_with_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let img = multi_arch();
    let mut files = img.files.clone();
    let entry = format!("blobs/sha256/{}", img.arm64_layer.hex());
    files.0.remove(&entry);
    let path = archive_of(dir.path(), &files, "missing.tar");
    let store = new_store(dir.path(), "s");
    let err = import_quiet(&store, &path).unwrap_err();
    match &err {
        ImportError::Missing {
            entry: e,
            referenced_by,
            ..
        } => {
            assert_eq!(e, &entry);
            assert_eq!(referenced_by, &format!("blobs/sha256/{}", img.arm64.hex()));
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(store.list().unwrap().is_empty());

    // A missing platform manifest (a single-platform export of a multi-arch
    // index) is refused too, naming the index.
    let mut files = img.files.clone();
    files.0.remove(&format!("blobs/sha256/{}", img.amd64.hex()));
    let path = archive_of(dir.path(), &files, "sparse.tar");
    let err = import_quiet(&store, &path).unwrap_err();
    assert!(matches!(err, ImportError::Missing { .. }), "{err}");
    assert!(err.to_string().contains(&img.index.hex()[..12]), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn legacy_layer_not_matching_its_diff_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut files, _, base_id, _) = legacy_docker_save();
    // Replace the app layer with other content of the same size.
    let mut app = files.0["bbbb/layer.tar"].clone();
    let i = app.iter().position(|&b| b == b'a').unwrap();
    app[i] = b'b';
    files.put("bbbb/layer.tar", app.clone());
    let mut links = files.clone();
    links.put("cccc/layer.tar", files.0["aaaa/layer.tar"].clone());
    let path = archive_of(dir.path(), &links, "save.tar");
    let store = new_store(dir.path(), "s");
    let err = import_quiet(&store, &path).unwrap_err();
    assert!(
        matches!(&err, ImportError::DigestMismatch { entry, .. } if entry == "bbbb/layer.tar"),
        "{err}"
    );
    assert!(!store.has(&Digest::of(&app)));
    // The first image's verified layer and config may stay (documented); no
    // manifest was built for either image.
    let left = store.list().unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&base_id));
    for d in &left {
        assert!(parse_manifest(&store.read(d).unwrap(), None, "blob").is_err());
    }
    assert!(tmp_is_empty(&store));
}

#[test]
fn non_images_and_hostile_archives_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = new_store(dir.path(), "s");
    let junk = dir.path().join("junk.bin");
    std::fs::write(&junk, vec![0x42u8; 4096]).unwrap();
    let err = import_quiet(&store, &junk).unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Malformed { .. } | ImportError::NotAnImage { .. }
        ),
        "{err}"
    );

    let mut other = Files::default();
    other.put("hello.txt", b"hi".to_vec());
    let err = import_quiet(&store, &archive_of(dir.path(), &other, "other.tar")).unwrap_err();
    assert!(matches!(err, ImportError::NotAnImage { .. }), "{err}");
    assert!(err.to_string().contains("manifest.json"), "{err}");

    // index.json pointing through a symlink outside the archive.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "index.json", "../../etc/passwd")
        .unwrap();
    let p = dir.path().join("escape.tar");
    std::fs::write(&p, b.into_inner().unwrap()).unwrap();
    let err = import_quiet(&store, &p).unwrap_err();
    assert!(err.to_string().contains("outside the archive"), "{err}");

    let img = multi_arch();
    let mut bad_layout = img.files.clone();
    bad_layout.put("oci-layout", br#"{"imageLayoutVersion":"9.9.9"}"#.to_vec());
    let err = import_quiet(&store, &archive_of(dir.path(), &bad_layout, "v9.tar")).unwrap_err();
    assert!(err.to_string().contains("imageLayoutVersion"), "{err}");
    assert!(store.list().unwrap().is_empty());
}
