//! Exporting images from a [`BlobStore`] to an OCI archive tar: `oci-layout`,
//! `index.json` (one entry per image, named with the
//! `org.opencontainers.image.ref.name` and `io.containerd.image.name`
//! annotations) and every blob the images reference under `blobs/sha256/`.
//!
//! Blobs are streamed from the store through a verifying reader, so on-disk
//! corruption fails the export instead of producing a bad archive. The tar is
//! deterministic (zero timestamps and owners, fixed order): exporting the same
//! images twice gives identical bytes, and importing the archive gives back the
//! same digests. `skopeo copy oci-archive:…`, `ctr images import`, `docker
//! load` (Docker ≥ 25) and Bramble's own import read it.

use std::collections::BTreeSet;
use std::io::{self, Read, Write};

use crate::blobs::{BlobError, BlobStore, Mismatch};
use crate::digest::Digest;
use crate::import::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME};
use crate::oci::{self, OciError, media_types as mt};

/// One image to export: its top manifest or index and the name to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportImage {
    /// Digest of the top manifest or index in the store.
    pub digest: Digest,
    /// Reference name, e.g. `web:1` or `hub.local:7480/team/web:1`.
    pub name: String,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Blobs written (each once, however many images share it).
    pub blobs: usize,
    /// Their total size in bytes.
    pub blob_bytes: u64,
}

/// Export errors, each naming the image or blob concerned.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("nothing to export: give at least one image")]
    NoImages,
    #[error(
        "invalid name {name:?} for image {digest}: a reference name must be non-empty and have no whitespace"
    )]
    InvalidName { name: String, digest: Digest },
    #[error("image {name} ({digest}): {source}")]
    Image {
        name: String,
        digest: Digest,
        #[source]
        source: Box<OciError>,
    },
    #[error("blob {digest}: {source}")]
    Blob {
        digest: Digest,
        #[source]
        source: BlobError,
    },
    #[error(
        "blob {digest} is corrupt in the store: its content hashes to {actual}; \
         delete it and pull or import the image again"
    )]
    Corrupt { digest: Digest, actual: Digest },
    #[error("writing the archive ({what}): {source}")]
    Write {
        what: String,
        #[source]
        source: io::Error,
    },
}

/// Writes `images` and every blob they reference as an OCI archive tar to
/// `out`, streaming blob contents. Fails, naming the blob, if one is missing
/// from the store or corrupt.
pub fn export_oci_archive<W: Write>(
    store: &BlobStore,
    images: &[ExportImage],
    out: W,
) -> Result<ExportSummary, ExportError> {
    if images.is_empty() {
        return Err(ExportError::NoImages);
    }
    let mut blobs: Vec<oci::BlobRef> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut entries = Vec::new();
    for img in images {
        if img.name.is_empty()
            || img
                .name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(ExportError::InvalidName {
                name: img.name.clone(),
                digest: img.digest.clone(),
            });
        }
        let all =
            oci::reachable_blobs(store, &img.digest).map_err(|source| ExportError::Image {
                name: img.name.clone(),
                digest: img.digest.clone(),
                source: Box::new(source),
            })?;
        if let Some(top) = all.last() {
            entries.push(serde_json::json!({
                "mediaType": top.media_type,
                "digest": top.digest,
                "size": top.size,
                "annotations": {
                    ANNOTATION_REF_NAME: img.name,
                    ANNOTATION_CONTAINERD_NAME: img.name,
                },
            }));
        }
        for b in all {
            if seen.insert(b.digest.clone()) {
                blobs.push(b);
            }
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": entries,
    });
    let layout = serde_json::json!({"imageLayoutVersion": "1.0.0"});
    let write_err = |what: &str| {
        let what = what.to_string();
        move |source| ExportError::Write { what, source }
    };
    let mut tar = tar::Builder::new(out);
    let json = |v: &serde_json::Value| serde_json::to_vec(v).unwrap_or_default();
    append(&mut tar, "oci-layout", &json(&layout)[..], None).map_err(write_err("oci-layout"))?;
    append(&mut tar, "index.json", &json(&index)[..], None).map_err(write_err("index.json"))?;
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, dir, io::empty())
            .map_err(write_err(dir))?;
    }
    let mut summary = ExportSummary {
        blobs: 0,
        blob_bytes: 0,
    };
    for b in &blobs {
        let blob_err = |source| ExportError::Blob {
            digest: b.digest.clone(),
            source,
        };
        let size = store
            .size(&b.digest)
            .map_err(blob_err)?
            .ok_or_else(|| blob_err(BlobError::NotFound(b.digest.clone())))?;
        let reader = store.open_verified(&b.digest).map_err(blob_err)?;
        let path = format!("blobs/sha256/{}", b.digest.hex());
        append(&mut tar, &path, reader, Some(size)).map_err(|e| {
            match e.get_ref().and_then(|i| i.downcast_ref::<Mismatch>()) {
                Some(m) => ExportError::Corrupt {
                    digest: b.digest.clone(),
                    actual: m.0.clone(),
                },
                None => ExportError::Write {
                    what: path.clone(),
                    source: e,
                },
            }
        })?;
        summary.blobs += 1;
        summary.blob_bytes += size;
    }
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(write_err("end of archive"))?;
    Ok(summary)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_cksum();
    h
}

/// Appends a regular file of `size` bytes (the slice length if `None`),
/// failing if the reader yields a different amount.
fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    data: impl Read,
    size: Option<u64>,
) -> io::Result<()> {
    struct Exact<R> {
        inner: R,
        left: u64,
    }
    impl<R: Read> Read for Exact<R> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.inner.read(buf)?;
            if n == 0 && self.left > 0 && !buf.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "blob shrank while being exported ({} bytes short)",
                        self.left
                    ),
                ));
            }
            if n as u64 > self.left {
                return Err(io::Error::other("blob grew while being exported"));
            }
            self.left -= n as u64;
            Ok(n)
        }
    }
    let mut data = data;
    let (size, reader): (u64, Box<dyn Read + '_>) = match size {
        Some(s) => (s, Box::new(&mut data)),
        None => {
            let mut v = Vec::new();
            data.read_to_end(&mut v)?;
            (v.len() as u64, Box::new(io::Cursor::new(v)))
        }
    };
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    // Read to the end even past `size` so a verifying reader reports mismatches.
    let mut exact = Exact {
        inner: reader,
        left: size,
    };
    tar.append_data(&mut h, path, &mut exact)?;
    let mut rest = [0u8; 1];
    if exact.inner.read(&mut rest)? != 0 {
        return Err(io::Error::other("blob grew while being exported"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = BlobStore::open(dir.path()).unwrap();
        (dir, s)
    }

    fn image(s: &BlobStore) -> Digest {
        let config = s.put_bytes(br#"{"architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#, None).unwrap();
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_MANIFEST,
            "config": {"mediaType": mt::OCI_CONFIG, "digest": config, "size": s.size(&config).unwrap().unwrap()},
            "layers": [],
        });
        s.put_bytes(&serde_json::to_vec(&m).unwrap(), None).unwrap()
    }

    fn entries(tar_bytes: &[u8]) -> Vec<String> {
        let mut ar = tar::Archive::new(tar_bytes);
        ar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn writes_a_deterministic_layout() {
        let (_d, s) = store();
        let top = image(&s);
        let img = [ExportImage {
            digest: top.clone(),
            name: "web:1".into(),
        }];
        let mut a = Vec::new();
        let sum = export_oci_archive(&s, &img, &mut a).unwrap();
        assert_eq!(sum.blobs, 2);
        let mut b = Vec::new();
        export_oci_archive(&s, &img, &mut b).unwrap();
        assert_eq!(a, b);
        let names = entries(&a);
        assert_eq!(
            &names[..4],
            ["oci-layout", "index.json", "blobs/", "blobs/sha256/"]
        );
        assert_eq!(
            names.last().unwrap(),
            &format!("blobs/sha256/{}", top.hex())
        );
    }

    #[test]
    fn refuses_missing_and_corrupt_blobs_and_bad_names() {
        let (_d, s) = store();
        let top = image(&s);
        let e = export_oci_archive(&s, &[], Vec::new()).unwrap_err();
        assert!(matches!(e, ExportError::NoImages));
        let bad = [ExportImage {
            digest: top.clone(),
            name: "a b".into(),
        }];
        assert!(matches!(
            export_oci_archive(&s, &bad, Vec::new()).unwrap_err(),
            ExportError::InvalidName { .. }
        ));
        let img = [ExportImage {
            digest: top.clone(),
            name: "web:1".into(),
        }];
        // Corrupt the config on disk: the export fails naming it.
        let config = oci::reachable_blobs(&s, &top).unwrap()[0].digest.clone();
        let p = s.path(&config);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[0] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let e = export_oci_archive(&s, &img, Vec::new()).unwrap_err();
        assert!(
            matches!(&e, ExportError::Corrupt { digest, .. } if *digest == config),
            "{e}"
        );
        s.delete(&config).unwrap();
        let e = export_oci_archive(&s, &img, Vec::new()).unwrap_err();
        assert!(e.to_string().contains(&config.to_string()), "{e}");
        s.delete(&top).unwrap();
        let e = export_oci_archive(&s, &img, Vec::new()).unwrap_err();
        assert!(matches!(e, ExportError::Image { .. }), "{e}");
    }
}
