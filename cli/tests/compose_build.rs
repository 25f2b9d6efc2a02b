//! `bramble compose` with `build:` end to end: a real hub and agent, the
//! busybox fixture as the base image. `up -d` builds the service from its
//! Dockerfile on the board (through `bramble build`'s code), runs it beside
//! a service from an image, and its published port serves the file the
//! build copied; `compose build` again finds every step cached; `up` again
//! builds nothing (the image is in the registry) and changes nothing; `up
//! --build` after a change rolls the new image out; a failing build stops
//! `compose build` naming its service.

use std::time::Duration;

use bramble_tests::cluster::{Broker, Cluster};
use bramble_tests::eventually;

mod support {
    pub mod compose;
}

use support::compose::{Project, curl};

#[test]
fn up_builds_the_service_from_its_dockerfile_and_a_second_build_is_cached() {
    let c = Cluster::start(Broker::Embedded, 1, &[]);
    c.push_busybox("bb", "1");
    let port = 8080;
    let lb = c.hub.lb_address;
    let p = Project::new(
        &c,
        "build",
        &format!(
            "services:
  web:
    build: ./web
    ports: ['{port}:80']
    stop_grace_period: 1s
  worker:
    image: bb:1
    command: [sh, -c, 'while true; do sleep 1; done']
    stop_grace_period: 1s
  broken:
    build:
      context: broken
      args: [CODE=3]
    profiles: [broken]
"
        ),
    );
    let content = format!("built by compose for {}", p.name);
    p.write(
        "web/Dockerfile",
        "FROM bb:1\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
    );
    p.write("web/index.html", &format!("{content}\n"));
    p.write("broken/Dockerfile", "FROM bb:1\nARG CODE\nRUN exit $CODE\n");

    // `config` shows the build as `up` runs it.
    let image = format!("{}-web:latest", p.name);
    let config = p.ok(&["config"]);
    let web_dir = p.dir.path().join("web");
    assert!(
        config.contains(&format!("context: {}", web_dir.display())),
        "{config}"
    );
    assert!(config.contains(&format!("image: {image}")), "{config}");

    let up = p.ok(&["up", "-d"]);
    assert!(up.contains(&format!("[+] Building web ({image})")), "{up}");
    assert!(up.contains("COPY index.html /www/index.html"), "{up}");
    assert!(up.contains(&format!("naming to {image} done")), "{up}");
    assert!(up.contains("deployment.apps/web created"), "{up}");
    assert!(up.contains("deployment.apps/worker created"), "{up}");
    assert!(!up.contains("Building worker"), "{up}");
    assert!(!up.contains("broken"), "not in an active profile: {up}");

    let body = eventually(
        "curl through the published port",
        Duration::from_secs(90),
        || {
            curl(&format!("http://{lb}:{port}/")).map_err(|err| {
                let (_, ps) = p.compose(&["ps"]);
                format!("{err}\n{ps}")
            })
        },
    );
    assert_eq!(body.trim(), content);
    let (code, web) = c.client().get(&format!(
        "/apis/apps/v1/namespaces/{}/deployments/web",
        p.name
    ));
    assert_eq!(code, 200, "{web}");
    // Pinned to the digest the build wrote, so a rebuilt image rolls out.
    let written = up
        .lines()
        .find_map(|l| l.split("writing image ").nth(1))
        .and_then(|l| l.strip_suffix(" done"))
        .expect(&up);
    assert_eq!(
        web["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("{image}@{written}")
    );
    eventually("worker runs", Duration::from_secs(60), || {
        let ps = p.ok(&["ps"]);
        if ps
            .lines()
            .any(|l| l.starts_with("worker-") && l.contains(" Up "))
        {
            Ok(())
        } else {
            Err(ps)
        }
    });

    // `up` without --build: the image is there, nothing is built
    // and the pods stay as they are.
    let up2 = p.ok(&["up", "-d"]);
    assert!(!up2.contains("Building"), "{up2}");
    assert!(up2.contains("deployment.apps/web unchanged"), "{up2}");

    // Built again: the context is in the registry and the step is cached.
    let again = p.ok(&["build"]);
    assert!(again.contains("nothing sent"), "{again}");
    assert_eq!(again.matches("CACHED").count(), 1, "{again}");
    assert!(
        again.contains(&format!("naming to {image} done")),
        "{again}"
    );

    // A changed file: `up --build` builds it again and rolls the pods out
    // (the template carries the image's digest).
    p.write("web/index.html", "changed\n");
    let up3 = p.ok(&["up", "-d", "--build"]);
    assert!(up3.contains("COPY index.html /www/index.html"), "{up3}");
    assert_eq!(up3.matches("CACHED").count(), 0, "{up3}");
    assert!(up3.contains("deployment.apps/web configured"), "{up3}");
    eventually("the rebuilt web answers", Duration::from_secs(90), || {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5", &format!("http://{lb}:{port}/")])
            .output()
            .expect("running curl");
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if body.trim() == "changed" {
            Ok(())
        } else {
            Err(format!("{body}{}", String::from_utf8_lossy(&out.stderr)))
        }
    });

    // A failing build names its service.
    let (ok, out) = p.compose(&["build", "broken"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "services.broken: building {}-broken:latest failed",
            p.name
        )),
        "{out}"
    );
    assert!(
        out.contains("RUN exit $CODE") || out.contains("RUN exit 3"),
        "{out}"
    );

    let down = p.ok(&["down"]);
    assert!(down.contains("deployment.apps/web deleted"), "{down}");
    eventually("web is gone", Duration::from_secs(30), || {
        let (code, v) = c.client().get(&format!(
            "/apis/apps/v1/namespaces/{}/deployments/web",
            p.name
        ));
        if code == 404 {
            Ok(())
        } else {
            Err(v.to_string())
        }
    });
}
