//! Real projects' files shared by tests that build them on different
//! boards: [`STATIC_SITE`], a static site served by nginx from
//! `fixture/nginx:1` (`crate::debian_image::Base::Nginx`), its server config
//! replaced and checked with `nginx -t` in a `RUN` (built on this machine by
//! `tests/tests/build_projects.rs`, on the emulated arm64 board by
//! `tests/tests/arm.rs`); and [`write_tree`] to lay a project out.

use std::path::Path;

/// The static site's server: its pages, a header of its own, 404 for the rest.
pub const SITE_CONF: &str = "server {\n\
    listen 80 default_server;\n\
    root /usr/share/nginx/html;\n\
    index index.html;\n\
    add_header X-Site bramble-static always;\n\
    location / {\n\
        try_files $uri $uri/ =404;\n\
    }\n\
}\n";

/// The static site's files, by path in its directory.
pub const STATIC_SITE: &[(&str, &str)] = &[
    (
        "Dockerfile",
        "FROM fixture/nginx:1\n\
RUN rm /etc/nginx/conf.d/default.conf\n\
COPY nginx/site.conf /etc/nginx/conf.d/site.conf\n\
COPY site/ /usr/share/nginx/html/\n\
RUN nginx -t\n\
EXPOSE 80\n\
CMD [\"nginx\", \"-g\", \"daemon off;\"]\n",
    ),
    ("nginx/site.conf", SITE_CONF),
    (
        "site/index.html",
        "<!doctype html><title>Bramble</title><h1>A static site on a board</h1>\n",
    ),
    ("site/css/site.css", "h1 { color: green; }\n"),
];

/// Writes `files` (paths relative to `dir`, parents made) into `dir`.
pub fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
    }
}
