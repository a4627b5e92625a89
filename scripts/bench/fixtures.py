#!/usr/bin/env python3
"""Inputs for scripts/bench.sh, made with the standard library only.

  fixtures.py yaml N REGISTRY OUT        dagster_cloud.yaml with N locations, each with build.registry
  fixtures.py layout DIR MB              OCI layout, tag "v1": one layer of MB MiB of random bytes
                                         (a tar in a gzip stream of stored blocks, so it is
                                         incompressible and every tool passes it through as is)
  fixtures.py project DIR FILES MB REG   a code project of FILES text files, MB MiB in all, with a
                                         dagster_cloud.yaml naming one location built from "."
"""

import gzip
import hashlib
import json
import os
import random
import sys
import tarfile


def write_yaml(count, registry, out):
    with open(out, "w", encoding="utf-8") as handle:
        handle.write("locations:\n")
        for index in range(count):
            handle.write(
                f"  - location_name: loc-{index:04d}\n"
                f"    code_source:\n"
                f"      package_name: pkg_{index:04d}\n"
                f"    build:\n"
                f"      registry: {registry}/loc-{index:04d}\n"
            )


class HashingWriter:
    """A file object that hashes and counts what goes through it."""

    def __init__(self, inner):
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.inner.write(data)

    def flush(self):
        self.inner.flush()


def write_blob(layout, media_type, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as handle:
        handle.write(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def write_layout(layout, megabytes):
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    payload = os.path.join(layout, "payload.bin")
    with open(payload, "wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(1 << 20))
    partial = os.path.join(blobs, "partial")
    with open(partial, "wb") as raw:
        compressed = HashingWriter(raw)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=0, mtime=0) as gz:
            uncompressed = HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                info = tar.gettarinfo(payload, arcname="opt/deps/payload.bin")
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = 0
                with open(payload, "rb") as source:
                    tar.addfile(info, source)
    os.remove(payload)
    layer_digest = compressed.sha.hexdigest()
    os.rename(partial, os.path.join(blobs, layer_digest))
    layer = {
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": f"sha256:{layer_digest}",
        "size": compressed.size,
    }
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["python"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{uncompressed.sha.hexdigest()}"]},
        "history": [{"created_by": "dagster-deploy bench base"}],
    }
    config = write_blob(
        layout, "application/vnd.oci.image.config.v1+json", json.dumps(config).encode()
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    }
    descriptor = write_blob(
        layout, "application/vnd.oci.image.manifest.v1+json", json.dumps(manifest).encode()
    )
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    with open(os.path.join(layout, "oci-layout"), "w", encoding="utf-8") as handle:
        handle.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(layout, "index.json"), "w", encoding="utf-8") as handle:
        json.dump({"schemaVersion": 2, "manifests": [descriptor]}, handle)


def write_project(root, files, megabytes, registry):
    """Python-like text (compresses about 3:1, like real code) in 50 packages."""
    rng = random.Random(42)
    vocabulary = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz_", k=rng.randint(3, 12)))
        for _ in range(800)
    ]
    keywords = ["def", "return", "import", "from", "class", "if", "else", "for", "in", "self"]
    per_file = megabytes * (1 << 20) // files
    packages = 50
    for index in range(files):
        package = os.path.join(root, "src", f"pkg_{index % packages:02d}")
        os.makedirs(package, exist_ok=True)
        lines, size = [], 0
        while size < per_file:
            words = rng.choices(vocabulary, k=rng.randint(3, 10))
            line = f"{rng.choice(keywords)} {' '.join(words)} = {rng.randint(0, 999)}\n"
            lines.append(line)
            size += len(line)
        with open(os.path.join(package, f"module_{index:04d}.py"), "w", encoding="utf-8") as out:
            out.write("".join(lines)[:per_file])
    with open(os.path.join(root, "dagster_cloud.yaml"), "w", encoding="utf-8") as handle:
        handle.write(
            "locations:\n"
            "  - location_name: code\n"
            "    code_source:\n"
            "      package_name: pkg_00\n"
            "    build:\n"
            "      directory: .\n"
            f"      registry: {registry}\n"
        )


def main(argv):
    if len(argv) == 5 and argv[1] == "yaml":
        write_yaml(int(argv[2]), argv[3], argv[4])
    elif len(argv) == 4 and argv[1] == "layout":
        write_layout(argv[2], int(argv[3]))
    elif len(argv) == 6 and argv[1] == "project":
        write_project(argv[2], int(argv[3]), int(argv[4]), argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
