//! An external mosquitto over TLS: `bramble-hub issue-cert` gives it a
//! certificate from the cluster CA, the hub connects with `--mqtt-url
//! mqtts://` trusting that CA (the boards trust it the same way), a client
//! with the CA's file (mosquitto_pub, as any board's TLS) gets in, one
//! without TLS does not, and a hub told to trust another CA refuses the
//! broker.

use bramble_tests::eventually;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bramble_tests::HubProcess;
use bramble_tests::mosquitto::Mosquitto;

fn hub_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bramble-hub"))
}

#[test]
fn an_external_mosquitto_with_an_issued_certificate_carries_the_hub_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("hub");
    let certs = dir.path().join("certs");
    let out = Command::new(hub_bin())
        .arg("--data-dir")
        .arg(&data)
        .args(["issue-cert", "--name", "127.0.0.1", "--out"])
        .arg(&certs)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(certs.join("tls.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read(certs.join("ca.crt")).unwrap(),
        std::fs::read(data.join("ca.crt")).unwrap()
    );

    let broker = Mosquitto::start_with(&format!(
        // `user root`: the key is root's 0600 file (a real setup chowns it to
        // the mosquitto user, which Debian's mosquitto drops to).
        "user root\ncertfile {}\nkeyfile {}\nallow_anonymous true\n",
        certs.join("tls.crt").display(),
        certs.join("tls.key").display()
    ));
    let port = broker.port.to_string();
    // A client trusting the cluster CA gets in; a plain one does not.
    let publish = |tls: bool| {
        let mut c = Command::new("mosquitto_pub");
        c.args(["-h", "127.0.0.1", "-p", &port, "-t", "probe", "-m", "x"]);
        if tls {
            c.arg("--cafile").arg(data.join("ca.crt"));
        }
        c.output().unwrap().status.success()
    };
    assert!(
        publish(true),
        "mosquitto_pub with the cluster CA was refused"
    );
    assert!(!publish(false), "the TLS listener took plain MQTT");

    let url = format!("mqtts://127.0.0.1:{port}");
    let hub = HubProcess::start_with_args(hub_bin(), &data, "info", &["--mqtt-url", &url]);
    eventually("the hub's MQTT connection", Duration::from_secs(30), || {
        hub.log().contains("MQTT connected").then_some(())
    });
    drop(hub);

    // Told to trust another CA, the hub refuses this broker's certificate.
    let other = tempfile::tempdir().unwrap();
    let out = Command::new(hub_bin())
        .arg("--data-dir")
        .arg(other.path().join("data"))
        .args(["issue-cert", "--name", "127.0.0.1", "--out"])
        .arg(other.path().join("certs"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let foreign = other.path().join("certs/ca.crt");
    let hub = HubProcess::start_with_args(
        hub_bin(),
        &data,
        "info",
        &[
            "--mqtt-url",
            &url,
            "--mqtt-ca",
            &foreign.display().to_string(),
        ],
    );
    let log = eventually("the hub's refusal", Duration::from_secs(30), || {
        let log = hub.log();
        log.contains("MQTT connection lost").then_some(log)
    });
    assert!(!log.contains("MQTT connected"), "{log}");
    assert!(
        log.contains("certificate") || log.contains("Certificate"),
        "{log}"
    );
}
