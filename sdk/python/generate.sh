#!/bin/sh
# Regenerates berth/berth_pb2.py and berth/berth_pb2_grpc.py from
# sdk/proto/berth.proto with Debian's python3-grpc-tools:
#
#	sh sdk/python/generate.sh            # into sdk/python/berth (commit them)
#	sh sdk/python/generate.sh DIR        # into DIR/berth (the tests compare)
#
# The proto is compiled as berth/berth.proto so that the generated gRPC
# module imports its messages as "from berth import berth_pb2".
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
python=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/berth" "$out/berth"
cp "$here/../proto/berth.proto" "$tmp/berth/berth.proto"
"$python" -m grpc_tools.protoc -I "$tmp" --python_out="$out" --grpc_python_out="$out" "$tmp/berth/berth.proto"
