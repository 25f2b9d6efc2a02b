"""The official Python `kubernetes` client against a Bramble hub: list, create,
watch from a resourceVersion, patch (strategic merge, JSON patch), replace,
delete. Run by hub/tests/python_client.rs with the hub's kubeconfig; every
step asserts what it got; prints one line per step.
"""
import sys
import threading

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
apps = client.AppsV1Api()

# list
names = [n.metadata.name for n in core.list_namespace().items]
assert "default" in names, names
print("list namespaces:", ",".join(sorted(names)))

# create (typed objects, sent as JSON)
cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm", labels={"app": "py"}), data={"a": "1"})
created = core.create_namespaced_config_map("default", cm)
assert created.metadata.uid, created
rv = created.metadata.resource_version
print("created configmap at resourceVersion", rv)

dep = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="py-web"),
    spec=client.V1DeploymentSpec(
        replicas=1,
        selector=client.V1LabelSelector(match_labels={"app": "py-web"}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={"app": "py-web"}),
            spec=client.V1PodSpec(containers=[
                client.V1Container(name="app", image="busybox", env=[client.V1EnvVar(name="A", value="1")]),
            ]),
        ),
    ),
)
apps.create_namespaced_deployment("default", dep)

# watch from the configmap's resourceVersion: sees the later change and delete, not the create
events = []
def follow():
    w = watch.Watch()
    for e in w.stream(core.list_namespaced_config_map, "default", resource_version=rv,
                      label_selector="app=py", timeout_seconds=30):
        events.append((e["type"], e["object"].metadata.name, (e["object"].data or {}).get("a")))
        if e["type"] == "DELETED":
            w.stop()
t = threading.Thread(target=follow)
t.start()

# patch: a dict is sent as a strategic merge patch (env merged by name), a list as a JSON patch
apps.patch_namespaced_deployment("py-web", "default", {"spec": {"template": {"spec": {"containers": [
    {"name": "app", "env": [{"name": "B", "value": "2"}]}]}}}})
apps.patch_namespaced_deployment("py-web", "default", [{"op": "replace", "path": "/spec/replicas", "value": 3}])
got = apps.read_namespaced_deployment("py-web", "default")
env = [(e.name, e.value) for e in got.spec.template.spec.containers[0].env]
assert env == [("A", "1"), ("B", "2")], env
assert got.spec.replicas == 3, got.spec.replicas
print("patched deployment: replicas", got.spec.replicas, "env", env)

# replace, then delete
current = core.read_namespaced_config_map("py-cm", "default")
current.data = {"a": "2"}
core.replace_namespaced_config_map("py-cm", "default", current)
core.delete_namespaced_config_map("py-cm", "default")
t.join()
assert events == [("MODIFIED", "py-cm", "2"), ("DELETED", "py-cm", "2")], events
print("watched:", events)

# errors come back as ApiException with Kubernetes' status
try:
    core.read_namespaced_config_map("py-cm", "default")
    raise AssertionError("read of a deleted configmap succeeded")
except client.exceptions.ApiException as e:
    assert e.status == 404, e.status
    print("read after delete:", e.status, e.reason)
apps.delete_namespaced_deployment("py-web", "default")
print("ok")
