//! `bramble-demo-image OUT.tar [busybox|httpd]`: writes the demo image (a
//! multi-arch linux/amd64 + linux/arm64 + linux/arm/v7 OCI archive packed
//! from Debian's `busybox-static`) for `scripts/up` to import into the
//! hub's registry.

use std::path::PathBuf;
use std::process::ExitCode;

use bramble_tests::busybox;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: bramble-demo-image OUT.tar [busybox|httpd]");
        return ExitCode::from(2);
    };
    let kind = args.next().unwrap_or_else(|| "busybox".into());
    let image = match kind.as_str() {
        "busybox" => busybox::busybox_image(),
        "httpd" => busybox::httpd_image(),
        other => Err(format!(
            "unknown demo image {other:?}: use busybox or httpd"
        )),
    };
    let result = image.and_then(|img| {
        img.write_archive(&out, "latest")
            .map_err(|e| format!("writing {}: {e}", out.display()))
    });
    match result {
        Ok(()) => {
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bramble-demo-image: {e}");
            ExitCode::FAILURE
        }
    }
}
