#!/usr/bin/env python3
"""Generates hub/src/api/protobuf/schema_table.rs from Kubernetes' types.go
(json + protobuf struct tags) and checks every field number against the
package's generated.proto.

Usage: gen_schema_table.py DIR > schema_table.rs, then rustfmt, where DIR holds, from the
tags v0.32.4 of k8s.io/api and k8s.io/apimachinery, {core/v1, apps/v1,
networking/v1, policy/v1, autoscaling/v2, storage/v1, batch/v1}/{types.go,generated.proto} and
pkg/apis/meta/v1/{types.go,generated.proto}. Prints to stderr which
message-typed fields it left out (refused when sent)."""
import re, sys, collections
K = sys.argv[1]
PKGS = {  # key -> (types.go, generated.proto, openapi prefix, rust prefix)
    "core": (f"{K}/core/v1/types.go", f"{K}/core/v1/generated.proto", "io.k8s.api.core.v1", "CORE"),
    "apps": (f"{K}/apps/v1/types.go", f"{K}/apps/v1/generated.proto", "io.k8s.api.apps.v1", "APPS"),
    "net": (f"{K}/networking/v1/types.go", f"{K}/networking/v1/generated.proto", "io.k8s.api.networking.v1", "NET"),
    "policy": (f"{K}/policy/v1/types.go", f"{K}/policy/v1/generated.proto", "io.k8s.api.policy.v1", "POLICY"),
    "batch": (f"{K}/batch/v1/types.go", f"{K}/batch/v1/generated.proto", "io.k8s.api.batch.v1", "BATCH"),
    "hpa": (f"{K}/autoscaling/v2/types.go", f"{K}/autoscaling/v2/generated.proto", "io.k8s.api.autoscaling.v2", "HPA"),
    "storage": (f"{K}/storage/v1/types.go", f"{K}/storage/v1/generated.proto", "io.k8s.api.storage.v1", "STORAGE"),
    "meta": (f"{K}/pkg/apis/meta/v1/types.go", f"{K}/pkg/apis/meta/v1/generated.proto", "io.k8s.apimachinery.pkg.apis.meta.v1", "META"),
}
IMPORTS = {'"k8s.io/api/core/v1"': "core", '"k8s.io/apimachinery/pkg/apis/meta/v1"': "meta"}
SPECIAL = {"resource.Quantity": "Quantity", "intstr.IntOrString": "IntOrString",
           "metav1.Time": "Time", "Time": "Time", "runtime.RawExtension": "RawExtension (not supported)",
           "types.UID": "String"}
ROOTS = [("core", n) for n in ["Pod", "Service", "ConfigMap", "Secret", "Endpoints", "Node", "Namespace",
                               "PersistentVolumeClaim", "PersistentVolume"]] + \
    [("apps", "Deployment"), ("apps", "DaemonSet"), ("apps", "StatefulSet"), ("hpa", "HorizontalPodAutoscaler"),
     ("net", "Ingress"), ("net", "NetworkPolicy"), ("batch", "Job"), ("batch", "CronJob"),
     ("meta", "DeleteOptions"), ("policy", "Eviction"), ("storage", "StorageClass")]
# Messages Bramble's api crate models (api/src/objects, meta.rs): traversed.
MODELED = {
 "meta": "Condition ObjectMeta LabelSelector LabelSelectorRequirement OwnerReference DeleteOptions Preconditions",
 "core": """Pod PodSpec PodStatus PodTemplateSpec PodCondition PodIP ContainerStatus ContainerState
   ContainerStateRunning ContainerStateTerminated ContainerStateWaiting Container ContainerPort
   EnvFromSource ConfigMapEnvSource SecretEnvSource EnvVar EnvVarSource ConfigMapKeySelector
   SecretKeySelector ObjectFieldSelector ResourceRequirements VolumeMount Probe ProbeHandler ExecAction
   HTTPGetAction HTTPHeader TCPSocketAction SecurityContext Capabilities SeccompProfile
   PodSecurityContext Volume VolumeSource HostPathVolumeSource EmptyDirVolumeSource
   SecretVolumeSource ConfigMapVolumeSource KeyToPath Affinity NodeAffinity NodeSelector
   NodeSelectorTerm NodeSelectorRequirement PreferredSchedulingTerm Toleration PodDNSConfig
   PodDNSConfigOption LocalObjectReference Service ServiceSpec ServicePort ServiceStatus
   LoadBalancerStatus LoadBalancerIngress SessionAffinityConfig ClientIPConfig ConfigMap Secret
   Endpoints EndpointSubset EndpointAddress EndpointPort ObjectReference Node NodeSpec Taint
   NodeStatus NodeAddress NodeSystemInfo NodeCondition Namespace NamespaceSpec NamespaceStatus
   NamespaceCondition PersistentVolumeClaim PersistentVolumeClaimSpec VolumeResourceRequirements
   PersistentVolumeClaimStatus PersistentVolume PersistentVolumeSpec PersistentVolumeSource
   LocalVolumeSource VolumeNodeAffinity PersistentVolumeStatus PersistentVolumeClaimVolumeSource""",
 "apps": """Deployment DeploymentSpec DeploymentStrategy RollingUpdateDeployment DeploymentStatus
   DeploymentCondition DaemonSet DaemonSetSpec DaemonSetUpdateStrategy RollingUpdateDaemonSet
   DaemonSetStatus DaemonSetCondition StatefulSet StatefulSetSpec StatefulSetUpdateStrategy
   RollingUpdateStatefulSetStrategy StatefulSetPersistentVolumeClaimRetentionPolicy
   StatefulSetOrdinals StatefulSetStatus StatefulSetCondition""",
 "hpa": """HorizontalPodAutoscaler HorizontalPodAutoscalerSpec CrossVersionObjectReference MetricSpec
   ResourceMetricSource MetricTarget HorizontalPodAutoscalerBehavior HPAScalingRules HPAScalingPolicy
   HorizontalPodAutoscalerStatus MetricStatus ResourceMetricStatus MetricValueStatus
   HorizontalPodAutoscalerCondition""",
 "net": """Ingress IngressSpec IngressBackend IngressServiceBackend ServiceBackendPort IngressRule
   IngressRuleValue HTTPIngressRuleValue HTTPIngressPath IngressTLS IngressStatus
   IngressLoadBalancerStatus IngressLoadBalancerIngress NetworkPolicy NetworkPolicySpec
   NetworkPolicyIngressRule NetworkPolicyEgressRule NetworkPolicyPeer IPBlock NetworkPolicyPort""",
 "batch": """Job JobSpec JobStatus JobCondition CronJob CronJobSpec JobTemplateSpec CronJobStatus""",
 "policy": "Eviction",
 "storage": "StorageClass",
}
MODELED = {(p, n) for p, s in MODELED.items() for n in s.split()}

def parse_go(path):
    src = open(path).read()
    aliases = {}
    m = re.search(r"^import \((.*?)^\)", src, re.S | re.M)
    for line in m.group(1).splitlines():
        t = line.split()
        if len(t) == 2 and t[1] in IMPORTS: aliases[t[0]] = IMPORTS[t[1]]
        elif len(t) == 1 and t[0] in IMPORTS: aliases[t[0].strip('"').split("/")[-2]] = IMPORTS[t[0]]
    structs, named = {}, {}
    for m in re.finditer(r"^type (\w+) struct \{\n(.*?)^\}", src, re.S | re.M):
        fields = []
        for line in m.group(2).splitlines():
            fm = re.match(r"^\t(?:(\w+)\s+)?(\S+)\s+`(.*)`\s*$", line)
            if not fm: continue
            name, gotype, tag = fm.groups()
            if name is None: name = gotype
            j = re.search(r'json:"([^"]*)"', tag); p = re.search(r'protobuf:"([^"]*)"', tag)
            if not p: continue
            fields.append((name, gotype, j.group(1) if j else "", p.group(1)))
        structs[m.group(1)] = fields
    for m in re.finditer(r"^type (\w+) ((?:map\[|\[\]|\*)?[\w.\[\]]+)\s*$", src, re.M):
        named[m.group(1)] = m.group(2)
    return aliases, structs, named

def parse_proto(path):
    out = {}
    for m in re.finditer(r"^message (\w+) \{\n(.*?)^\}", open(path).read(), re.S | re.M):
        out[m.group(1)] = {int(f.group(2)): f.group(1) for f in re.finditer(r"^\s+(?:optional|repeated)?\s*[\w.<>, ]+ (\w+) = (\d+);", m.group(2), re.M)}
    return out

GO = {k: parse_go(v[0]) for k, v in PKGS.items()}
PROTO = {k: parse_proto(v[1]) for k, v in PKGS.items()}
SCALARS = {"string": "String", "bool": "Bool", "int32": "Int32", "int64": "Int64", "[]byte": "Bytes"}

def resolve(pkg, t):
    """-> ('scalar'|'special'|'msg', value) for a non-pointer, non-slice Go type."""
    if t in SCALARS: return ("ty", SCALARS[t])
    if t in SPECIAL: return ("ty", SPECIAL[t])
    if "." in t:
        alias, n = t.split(".")
        if alias not in GO[pkg][0]: raise SystemExit(f"unknown qualifier {t} in {pkg}")
        return resolve(GO[pkg][0][alias], n)
    if t in GO[pkg][1]: return ("msg", (pkg, t))
    if t in GO[pkg][2]: return ("named", (pkg, GO[pkg][2][t]))
    raise SystemExit(f"unresolved type {t} in {pkg}")

def shape(pkg, t):
    """-> (label_hint, kind, value): kind ty|msg; label_hint ptr|rep|map|plain."""
    hint = "plain"
    if t.startswith("*"): hint, t = "ptr", t[1:]
    if t == "[]byte": return (hint, "ty", "Bytes")
    if t.startswith("[]"): hint, t = "rep", t[2:]
    elif t.startswith("map["):
        key, t = re.match(r"map\[([\w.]+)\](.*)", t).groups(); hint = "map"
        k = resolve(pkg, key)
        while k[0] == "named": k = resolve(k[1][0], k[1][1])
        assert k == ("ty", "String"), (key, k)
    r = resolve(pkg, t)
    if r[0] == "named":
        h2, kind, v = shape(r[1][0], r[1][1])
        if h2 != "plain":
            assert hint == "plain", (t, hint, h2)
            hint = h2
        return (hint, kind, v)
    return (hint, r[0], r[1])

def rname(pkg, n): return f"{PKGS[pkg][3]}_{re.sub(r'(?<=[a-z0-9])(?=[A-Z])', '_', n).upper()}"

todo = collections.deque(ROOTS); seen = set(); out = {}; forced = []; pruned = []
while todo:
    key = todo.popleft()
    if key in seen: continue
    seen.add(key); pkg, n = key
    fields = []
    proto = PROTO[pkg].get(n)
    if proto is None: raise SystemExit(f"{n} not in {pkg} generated.proto")
    for (gname, gotype, js, ptag) in GO[pkg][1][n]:
        parts = ptag.split(","); num = int(parts[1]); pname = [p for p in parts if p.startswith("name=")][0][5:]
        assert proto.get(num) == pname, (n, num, pname, proto.get(num))
        jparts = js.split(","); jname = jparts[0]; omit = "omitempty" in jparts[1:]; inline = "inline" in jparts[1:]
        hint, kind, v = shape(pkg, gotype)
        if kind == "msg":
            if v not in MODELED and not (hint == "plain"):
                pruned.append(f"{n}.{jname or gname} -> {v[1]}"); continue
            if v not in MODELED: forced.append(f"{n}.{jname or gname} -> {v[1]}")
            todo.append(v); ty = f"Ty::Message(&{rname(*v)})"
        else: ty = f"Ty::{v}"
        if inline: label = "Inline"
        elif hint == "ptr": label = "Opt"
        elif hint == "rep": label = "Repeated"
        elif hint == "map": label = "Map"
        elif kind == "msg" or v in ("Quantity", "IntOrString", "Time", "RawExtension"): label = "Plain"
        else: label = "OmitEmpty" if omit else "Plain"
        fields.append((num, jname, ty, label))
    out[key] = fields

print("forced (non-pointer struct fields of unmodeled types):", *forced, sep="\n  ", file=sys.stderr)
print("pruned:", len(pruned), *pruned, sep="\n  ", file=sys.stderr)
w = sys.stdout
w.write("""//! The schema table: every protobuf message Bramble decodes, field by field.
//!
//! GENERATED by `gen_schema_table.py` (beside this file) from Kubernetes v1.32.4's `types.go` struct
//! tags (json name, omitempty, protobuf number; k8s.io/api v0.32.4 and
//! k8s.io/apimachinery v0.32.4), each field number checked against the same
//! packages' `generated.proto`. Messages are those reachable from the kinds in
//! `bramble_api::resource::RESOURCES` that clients write (not ReplicaSets,
//! which only the hub writes), plus `DeleteOptions` and `Eviction`; a
//! message-typed field whose type Bramble's object model does not have is left
//! out (so it is refused, see `decode.rs`), unless Go always writes it.
//! Regenerate rather than edit by hand when Bramble models more.
//!
//! Length: over 600 lines because generated, one entry per message field;
//! regenerate it, do not edit or split it.

use super::schema::{Label, Message, Ty, f};

""")
for key in sorted(out):
    pkg, n = key
    w.write(f"pub static {rname(pkg, n)}: Message = Message {{\n    name: \"{PKGS[pkg][2]}.{n}\",\n    fields: &[\n")
    for (num, jname, ty, label) in sorted(out[key]):
        w.write(f"        f({num}, \"{jname}\", {ty}, Label::{label}),\n")
    w.write("    ],\n};\n\n")
print(len(out), "messages", sum(len(v) for v in out.values()), "fields", file=sys.stderr)
