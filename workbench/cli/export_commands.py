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
    e.add_argument("--version", type=int, help="release version signed into the manifest (default 1, or one more "
                   "than --replaces)")
    e.add_argument("--replaces", help="the artefact this release updates (its hash and version are signed in)")
    e.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding the passphrase of a "
                   "protected --sign-with key")
    v = sub.add_parser("verify", help="check an artefact against its signed manifest (exit 0 only if it verifies)")
    v.add_argument("file", help="the artefact (or its .manifest.json)")
    v.add_argument("--public-key", required=True, help="the signer's Ed25519 public key (PEM)")
    v.add_argument("--min-version", type=int, help="refuse a release older than this version (a downgrade)")
    v.add_argument("--installed", help="the artefact on the device: the release must supersede and replace it")
    v.add_argument("--revoked", help="revocation list (key ids, one per line): refuse a release signed by one")
    k = sub.add_parser("keys", help="make an Ed25519 signing key pair (and optionally an AES-256 key)")
    k.add_argument("dir", help="folder for signing-key.pem (mode 0600) and signing-key.pub.pem")
    k.add_argument("--secret", action="store_true", help="also write an AES-256 key, model.key (mode 0600)")
    k.add_argument("--passphrase-env", metavar="VAR", help="environment variable holding a passphrase: the "
                   "private key is written encrypted with it")
    r = sub.add_parser("revoke", help="add a signing key to a revocation list (verify --revoked refuses it)")
    r.add_argument("key", help="the key to revoke: its public (or private) PEM file, or its 64-hex key id")
    r.add_argument("--list", required=True, help="the revocation list file (created if needed)")
    r.add_argument("--reason", default="", help="why (kept as the line's comment)")


def _passphrase(var: str | None) -> str | None:
    import os

    from workbench.core.errors import WorkbenchError

    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        raise WorkbenchError(f"--passphrase-env {var}: that environment variable is not set (or empty).")
    return value




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
    sign_with = args.sign_with
    if sign_with and args.passphrase_env:
        from workbench.artifacts import keys

        sign_with = keys.load_private(sign_with, passphrase=_passphrase(args.passphrase_env))
    print(f"exporting {handle.name} to {args.target} ...", file=sys.stderr, flush=True)
    art = export(handle, args.target, args.out, task=task, sign_with=sign_with, encrypt_with=args.encrypt_with,
                 device=args.device, name=args.name, limit=args.limit, version=args.version, replaces=args.replaces)
    p = art.parity
    metrics = ", ".join(f"{k} {p['source'][k]:.4f} -> {p['artifact'][k]:.4f}" for k in p["source"])
    sig = art.manifest.get("signature")
    print(f"wrote {art.path} ({art.size_bytes:,} bytes{', AES-256-GCM encrypted' if art.encrypted else ''})")
    print(f"      {art.manifest_path} ({'signed by key ' + sig['key_id'][:16] + '…' if sig else 'unsigned'})")
    print(f"sha256 {art.sha256}")
    rep = art.replaces
    print(f"version {art.version}" + (f", replaces {rep['file']} (version {rep['version']}, sha256 "
                                      f"{rep['sha256'][:16]}…)" if rep else " (replaces nothing)"))
    print(f"parity on {p['samples']} samples in {p['artifact_runtime']} (source -> artefact): {metrics}; "
          f"{p['agreement_kind']} {p['agreement']:.4f}; max abs error {p['max_abs_error']:.3g}: passed")
    for note in art.manifest["notes"]:
        print(f"note: {note}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from workbench.artifacts import verify

    v = verify(args.file, args.public_key, min_version=args.min_version, installed=args.installed,
               revoked=args.revoked)
    print(f"OK {v.path}: {v.target} ({v.format}), version {v.version}, sha256 {v.sha256}, signed by key "
          f"{v.key_id[:16]}…" + (", encrypted (workbench.decrypt restores it)" if v.encrypted else "")
          + (f", replaces the installed {Path(args.installed).name}" if args.installed else ""))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from workbench.artifacts import keys

    private, public = keys.generate(args.dir, passphrase=_passphrase(args.passphrase_env))
    protected = ", passphrase-protected" if args.passphrase_env else ""
    print(f"private key {private} (keep it secret; mode 0600{protected})\npublic key  {public} (give it to devices)")
    if args.secret:
        print(f"AES-256 key {keys.generate_secret(Path(args.dir) / 'model.key')} (share with devices out of band)")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from workbench.artifacts import keys

    path = keys.revoke(args.key, args.list, reason=args.reason)
    (kid,) = keys.revoked_ids([args.key])
    print(f"revoked key {kid[:16]}… in {path} ({len(keys.revoked_ids(path))} revoked in all); "
          f"verify --revoked {path} refuses what it signed")
    return 0


HANDLERS = {"export": _export, "verify": _verify, "keys": _keys, "revoke": _revoke}
