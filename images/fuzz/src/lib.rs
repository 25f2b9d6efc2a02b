//! The harness behind `fuzz_targets/unpack_layer.rs`: turns fuzzer bytes into
//! a layer blob, unpacks it into a nested sandbox with canaries at every
//! level, and checks that nothing escaped the destination.
//!
//! Input: one mode byte, then the layer.
//! - bits 0-1: 0 plain tar, 1 gzip it, 2 zstd it (the harness compresses, so
//!   the diff_id is known and a well-formed layer really gets unpacked),
//!   3 hand the bytes over as they are with `Compression::Auto` (fuzzes the
//!   decompressors; the diff_id is the bytes' own digest).
//! - bit 2: repair tar header checksums first (random mutations rarely keep
//!   them valid, which would stop every input at the first header).
//! - bit 3: `allow_devices`; bit 4: `keep_setuid`.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use bramble_images::Digest;
use bramble_images::unpack::{Compression, UnpackOptions, unpack_layer};

/// Recomputes the checksum of every header of a tar stream, in place.
pub fn repair_tar(buf: &mut [u8]) {
    let mut off = 0usize;
    while off + 512 <= buf.len() {
        let h = &mut buf[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            off += 512;
            continue;
        }
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        let field = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(&field.as_bytes()[..8]);
        let size = std::str::from_utf8(&h[124..136])
            .ok()
            .and_then(|s| u64::from_str_radix(s.trim_matches(|c| c == ' ' || c == '\0'), 8).ok())
            .unwrap_or(0);
        let data = size.div_ceil(512).saturating_mul(512);
        off = off.saturating_add(512).saturating_add(data as usize);
    }
}

/// A prepared case.
pub struct Case {
    pub blob: Vec<u8>,
    pub compression: Compression,
    pub diff_id: Digest,
    pub opts: UnpackOptions,
}

/// Decodes fuzzer input into a case (see the module docs).
pub fn prepare(data: &[u8]) -> Option<Case> {
    let (&mode, body) = data.split_first()?;
    let mut tar = body.to_vec();
    if mode & 4 != 0 && mode & 3 != 3 {
        repair_tar(&mut tar);
    }
    let diff_id = Digest::of(&tar);
    let (blob, compression) = match mode & 3 {
        0 => (tar, Compression::None),
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).ok()?;
            (e.finish().ok()?, Compression::Gzip)
        }
        2 => (
            ruzstd::encoding::compress_to_vec(
                &tar[..],
                ruzstd::encoding::CompressionLevel::Fastest,
            ),
            Compression::Zstd,
        ),
        _ => (tar, Compression::Auto),
    };
    let opts = UnpackOptions {
        allow_devices: mode & 8 != 0,
        keep_setuid: mode & 16 != 0,
        apply_owners: true,
        max_uncompressed_bytes: Some(16 << 20),
        sync: false,
    };
    Some(Case {
        blob,
        compression,
        diff_id,
        opts,
    })
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .expect("sandbox directory is readable")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Walks the unpacked tree without following symlinks and checks what the
/// options promise.
fn check_tree(dir: &Path, opts: &UnpackOptions) {
    for e in fs::read_dir(dir).expect("unpacked dir readable") {
        let e = e.expect("dir entry");
        let p = e.path();
        let m = fs::symlink_metadata(&p).expect("lstat");
        let ft = m.file_type();
        if !opts.keep_setuid && !ft.is_symlink() {
            assert_eq!(
                m.mode() & 0o6000,
                0,
                "setuid/setgid kept on {}",
                p.display()
            );
        }
        if !opts.allow_devices && (ft.is_block_device() || ft.is_fifo() || ft.is_socket()) {
            panic!("device node {} created with allow_devices off", p.display());
        }
        if !opts.allow_devices && ft.is_char_device() {
            assert_eq!(
                m.rdev(),
                0,
                "only 0/0 whiteouts may be char devices: {}",
                p.display()
            );
        }
        if ft.is_dir() {
            check_tree(&p, opts);
        }
    }
}

/// Unpacks a case in a fresh sandbox and asserts that nothing escaped.
pub fn run(case: &Case) {
    let tmp = tempfile::Builder::new()
        .prefix("bramble-fuzz")
        .tempdir()
        .expect("tempdir");
    // base/{canary,a/{canary,b/{canary,c/{canary,layer}}}}
    let levels = ["a", "b", "c"];
    let mut dir = tmp.path().to_path_buf();
    let mut dirs = vec![dir.clone()];
    for l in levels {
        fs::write(dir.join("canary"), b"canary").expect("canary");
        dir = dir.join(l);
        fs::create_dir(&dir).expect("level");
        dirs.push(dir.clone());
    }
    fs::write(dir.join("canary"), b"canary").expect("canary");
    let dest = dir.join("layer");

    let result = unpack_layer(
        &case.blob[..],
        case.compression,
        &dest,
        &case.diff_id,
        &case.opts,
    );

    for (i, d) in dirs.iter().enumerate() {
        let mut want = set(&["canary"]);
        if let Some(next) = levels.get(i) {
            want.insert(next.to_string());
        } else if result.is_ok() {
            want.insert("layer".to_string());
        }
        assert_eq!(
            names(d),
            want,
            "something appeared outside the layer in {}",
            d.display()
        );
        let c = d.join("canary");
        let m = fs::symlink_metadata(&c).expect("canary exists");
        assert!(
            m.file_type().is_file(),
            "canary replaced at {}",
            c.display()
        );
        assert_eq!(fs::read(&c).expect("canary"), b"canary", "canary modified");
    }
    match result {
        Ok(stats) => {
            assert_eq!(stats.diff_id.as_ref(), Some(&case.diff_id));
            check_tree(&dest, &case.opts);
        }
        Err(e) => {
            // Every error is displayable and the destination does not exist.
            let _ = e.to_string();
            assert!(
                fs::symlink_metadata(&dest).is_err(),
                "destination left after {e}"
            );
        }
    }
}

/// Seed inputs: well-formed and malicious layers in each mode.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    fn raw(
        b: &mut tar::Builder<Vec<u8>>,
        name: &str,
        kind: tar::EntryType,
        link: &str,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o4755);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    use tar::EntryType as T;
    let mut out = Vec::new();
    /// name, type, link target, data
    type Entry<'a> = (&'a str, T, &'a str, &'a [u8]);
    let layers: Vec<(&str, Vec<Entry>)> = vec![
        (
            "normal",
            vec![
                ("etc/", T::Directory, "", b""),
                ("etc/passwd", T::Regular, "", b"root:x:0:0::/root:/bin/sh\n"),
                ("bin/sh", T::Regular, "", b"\x7fELF"),
                ("bin/ash", T::Link, "bin/sh", b""),
                ("usr/bin", T::Symlink, "/bin", b""),
            ],
        ),
        (
            "whiteouts",
            vec![
                ("a/.wh.b", T::Regular, "", b""),
                ("c/.wh..wh..opq", T::Regular, "", b""),
                ("c/d", T::Regular, "", b"d"),
                (".wh.e", T::Regular, "", b""),
            ],
        ),
        (
            "escapes",
            vec![
                ("../x", T::Regular, "", b"x"),
                ("/tmp/x", T::Regular, "", b"x"),
                ("evil", T::Symlink, "/", b""),
                ("evil/tmp/x", T::Regular, "", b"x"),
                ("h", T::Link, "../../../canary", b""),
            ],
        ),
        (
            "devices",
            vec![
                ("dev/null", T::Char, "", b""),
                ("dev/sda", T::Block, "", b""),
                ("dev/fifo", T::Fifo, "", b""),
            ],
        ),
        (
            "replace",
            vec![
                ("x", T::Symlink, "../canary", b""),
                ("x", T::Regular, "", b"file"),
                ("d", T::Symlink, "..", b""),
                ("d/", T::Directory, "", b""),
                ("d/f", T::Regular, "", b"f"),
            ],
        ),
    ];
    for (name, entries) in layers {
        let mut b = tar::Builder::new(Vec::new());
        for (n, k, l, d) in entries {
            raw(&mut b, n, k, l, d);
        }
        let tar = b.into_inner().expect("tar");
        for mode in [0u8, 1, 2, 4 | 8 | 16] {
            let mut input = vec![mode];
            input.extend_from_slice(&tar);
            out.push((format!("{name}-{mode}"), input));
        }
        // Pre-compressed for the raw/auto mode.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&tar).expect("gzip");
        let mut input = vec![3u8];
        input.extend(e.finish().expect("gzip"));
        out.push((format!("{name}-3"), input));
    }
    out
}
