"""The official Python `kubernetes` client's EventsV1Api against a Bramble
hub: the FailedScheduling the hub records (a core/v1 Event) listed and read
through events.k8s.io/v1, a watch from a resourceVersion, an Event created
through events.k8s.io/v1 read back through core/v1, patch, replace (also of
the hub's own Event), a refused create, delete of a collection. Run by
hub/tests/events_v1.rs with the hub's kubeconfig; every step asserts what it
got; prints one line per step, `ok` last. Leaves one Event (`py-kept`) for
the Rust side to find with kubectl.
"""
import datetime
import sys
import threading
import time

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
ev1 = client.EventsV1Api()

# A pod no node can run: the scheduler records FailedScheduling (core/v1).
core.create_namespaced_pod("default", client.V1Pod(
    metadata=client.V1ObjectMeta(name="py-pod"),
    spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="busybox")])))
deadline = time.time() + 30
while True:
    listed = ev1.list_namespaced_event("default", field_selector="regarding.name=py-pod,reason=FailedScheduling")
    if listed.items:
        break
    assert time.time() < deadline, "no FailedScheduling for py-pod"
    time.sleep(0.3)
failed = listed.items[0]
assert failed.api_version == "events.k8s.io/v1", failed.api_version
assert failed.regarding.kind == "Pod" and failed.regarding.name == "py-pod", failed.regarding
assert failed.note and "nodes available" in failed.note, failed.note
assert failed.type == "Warning", failed.type
assert failed.deprecated_count == 1, failed.deprecated_count
assert failed.deprecated_source.component == "default-scheduler", failed.deprecated_source
assert failed.reporting_controller == "default-scheduler", failed.reporting_controller
assert failed.event_time is not None and failed.deprecated_first_timestamp is not None
print("listed:", failed.reason, "on", failed.regarding.name, "count", failed.deprecated_count)

got = ev1.read_namespaced_event(failed.metadata.name, "default")
assert got.note == failed.note, got
rv = listed.metadata.resource_version

# watch from the list's resourceVersion: sees what is created after it
seen = []
def follow():
    w = watch.Watch()
    for e in w.stream(ev1.list_namespaced_event, "default", resource_version=rv,
                      label_selector="made-by=py", timeout_seconds=30):
        seen.append((e["type"], e["object"].metadata.name, e["object"].note))
        if e["type"] == "DELETED":
            w.stop()
t = threading.Thread(target=follow)
t.start()

now = datetime.datetime.now(datetime.timezone.utc)
def new_event(name, note):
    return client.EventsV1Event(
        metadata=client.V1ObjectMeta(name=name, labels={"made-by": "py"}),
        event_time=now, reporting_controller="example.com/py-operator",
        reporting_instance="py-0", action="Reconcile", reason="PyCreated",
        note=note, type="Normal",
        regarding=client.V1ObjectReference(kind="Pod", name="py-pod", namespace="default"))

created = ev1.create_namespaced_event("default", new_event("py-ev", "made in python"))
assert created.metadata.uid and created.note == "made in python", created
assert created.event_time is not None
print("created through events.k8s.io/v1:", created.metadata.name)

# ... is a core/v1 Event
as_core = core.read_namespaced_event("py-ev", "default")
assert as_core.message == "made in python", as_core.message
assert as_core.involved_object.name == "py-pod", as_core.involved_object
assert as_core.reporting_component == "example.com/py-operator", as_core.reporting_component
assert as_core.action == "Reconcile" and as_core.event_time is not None, as_core
print("read through core/v1:", as_core.message)

# patch (a dict is a strategic merge patch) and replace
patched = ev1.patch_namespaced_event("py-ev", "default", {
    "metadata": {"labels": {"patched": "yes"}},
    "series": {"count": 2, "lastObservedTime": now.isoformat()}})
assert patched.metadata.labels["patched"] == "yes", patched.metadata.labels
assert patched.series.count == 2, patched.series
patched.metadata.labels["replaced"] = "yes"
replaced = ev1.replace_namespaced_event("py-ev", "default", patched)
assert replaced.metadata.labels["replaced"] == "yes", replaced.metadata.labels
print("patched and replaced: series", replaced.series.count)

# the hub's own (core/v1, no eventTime) Event replaced through events.k8s.io/v1
# as read: its eventTime is the shown one and it stays a core/v1 Event
mine = ev1.read_namespaced_event(failed.metadata.name, "default")
mine.metadata.labels = {"seen": "yes"}
ev1.replace_namespaced_event(mine.metadata.name, "default", mine)
back = core.read_namespaced_event(failed.metadata.name, "default")
assert back.metadata.labels == {"seen": "yes"}, back.metadata.labels
assert back.event_time is None and back.count == 1, back
print("replaced the hub's event: still core/v1, count", back.count)

# a change to an immutable field is refused
try:
    ev1.patch_namespaced_event("py-ev", "default", {"note": "rewritten"})
    raise AssertionError("a changed note was accepted")
except client.exceptions.ApiException as e:
    assert e.status == 422, e.status
    assert "note: Invalid value" in e.body and "field is immutable" in e.body, e.body
    print("immutable note:", e.status)

# a create without what events.k8s.io/v1 requires is refused, every field named
try:
    ev1.create_namespaced_event("default", {"metadata": {"name": "py-bad"}, "note": "x",
                                            "deprecatedCount": 3})
    raise AssertionError("an incomplete event was created")
except client.exceptions.ApiException as e:
    assert e.status == 422, e.status
    for want in ["eventTime: Required value", "deprecatedCount: Invalid value"]:
        assert want in e.body, e.body
    print("incomplete create:", e.status)

# delete of a collection, by label
ev1.create_namespaced_event("default", new_event("py-ev-2", "second"))
gone = ev1.delete_collection_namespaced_event("default", label_selector="made-by=py")
left = ev1.list_namespaced_event("default", label_selector="made-by=py").items
assert left == [], [e.metadata.name for e in left]
print("deleted the collection")
t.join()
names = [(k, n) for k, n, _ in seen]
assert names[:2] == [("ADDED", "py-ev"), ("MODIFIED", "py-ev")], seen
assert ("DELETED", "py-ev") in names or ("DELETED", "py-ev-2") in names, seen
assert all(note is not None for _, _, note in seen), seen
print("watched:", names)

kept = new_event("py-kept", "kept for kubectl")
kept.metadata.labels = {"made-by": "py-kept"}
ev1.create_namespaced_event("default", kept)
print("ok")
