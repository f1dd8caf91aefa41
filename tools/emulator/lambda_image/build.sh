#!/usr/bin/env bash
# Build, offline, the image `sam local` runs python3.13 functions in, where AWS's own
# (public.ecr.aws/lambda/python:3.13) cannot be pulled. `make engine` runs it; a second run with the
# same inputs only checks the image's label and takes well under a second.
#
# The root file system is this machine's own: the files of the Debian packages Python needs, the
# pyenv Python 3.13 copied to /var/lang (where AWS's image has it), AWS's runtime interface client
# awslambdaric in /var/runtime behind /var/runtime/bootstrap, and the runtime's boto3 (the versions
# requirements-dev.txt pins, which `make invoke` also gives the functions) in site-packages. The
# Dockerfile beside this script sets AWS's environment and entrypoint, then adds the SAM CLI's own
# Runtime Interface Emulator, as `sam local` would.
#
# Tags, for the architecture of this machine (the only one that runs without emulation):
#   items-service/lambda-python:3.13-<arch>              the stand-in for AWS's base image
#   public.ecr.aws/lambda/python:3.13-rapid-<arch>       what `sam local` runs for python3.13 ...
#   public.ecr.aws/lambda/python:3.13-rapid-<other>      ... and for the other architecture too: a
#                                                        <arch> image under that name, labelled so
# `tools/emulator/sam_local.py` says so and passes --skip-pull-image (without it SAM would try to pull).
#
# Environment: LAMBDA_PYTHON (a CPython 3.13 built with --enable-shared, default pyenv's 3.13),
# SAM_VENV (where the SAM CLI is installed, for its emulator; default .venv-sam).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
AWSLAMBDARIC="awslambdaric==4.2.2 simplejson==4.3.0 snapshot-restore-py==1.0.0"
RUNTIME_PACKAGES="boto3 botocore s3transfer jmespath python-dateutil urllib3 six"
# What Python 3.13 and awslambdaric link against (and a shell for the bootstrap); their dependencies come along.
DEBIAN_PACKAGES="libc6 libstdc++6 dash coreutils zlib1g libssl3 libffi8 libbz2-1.0 liblzma5 libsqlite3-0 libexpat1
  libreadline8 libncursesw6 libtinfo6 libuuid1 libgdbm6 libgdbm-compat4 libcrypt1 libbsd0 libzstd1"
BASE_REPO=items-service/lambda-python
RAPID_REPO=public.ecr.aws/lambda/python
LABEL=items-service.lambda-image
say() { echo "lambda image: $*" >&2; }

case "$(uname -m)" in
x86_64) ARCH=x86_64 OTHER=arm64 ;;
aarch64 | arm64) ARCH=arm64 OTHER=x86_64 ;;
*) say "no Lambda architecture for $(uname -m)"; exit 1 ;;
esac
PYENV_ROOT=${PYENV_ROOT:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")}
LAMBDA_PYTHON=${LAMBDA_PYTHON:-$(ls -d "$PYENV_ROOT"/versions/3.13*/bin/python3.13 2>/dev/null | tail -1)}
[ -x "$LAMBDA_PYTHON" ] || { say "no Python 3.13 found; set LAMBDA_PYTHON=/path/to/python3.13"; exit 1; }
PYTHON_HOME=$(cd "$(dirname "$LAMBDA_PYTHON")/.." && pwd)
[ "$("$LAMBDA_PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("Py_ENABLE_SHARED"))')" = 1 ] ||
    { say "$LAMBDA_PYTHON is not built with --enable-shared, as Lambda's is"; exit 1; }
SAM_VENV=${SAM_VENV:-$ROOT/.venv-sam}
RIE=$(ls "$SAM_VENV"/lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-"$ARCH" 2>/dev/null | head -1)
[ -f "$RIE" ] || { say "no SAM CLI emulator under $SAM_VENV (make $SAM_VENV/.installed installs it)"; exit 1; }
PINS=$(for name in $RUNTIME_PACKAGES; do
    grep -E "^$name==" "$ROOT/requirements-dev.txt" || { say "requirements-dev.txt pins no $name" >&2; exit 1; }
done)

# Debian packages: the closure of their dependencies among those installed here.
# shellcheck disable=SC2086
PACKAGES=$(apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances $DEBIAN_PACKAGES | grep -v '^ ' | sort -u)
# Only those installed here (a library Python was not linked against may be missing).
# shellcheck disable=SC2086
PACKAGES=$(dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' $PACKAGES 2>/dev/null | awk '$1 == "ii" { print $2 }')
# shellcheck disable=SC2086
PACKAGE_VERSIONS=$(dpkg-query -W -f '${Package}=${Version}\n' $PACKAGES)

# The key: everything the image is made of. Same key, same image: nothing to do.
KEY=$({
    cat "$HERE"/Dockerfile "$HERE"/build.sh "$HERE"/lambda-entrypoint.sh "$HERE"/bootstrap "$HERE"/bootstrap.py
    "$LAMBDA_PYTHON" -VV
    echo "$PYTHON_HOME $AWSLAMBDARIC $PINS $PACKAGE_VERSIONS"
    sha256sum <"$RIE"
} | sha256sum | cut -c1-16)
current() { docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
if [ "$(current "$RAPID_REPO:3.13-rapid-$ARCH")" = "$KEY" ] && [ "$(current "$RAPID_REPO:3.13-rapid-$OTHER")" = "$KEY" ]; then
    say "up to date ($RAPID_REPO:3.13-rapid-{$ARCH,$OTHER}, $ARCH, inputs $KEY)"
    exit 0
fi

say "building (inputs $KEY)"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# The tools' chatter goes to a log, shown only when a step fails.
quiet() { "$@" >>"$WORK/log" 2>&1 || { cat "$WORK/log" >&2; say "failed: $*"; exit 1; }; }
FS=$WORK/rootfs
mkdir -p "$FS"/usr/{bin,sbin,lib,lib64} "$FS"/{etc,tmp,opt,var/task,var/runtime,var/rapid}
chmod 1777 "$FS"/tmp
ln -s usr/bin "$FS"/bin
ln -s usr/sbin "$FS"/sbin
ln -s usr/lib "$FS"/lib
ln -s usr/lib64 "$FS"/lib64

# The packages' files (not their directories, docs or manuals), under /usr as on this merged-/usr
# machine; then what their maintainer scripts would have made.
# shellcheck disable=SC2086
dpkg -L $PACKAGES | grep '^/' | grep -vE '^/usr/share/(doc|man|info|locale|lintian)/' |
    sed -E 's#^/(bin|sbin|lib|lib64)/#/usr/\1/#' | sort -u |
    while read -r path; do [ -d "$path" ] && [ ! -L "$path" ] || echo "${path#/}"; done >"$WORK/files"
tar -C / --no-recursion -cf - -T "$WORK/files" | tar -C "$FS" -xf -
ln -sf dash "$FS"/usr/bin/sh
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$FS"/etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' >"$FS"/etc/group
ln -s /usr/share/zoneinfo/UTC "$FS"/etc/localtime
mkdir -p "$FS"/usr/share/zoneinfo && cp /usr/share/zoneinfo/Etc/UTC "$FS"/usr/share/zoneinfo/UTC
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$FS"/etc/ssl/certs && cp /etc/ssl/certs/ca-certificates.crt "$FS"/etc/ssl/certs/
fi

# Python at /var/lang, without its tests, static library, GUI and an empty site-packages.
mkdir -p "$FS"/var/lang
tar -C "$PYTHON_HOME" -cf - --exclude=./lib/python3.13/test --exclude='./lib/python3.13/config-*' \
    --exclude=./lib/python3.13/site-packages --exclude=./lib/python3.13/idlelib \
    --exclude=./lib/python3.13/tkinter --exclude=./lib/python3.13/turtledemo \
    --exclude=./lib/python3.13/ensurepip --exclude=./include --exclude=./share . | tar -C "$FS"/var/lang -xf -
SITE="$FS"/var/lang/lib/python3.13/site-packages
mkdir -p "$SITE"
pip() { quiet "$LAMBDA_PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --only-binary :all: "$@"; }
# shellcheck disable=SC2086
pip --target "$SITE" $PINS
# shellcheck disable=SC2086
pip --target "$FS"/var/runtime $AWSLAMBDARIC
rm -rf "$FS"/var/runtime/bin "$SITE"/bin

ROOTFS="$BASE_REPO-rootfs:$KEY"
tar -C "$FS" -cf - . | docker import --message "tools/emulator/lambda_image/build.sh rootfs" - "$ROOTFS" >/dev/null
cp "$HERE"/Dockerfile "$HERE"/lambda-entrypoint.sh "$HERE"/bootstrap "$HERE"/bootstrap.py "$WORK"/
cp "$RIE" "$WORK"/aws-lambda-rie
rm -rf "$FS"
DESCRIPTION="a $ARCH stand-in for $RAPID_REPO:3.13, built offline by tools/emulator/lambda_image/build.sh from \
this machine's Debian files, $("$LAMBDA_PYTHON" -V), awslambdaric and the SAM CLI's emulator"
build() {
    quiet docker build --quiet --build-arg ROOTFS="$ROOTFS" --build-arg RIE=aws-lambda-rie \
        --label "$LABEL=$KEY" --label "$LABEL.architecture=$ARCH" \
        --label "$LABEL.description=$DESCRIPTION" "$@" "$WORK"
}
build --target base -t "$BASE_REPO:3.13-$ARCH"
build --target rapid -t "$RAPID_REPO:3.13-rapid-$ARCH" -t "$RAPID_REPO:3.13-rapid-$OTHER"
docker rmi "$ROOTFS" >/dev/null
docker image prune --force --filter "label=$LABEL" >/dev/null
SIZE=$(docker image inspect -f '{{.Size}}' "$RAPID_REPO:3.13-rapid-$ARCH")
say "built $RAPID_REPO:3.13-rapid-{$ARCH,$OTHER} ($ARCH, $((SIZE / 1000000)) MB, inputs $KEY)"
