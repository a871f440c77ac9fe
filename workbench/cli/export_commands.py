"""`workbench export | verify | keys`: deployable files with proof."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from workbench import zoo
    from workbench.artifacts.targets import TARGETS

    e = sub.add_parser("export", help="export a model to a deployable file with a parity check and a manifest",
                       description="Export a built-in task's model (or a model file) to one self-contained file, "
                                   "check it against the source in its own runtime, and write <file>.manifest.json "
                                   "beside it (signed with --sign-with).")
    e.add_argument("--task", choices=zoo.names(), help=f"built-in task (default: {zoo.DEFAULT}); with --model, the "
                   "task whose data checks the file")
    e.add_argument("--model", help="a model file to export (without --task: parity on random inputs)")
    e.add_argument("--target", required=True, choices=list(TARGETS), help="export target")
    e.add_argument("-o", "--out", required=True, help="output folder")
    e.add_argument("--sign-with", help="Ed25519 private key (PEM) that signs the manifest (see `workbench keys`)")
    e.add_argument("--encrypt-with", help="32-byte AES-256 key file: write the artefact encrypted (needs --sign-with)")
    e.add_argument("--device", help="intended device, recorded in the manifest (e.g. raspberry-pi-5)")
    e.add_argument("--name", help="base name of the artefact (default: model, compression and target)")
    e.add_argument("--limit", type=int, help="check parity on the first N evaluation samples only")
    v = sub.add_parser("verify", help="check an artefact against its signed manifest (exit 0 only if it verifies)")
    v.add_argument("file", help="the artefact (or its .manifest.json)")
    v.add_argument("--public-key", required=True, help="the signer's Ed25519 public key (PEM)")
    k = sub.add_parser("keys", help="make an Ed25519 signing key pair (and optionally an AES-256 key)")
    k.add_argument("dir", help="folder for signing-key.pem (mode 0600) and signing-key.pub.pem")
    k.add_argument("--secret", action="store_true", help="also write an AES-256 key, model.key (mode 0600)")




def _export(args: argparse.Namespace) -> int:
    from workbench import zoo
    from workbench.artifacts import export

    if args.model:
        from workbench.formats.loader import load

        if args.task:
            task = zoo.load(args.task)
            handle = load(args.model, example_inputs=task.example_inputs)
        else:
            from workbench.cli.common import task_for_file

            task = task_for_file(args.model)
            handle = task.model
    else:
        task = zoo.load(args.task or zoo.DEFAULT)
        handle = task.model
    print(f"exporting {handle.name} to {args.target} ...", file=sys.stderr, flush=True)
    art = export(handle, args.target, args.out, task=task, sign_with=args.sign_with, encrypt_with=args.encrypt_with,
                 device=args.device, name=args.name, limit=args.limit)
    p = art.parity
    metrics = ", ".join(f"{k} {p['source'][k]:.4f} -> {p['artifact'][k]:.4f}" for k in p["source"])
    sig = art.manifest.get("signature")
    print(f"wrote {art.path} ({art.size_bytes:,} bytes{', AES-256-GCM encrypted' if art.encrypted else ''})")
    print(f"      {art.manifest_path} ({'signed by key ' + sig['key_id'][:16] + '…' if sig else 'unsigned'})")
    print(f"sha256 {art.sha256}")
    print(f"parity on {p['samples']} samples in {p['artifact_runtime']} (source -> artefact): {metrics}; "
          f"{p['agreement_kind']} {p['agreement']:.4f}; max abs error {p['max_abs_error']:.3g}: passed")
    for note in art.manifest["notes"]:
        print(f"note: {note}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from workbench.artifacts import verify

    v = verify(args.file, args.public_key)
    print(f"OK {v.path}: {v.target} ({v.format}), sha256 {v.sha256}, signed by key {v.key_id[:16]}…"
          + (", encrypted (workbench.decrypt restores it)" if v.encrypted else ""))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from workbench.artifacts import keys

    private, public = keys.generate(args.dir)
    print(f"private key {private} (keep it secret; mode 0600)\npublic key  {public} (give it to devices)")
    if args.secret:
        print(f"AES-256 key {keys.generate_secret(Path(args.dir) / 'model.key')} (share with devices out of band)")
    return 0


HANDLERS = {"export": _export, "verify": _verify, "keys": _keys}
