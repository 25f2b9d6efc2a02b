//! COPY, ADD and WORKDIR steps on real overlays of the busybox fixture's
//! layers (root): each step's upper directory is checked (files, modes,
//! owners, times, links), and one of them is written as a layer and
//! unpacked again. Sources come from a context directory with a visible
//! list (what `.dockerignore` leaves) or from a stage's root; hostile
//! symlinks in the image and in the sources are shown to write and read
//! only inside their roots (the board's paths stay untouched). Nothing is
//! left mounted.

mod common;

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bramble_agent::build::copy::{CopyError, CopySource, copy_step, mkdir_step};
use bramble_agent::build::copy_tree::TreeError;
use bramble_dockerfile::plan::{CopyStep, InlineFile, Source};
use bramble_images::layer_diff::{DiffOptions, write_layer};
use bramble_images::unpack::{Compression, UnpackOptions, unpack_layer};
use common::{Sandbox, image, mounts_under};

const MTIME: u64 = 1_600_000_000;

fn copy(sources: &[&str], dest: &str) -> CopyStep {
    CopyStep {
        add: false,
        from: Source::Context,
        sources: sources.iter().map(|s| s.to_string()).collect(),
        inline: Vec::new(),
        dest: dest.into(),
        chown: None,
        chmod: None,
        link: false,
        unpack_archives: false,
    }
}

fn write(path: &Path, content: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, MTIME);
}

fn set_mtime(path: &Path, secs: u64) {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    File::open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

/// The context-relative paths of the files and links under `dir`, sorted
/// (what `bramble_dockerfile::context` lists), minus `hidden`.
fn listing(dir: &Path, hidden: &[&str]) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.retain(|p| !hidden.contains(&p.as_str()));
    out.sort();
    out
}

/// A world for one test: the fixture's layers plus `extra` layer dirs, a
/// context directory, and a counter for step directories.
struct World {
    sb: Sandbox,
    layers: Vec<PathBuf>,
    ctx: PathBuf,
    n: std::cell::Cell<usize>,
}

impl World {
    fn new(name: &str) -> World {
        let sb = Sandbox::new(name);
        let ctx = sb.dir().join("context");
        fs::create_dir_all(&ctx).unwrap();
        World {
            layers: image().layers.clone(),
            sb,
            ctx,
            n: std::cell::Cell::new(0),
        }
    }

    /// Adds a lower layer made by `f` in a fresh directory.
    fn layer(&mut self, f: impl FnOnce(&Path)) {
        let dir = self.sb.dir().join(format!("layer-{}", self.layers.len()));
        fs::create_dir_all(&dir).unwrap();
        f(&dir);
        self.layers.push(dir);
    }

    fn step_dir(&self) -> PathBuf {
        self.n.set(self.n.get() + 1);
        self.sb.dir().join(format!("step-{}", self.n.get()))
    }

    fn run(&self, step: &CopyStep, visible: &[String]) -> Result<PathBuf, CopyError> {
        let source = CopySource {
            root: &self.ctx,
            visible: Some(visible),
        };
        let out = copy_step(&self.layers, &self.step_dir(), step, &source);
        assert!(
            mounts_under(self.sb.dir()).is_empty(),
            "{:?}",
            mounts_under(self.sb.dir())
        );
        out
    }

    fn all(&self) -> Vec<String> {
        listing(&self.ctx, &[])
    }
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

fn mtime(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().mtime() as u64
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Names in a directory of an upper dir, sorted.
fn names(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn files_directories_and_their_places() {
    let mut w = World::new("copy-places");
    w.layer(|l| fs::create_dir_all(l.join("opt")).unwrap());
    write(&w.ctx.join("a.txt"), "alpha\n", 0o640);
    // The uploader's owner is not the image's: context files become 0:0.
    std::os::unix::fs::chown(w.ctx.join("a.txt"), Some(4321), Some(4321)).unwrap();
    write(&w.ctx.join("src/main.rs"), "fn main() {}\n", 0o644);
    write(&w.ctx.join("src/sub/x"), "x\n", 0o600);
    fs::set_permissions(w.ctx.join("src/sub"), fs::Permissions::from_mode(0o750)).unwrap();
    set_mtime(&w.ctx.join("src/sub"), MTIME + 5);
    let all = w.all();

    // file -> file
    let up = w.run(&copy(&["a.txt"], "/b.txt"), &all).unwrap();
    assert_eq!(read(&up.join("b.txt")), "alpha\n");
    assert_eq!(mode(&up.join("b.txt")), 0o640);
    assert_eq!(mtime(&up.join("b.txt")), MTIME);
    assert_eq!(owner(&up.join("b.txt")), (0, 0));

    // file -> dir/ (made, 0755)
    let up = w.run(&copy(&["./a.txt"], "/app/"), &all).unwrap();
    assert_eq!(read(&up.join("app/a.txt")), "alpha\n");
    assert_eq!(mode(&up.join("app")), 0o755);

    // file -> existing directory without a slash: inside it
    let up = w.run(&copy(&["a.txt"], "/opt"), &all).unwrap();
    assert_eq!(read(&up.join("opt/a.txt")), "alpha\n");

    // dir -> its contents, modes and times of what is inside kept
    let up = w.run(&copy(&["src"], "/code"), &all).unwrap();
    assert_eq!(names(&up.join("code")), ["main.rs", "sub"]);
    assert_eq!(read(&up.join("code/sub/x")), "x\n");
    assert_eq!(mode(&up.join("code/sub/x")), 0o600);
    assert_eq!(mode(&up.join("code/sub")), 0o750);
    assert_eq!(mtime(&up.join("code/sub")), MTIME + 5);

    // a file into an existing directory of the image goes inside it
    let up = w.run(&copy(&["a.txt"], "/bin"), &all).unwrap();
    assert_eq!(read(&up.join("bin/a.txt")), "alpha\n");
    // a directory over a file, or a file over a directory, is refused
    let err = w.run(&copy(&["src"], "/bin/sh"), &all).unwrap_err();
    assert!(
        matches!(err, CopyError::Tree(TreeError::NotADirectory { .. })),
        "{err}"
    );
    write(&w.ctx.join("over/bin"), "not a directory", 0o644);
    let all = w.all();
    let err = w.run(&copy(&["over"], "/"), &all).unwrap_err();
    assert!(
        matches!(err, CopyError::Tree(TreeError::IsADirectory { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("/bin"), "{err}");
}

#[test]
fn globs_several_sources_and_missing_ones() {
    let w = World::new("copy-globs");
    for f in ["a.txt", "b.txt", "c.md", "sub/d.txt"] {
        write(&w.ctx.join(f), f, 0o644);
    }
    let all = w.all();
    let up = w.run(&copy(&["*.txt"], "/out/"), &all).unwrap();
    assert_eq!(names(&up.join("out")), ["a.txt", "b.txt"]);
    let up = w.run(&copy(&["*/d.txt", "c.md"], "/out/"), &all).unwrap();
    assert_eq!(names(&up.join("out")), ["c.md", "d.txt"]);
    // A glob matching one file may name a file.
    let up = w.run(&copy(&["c.m?"], "/doc.md"), &all).unwrap();
    assert_eq!(read(&up.join("doc.md")), "c.md");

    let err = w.run(&copy(&["*.txt"], "/single"), &all).unwrap_err();
    assert!(
        err.to_string().starts_with(
            "when using COPY with more than one source file, the destination must be a directory and end with a /"
        ),
        "{err}"
    );
    // A glob that matches nothing copies nothing (BuildKit); a missing path fails.
    let up = w.run(&copy(&["*.none"], "/empty/"), &all).unwrap();
    assert_eq!(names(&up.join("empty")), Vec::<String>::new());
    let err = w.run(&copy(&["missing.txt"], "/x"), &all).unwrap_err();
    assert!(matches!(err, CopyError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("\"missing.txt\""), "{err}");
    // `..` above the context is refused.
    let err = w
        .run(&copy(&["sub/../../etc/passwd"], "/x"), &all)
        .unwrap_err();
    assert!(matches!(err, CopyError::Pattern(_)), "{err}");
}

#[test]
fn owners_by_number_and_name_and_chmod() {
    let mut w = World::new("copy-owners");
    w.layer(|l| {
        write(
            &l.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
            0o644,
        );
        write(&l.join("etc/group"), "root:x:0:\nstaff:x:50:app\n", 0o644);
    });
    write(&w.ctx.join("a.txt"), "a", 0o644);
    write(&w.ctx.join("src/x"), "x", 0o600);
    let all = w.all();

    let mut s = copy(&["a.txt"], "/n/deep/");
    s.chown = Some("1000:1000".into());
    let up = w.run(&s, &all).unwrap();
    assert_eq!(owner(&up.join("n/deep/a.txt")), (1000, 1000));
    // The parents made for the copy belong to the owner too (BuildKit's MkdirAll).
    assert_eq!(owner(&up.join("n")), (1000, 1000));

    let mut s = copy(&["src"], "/named/");
    s.chown = Some("app:staff".into());
    let up = w.run(&s, &all).unwrap();
    assert_eq!(owner(&up.join("named/x")), (1000, 50));
    let mut s = copy(&["a.txt"], "/named/");
    s.chown = Some("app".into());
    let up = w.run(&s, &all).unwrap();
    assert_eq!(owner(&up.join("named/a.txt")), (1000, 1001));

    let mut s = copy(&["a.txt"], "/x");
    s.chown = Some("ghost".into());
    let err = w.run(&s, &all).unwrap_err();
    assert!(matches!(err, CopyError::Owner { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("\"ghost\"") && msg.contains("/etc/passwd"),
        "{msg}"
    );

    let mut s = copy(&["."], "/m/");
    s.chmod = Some(0o751);
    let up = w.run(&s, &all).unwrap();
    assert_eq!(mode(&up.join("m/a.txt")), 0o751);
    assert_eq!(mode(&up.join("m/src")), 0o751);
    assert_eq!(mode(&up.join("m/src/x")), 0o751);
    assert_eq!(mtime(&up.join("m/src/x")), MTIME);
}

#[test]
fn source_symlinks_are_copied_as_links_and_followed_only_inside_their_root() {
    let w = World::new("copy-links");
    write(&w.ctx.join("a.txt"), "context a\n", 0o644);
    write(&w.ctx.join("etc/hostname"), "context hostname\n", 0o644);
    fs::create_dir_all(w.ctx.join("dir")).unwrap();
    symlink("../a.txt", w.ctx.join("dir/rel")).unwrap();
    // Links to the board's files, absolute.
    symlink("/etc/hostname", w.ctx.join("board")).unwrap();
    symlink("/etc/shadow", w.ctx.join("shadow")).unwrap();
    let all = w.all();

    let up = w.run(&copy(&["dir"], "/d/"), &all).unwrap();
    assert_eq!(
        fs::read_link(up.join("d/rel")).unwrap(),
        Path::new("../a.txt")
    );

    // Named explicitly, a link is followed, inside the context.
    let up = w.run(&copy(&["board"], "/h"), &all).unwrap();
    assert!(fs::symlink_metadata(up.join("h")).unwrap().is_file());
    assert_eq!(read(&up.join("h")), "context hostname\n");
    let err = w.run(&copy(&["shadow"], "/s"), &all).unwrap_err();
    assert!(matches!(err, CopyError::NotFound { .. }), "{err}");

    // Inside a copied directory, links stay links, never read.
    let up = w.run(&copy(&["."], "/all/"), &all).unwrap();
    assert_eq!(
        fs::read_link(up.join("all/shadow")).unwrap(),
        Path::new("/etc/shadow")
    );
    assert_eq!(
        fs::read_link(up.join("all/board")).unwrap(),
        Path::new("/etc/hostname")
    );
}

#[test]
fn hostile_destination_links_write_only_inside_the_image() {
    let mut w = World::new("copy-hostile");
    let outside = w.sb.dir().join("outside");
    fs::create_dir_all(&outside).unwrap();
    let unique = format!("bramble-copy-test-{}.txt", std::process::id());
    let outside_c = outside.clone();
    // The board's own passwd-like file, which the image's /etc/passwd names.
    let board_passwd = w.sb.dir().join("board-passwd");
    fs::write(&board_passwd, "evil:x:4242:4242::/:/bin/sh\n").unwrap();
    let board_passwd_c = board_passwd.clone();
    w.layer(move |l| {
        fs::create_dir_all(l.join("etc")).unwrap();
        symlink(&board_passwd_c, l.join("etc/passwd")).unwrap();
        symlink("/", l.join("app")).unwrap();
        symlink("../../../../../..", l.join("up")).unwrap();
        symlink(&outside_c, l.join("host")).unwrap();
        fs::create_dir_all(l.join("var")).unwrap();
        symlink("/run", l.join("var/run")).unwrap();
        fs::create_dir_all(l.join("run")).unwrap();
    });
    write(&w.ctx.join(&unique), "payload\n", 0o644);
    let all = w.all();

    let up = w.run(&copy(&[&unique], "/app/"), &all).unwrap();
    assert_eq!(
        read(&up.join(&unique)),
        "payload\n",
        "/app -> / is the image's root"
    );
    let up = w.run(&copy(&[&unique], "/app"), &all).unwrap();
    assert_eq!(
        read(&up.join(&unique)),
        "payload\n",
        "/app -> / is a directory"
    );
    let up = w.run(&copy(&["."], "/up"), &all).unwrap();
    assert_eq!(
        read(&up.join(&unique)),
        "payload\n",
        "a directory's contents into /up -> /"
    );
    let up = w.run(&copy(&[&unique], "/up/escaped.txt"), &all).unwrap();
    assert_eq!(
        read(&up.join("escaped.txt")),
        "payload\n",
        "`..` stops at the image's root"
    );
    let up = w.run(&copy(&[&unique], "/up/../../tmp/"), &all).unwrap();
    assert_eq!(read(&up.join("tmp").join(&unique)), "payload\n");
    let up = w.run(&copy(&[&unique], "/var/run/x/"), &all).unwrap();
    assert_eq!(read(&up.join("run/x").join(&unique)), "payload\n");
    // A link to a board directory is taken from the image's root, where it
    // does not exist.
    assert!(w.run(&copy(&[&unique], "/host/"), &all).is_err());
    assert!(w.run(&copy(&[&unique], "/host/f"), &all).is_err());

    // --chown names are looked up in the image, never in the board's files.
    let mut s = copy(&[&unique], "/owned");
    s.chown = Some("evil".into());
    let err = w.run(&s, &all).unwrap_err();
    assert!(matches!(err, CopyError::Owner { .. }), "{err}");

    assert_eq!(
        names(&outside),
        Vec::<String>::new(),
        "written on the board"
    );
    assert!(
        !Path::new("/").join(&unique).exists(),
        "written in the board's /"
    );
    assert!(
        !Path::new("/tmp").join(&unique).exists(),
        "written in the board's /tmp"
    );
    assert!(
        !Path::new("/escaped.txt").exists(),
        "written in the board's /"
    );
}

#[test]
fn ignored_context_files_stay_invisible() {
    let w = World::new("copy-ignored");
    for f in [
        "keep.txt",
        "secret.txt",
        "src/ok.rs",
        "src/secret.key",
        "private/k",
    ] {
        write(&w.ctx.join(f), f, 0o644);
    }
    let visible = listing(&w.ctx, &["secret.txt", "src/secret.key", "private/k"]);
    let up = w.run(&copy(&["*.txt"], "/g/"), &visible).unwrap();
    assert_eq!(names(&up.join("g")), ["keep.txt"]);
    let up = w.run(&copy(&["."], "/all/"), &visible).unwrap();
    assert_eq!(names(&up.join("all")), ["keep.txt", "src"]);
    assert_eq!(names(&up.join("all/src")), ["ok.rs"]);
    let up = w.run(&copy(&["*"], "/star/"), &visible).unwrap();
    assert_eq!(names(&up.join("star")), ["keep.txt", "ok.rs"]);
    let err = w.run(&copy(&["secret.txt"], "/x"), &visible).unwrap_err();
    assert!(err.to_string().contains(".dockerignore"), "{err}");
    assert!(w.run(&copy(&["private"], "/p/"), &visible).is_err());
}

#[test]
fn add_extracts_local_archives_and_copies_other_files() {
    let w = World::new("copy-add");
    // The archive: a gzip tar written by the layer writer from a tree.
    let tree = w.sb.dir().join("tree");
    write(&tree.join("pkg/bin/tool"), "#!/bin/sh\n", 0o755);
    std::os::unix::fs::chown(tree.join("pkg/bin/tool"), Some(1234), Some(5678)).unwrap();
    // (after the chown, which clears setuid)
    fs::set_permissions(
        tree.join("pkg/bin/tool"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    let mut blob = Vec::new();
    write_layer(&tree, &mut blob, &DiffOptions::default()).unwrap();
    fs::write(w.ctx.join("app.tar.gz"), &blob).unwrap();
    write(&w.ctx.join("notes.txt"), "not an archive\n", 0o644);
    fs::write(w.ctx.join("empty.tar"), b"").unwrap();
    let all = w.all();

    let mut s = copy(&["app.tar.gz", "notes.txt", "empty.tar"], "/opt/");
    s.add = true;
    s.unpack_archives = true;
    let up = w.run(&s, &all).unwrap();
    let tool = up.join("opt/pkg/bin/tool");
    assert_eq!(read(&tool), "#!/bin/sh\n");
    assert_eq!(mode(&tool), 0o4755);
    assert_eq!(owner(&tool), (1234, 5678));
    assert_eq!(mtime(&tool), MTIME);
    assert_eq!(read(&up.join("opt/notes.txt")), "not an archive\n");
    assert_eq!(fs::metadata(up.join("opt/empty.tar")).unwrap().len(), 0);
    assert!(!up.join("opt/app.tar.gz").exists());

    // --chown applies to what is extracted.
    let mut s = copy(&["app.tar.gz"], "/chowned");
    s.add = true;
    s.unpack_archives = true;
    s.chown = Some("7:8".into());
    let up = w.run(&s, &all).unwrap();
    assert_eq!(owner(&up.join("chowned/pkg/bin/tool")), (7, 8));

    // A `.wh.` entry (a deletion mark of image layers) is refused.
    let marked = w.sb.dir().join("marked");
    write(&marked.join("keep"), "k", 0o644);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        marked.join("gone"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
    let mut blob2 = Vec::new();
    write_layer(&marked, &mut blob2, &DiffOptions::default()).unwrap();
    fs::write(w.ctx.join("marked.tar.gz"), &blob2).unwrap();
    let all = w.all();
    let mut s = copy(&["marked.tar.gz"], "/m/");
    s.add = true;
    s.unpack_archives = true;
    let err = w.run(&s, &all).unwrap_err();
    assert!(err.to_string().contains("whiteout"), "{err}");

    // COPY never extracts.
    let up = w.run(&copy(&["app.tar.gz"], "/c/"), &all).unwrap();
    assert_eq!(fs::read(up.join("c/app.tar.gz")).unwrap(), blob);
}

#[test]
fn heredocs_and_copies_from_a_stage() {
    let w = World::new("copy-stage");
    let stage = w.sb.dir().join("stage-root");
    write(&stage.join("out/bin/app"), "binary", 0o755);
    std::os::unix::fs::chown(stage.join("out/bin/app"), Some(33), Some(44)).unwrap();
    symlink("/etc/shadow", stage.join("out/leak")).unwrap();
    fs::hard_link(stage.join("out/bin/app"), stage.join("out/bin/app2")).unwrap();
    let mut s = copy(&["/out/bin/app*", "out/leak"], "/usr/local/bin/");
    s.from = Source::Stage(0);
    s.inline.push(InlineFile {
        path: "/usr/local/bin/run.sh".into(),
        content: "echo hi\n".into(),
        mode: 0o700,
    });
    let source = CopySource {
        root: &stage,
        visible: None,
    };
    let out = copy_step(&w.layers, &w.step_dir(), &s, &source);
    assert!(mounts_under(w.sb.dir()).is_empty());
    // The explicit link leads nowhere inside the stage: not found, never
    // the board's /etc/shadow.
    assert!(matches!(out, Err(CopyError::NotFound { .. })), "{out:?}");
    s.sources.pop();
    let up = copy_step(&w.layers, &w.step_dir(), &s, &source).unwrap();
    let app = up.join("usr/local/bin/app");
    assert_eq!(read(&app), "binary");
    // A stage's owners are kept (BuildKit).
    assert_eq!(owner(&app), (33, 44));
    // Hardlinks within one copy stay hardlinks.
    assert_eq!(
        fs::metadata(&app).unwrap().ino(),
        fs::metadata(up.join("usr/local/bin/app2")).unwrap().ino()
    );
    assert_eq!(read(&up.join("usr/local/bin/run.sh")), "echo hi\n");
    assert_eq!(mode(&up.join("usr/local/bin/run.sh")), 0o700);
}

#[test]
fn workdir_is_made_with_its_user_and_a_copy_becomes_a_layer() {
    let mut w = World::new("copy-workdir");
    w.layer(|l| {
        write(
            &l.join("etc/passwd"),
            "app:x:1000:1001::/home/app:/bin/sh\n",
            0o644,
        );
        fs::create_dir_all(l.join("var")).unwrap();
        symlink("/run", l.join("var/run")).unwrap();
        fs::create_dir_all(l.join("run")).unwrap();
    });
    let up = mkdir_step(&w.layers, &w.step_dir(), "/home/app/work", "app").unwrap();
    assert_eq!(owner(&up.join("home/app/work")), (1000, 1001));
    assert_eq!(owner(&up.join("home")), (1000, 1001));
    assert_eq!(mode(&up.join("home/app/work")), 0o755);
    let up = mkdir_step(&w.layers, &w.step_dir(), "/var/run/svc", "").unwrap();
    assert_eq!(owner(&up.join("run/svc")), (0, 0));
    let err = mkdir_step(&w.layers, &w.step_dir(), "/w", "nobody").unwrap_err();
    assert!(err.to_string().contains("\"nobody\""), "{err}");
    assert!(mounts_under(w.sb.dir()).is_empty());

    // A COPY's upper directory as a layer: owners and modes as copied.
    write(&w.ctx.join("bin/tool"), "tool", 0o750);
    let all = w.all();
    let mut s = copy(&["bin"], "/opt/bin/");
    s.chown = Some("app".into());
    let up = w.run(&s, &all).unwrap();
    let mut blob = Vec::new();
    let info = write_layer(&up, &mut blob, &DiffOptions::default()).unwrap();
    let layer = w.sb.dir().join("copy-layer");
    unpack_layer(
        blob.as_slice(),
        Compression::Gzip,
        &layer,
        &info.diff_id,
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(read(&layer.join("opt/bin/tool")), "tool");
    assert_eq!(owner(&layer.join("opt/bin/tool")), (1000, 1001));
    assert_eq!(mode(&layer.join("opt/bin/tool")), 0o750);
    assert_eq!(owner(&layer.join("opt")), (1000, 1001));
    assert_eq!(mode(&layer.join("opt")), 0o755);
}
