# Shared set-up of scripts/test and scripts/up (sourced, not run): Debian
# packages, the busybox-static .debs the fixture and demo images are
# packed from, and the packages of the Debian-based fixture images. Idempotent; needs root on Debian 12.

# A mirror caught mid-sync fails one index (seen: bookworm-security's armhf
# Packages); the packages come from the others, and apt-get install or
# download still fails loudly when something it needs is missing.
apt_update() {
    apt-get update || apt-get update ||
        echo "warning: some package indexes could not be fetched (above); continuing" >&2
}

# ensure_packages PKG...: adds dpkg's arm64 and armhf architectures (the
# images are multi-arch, the ARM rig downloads their kernels and userland)
# and installs the PKGs that are missing.
ensure_packages() {
    local missing=() updated=0 p arch
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    for arch in arm64 armhf; do
        if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
            dpkg --add-architecture "$arch"
            updated=1
        fi
    done
    if ((updated)); then apt_update; fi
    if ((${#missing[@]})); then
        ((updated)) || apt_update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    fi
}

# ensure_fixture_debs: Debian's busybox-static for every platform of the
# multi-arch fixture and demo images (tests/src/busybox.rs), in
# target/fixtures/debs.
ensure_fixture_debs() {
    local debs=target/fixtures/debs arch
    mkdir -p "$debs"
    for arch in amd64 arm64 armhf; do
        if ! compgen -G "$debs/busybox-static_*_$arch.deb" >/dev/null; then
            (cd "$debs" && apt-get download "busybox-static:$arch")
        fi
    done
}

# The Debian base images of tests/tests/build_projects.rs, cli/tests/compose_projects.rs
# and tests/tests/arm.rs (tests/src/debian_image.rs): NAME[@ARCH]:PACKAGES (of
# Debian architecture ARCH, by default this machine's), unpacked together into one rootfs. base-files gives
# /etc/os-release, base-passwd the /etc/passwd and /etc/group of a Debian system,
# dash /bin/sh and coreutils what RUN steps use (mkdir, rm, cp, chown, ...).
FIXTURE_DEBIAN_IMAGES=(
    "python:base-files base-passwd dash coreutils python3-minimal python3-flask python3-redis python3-pip"
    "nginx:base-files base-passwd dash coreutils nginx"
    "redis:base-files base-passwd dash coreutils redis-server"
    "nginx@arm64:base-files base-passwd dash coreutils nginx"
)

# download_closure DIR ARCH PKG...: see ensure_fixture_project_debs.
download_closure() {
    local dir=$1 arch=$2
    shift 2
    DEBIAN_FRONTEND=noninteractive apt-get install --download-only --yes --quiet \
        --no-install-recommends \
        -o APT::Architecture="$arch" \
        -o Dir::State::status="$PWD/$dir/status" \
        -o Dir::Cache::archives="$PWD/$dir/debs" \
        "$@"
}
# ensure_fixture_project_debs: for each of FIXTURE_DEBIAN_IMAGES, its packages
# and their Depends/Pre-Depends closure, in target/fixtures/debian-images/NAME
# (NAME@ARCH: for Debian architecture ARCH, from the lists ensure_packages'
# foreign architectures bring; otherwise this machine's). apt's own resolver
# picks them: an install, download only, as if on ARCH, against an empty dpkg
# status (as if nothing were installed, so packages this machine has are
# downloaded too, and nothing of the host's dpkg state is read or changed): one
# alternative of each `a | b`, one provider of a virtual package, versions that
# fit together, and no Recommends. NAME/packages, written last, names the set
# that is complete.
ensure_fixture_project_debs() {
    local root=target/fixtures/debian-images spec name packages dir arch
    for spec in "${FIXTURE_DEBIAN_IMAGES[@]}"; do
        name=${spec%%:*} packages=${spec#*:}
        arch=$(dpkg --print-architecture)
        if [[ $name == *@* ]]; then arch=${name#*@}; fi
        dir=$root/$name
        if [[ -f $dir/packages && $(<"$dir/packages") == "$packages" ]]; then
            continue
        fi
        rm -rf "$dir"
        mkdir -p "$dir/debs/partial"
        : >"$dir/status"
        # Stale package lists name versions the mirror dropped: update, once.
        # shellcheck disable=SC2086 # the packages are words
        download_closure "$dir" "$arch" $packages || { apt_update && download_closure "$dir" "$arch" $packages; }
        rm -rf "$dir/debs/partial" "$dir/debs/lock" "$dir/status"
        echo "$packages" >"$dir/packages"
    done
}

# ensure_python_client: the official Python `kubernetes` client (PyPI), a real
# client of the hub in hub/tests/python_client.rs, in a venv at
# target/fixtures/pyvenv (Debian's python3 needs python3-venv).
ensure_python_client() {
    local venv=target/fixtures/pyvenv version=32.0.1
    if ! "$venv/bin/python" -c "import kubernetes, sys; sys.exit(kubernetes.__version__ != '$version')" 2>/dev/null; then
        rm -rf "$venv"
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes==$version"
    fi
}
