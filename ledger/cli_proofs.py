"""The command line's proofs: ``keygen``, ``checkpoint``, ``verify-bundle``, and what ``verify --checkpoint``
and ``export --with-proofs`` do (``ledger.proofs``, ``ledger.bundles``, ``ledger.signing``).

Keys are text files in the formats of Go's ``golang.org/x/mod/sumdb/note``: ``NAME.key`` holds the signer
key (keep it private: it is written readable by its owner only), ``NAME.pub`` the verifier key to hand on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import click

from . import FileAccessError, InvalidInput, Ledger, generate_keys, verify_bundle
from .arguments import db_option
from .output import read_text, save_text
from .validation import path_arg

_MAX_TEXT = 1 << 20  # a key or a checkpoint is a few lines
_MAX_BUNDLE = 1 << 30  # a bundle is read whole: a session of a million events with their proofs fits
Opened = Callable[[click.Context, "str | None"], AbstractContextManager[Ledger]]


def key_text(path: str, field: str) -> str:
    """A key file's key: its one line, without surrounding white space."""
    return read_text(path, field, _MAX_TEXT).strip()


def _create(path: str, text: str, mode: int) -> None:
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise InvalidInput(f"{path!r} already exists; keygen never overwrites a key", field="out") from exc
    except OSError as exc:
        raise FileAccessError(f"cannot write {path!r}: {exc.strerror or exc}", field="out") from exc
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        stream.write(text + "\n")


def register(main: click.Group, opened: Opened, failed: int) -> None:
    """Add the proof commands to the command group; ``failed`` is the exit code of a proof that fails."""

    @main.command()
    @click.argument("name")
    @click.option("--out", help="Write OUT.key and OUT.pub (default: NAME.key and NAME.pub).")
    def keygen(name: str, out: str | None) -> None:
        """Make an Ed25519 key pair for signing checkpoints: NAME.key (private) and NAME.pub (to hand on)."""
        signer, verifier = generate_keys(name)
        prefix = path_arg(out or name, "out")
        _create(prefix + ".key", signer, 0o600)
        try:
            _create(prefix + ".pub", verifier, 0o644)
        except BaseException:
            os.remove(prefix + ".key")
            raise
        click.echo(f"signer key written to {prefix}.key (keep it private); verifier key: {prefix}.pub\n{verifier}")

    @main.command()
    @db_option
    @click.option("--sign", "key", required=True, metavar="KEY", help="The signer key file (from keygen).")
    @click.option("--origin", help="The checkpoint's origin line (default: this ledger's, from its first event).")
    @click.option("--out", help="Write the checkpoint to this file ('-': standard output, as without --out).")
    @click.pass_context
    def checkpoint(ctx: click.Context, db: str | None, key: str, origin: str | None, out: str | None) -> None:
        """Sign the Merkle tree's head (size and root) as a C2SP signed note, to verify the log against later."""
        signer = key_text(key, "key")
        with opened(ctx, db) as ledger:
            note = ledger.sign_checkpoint(signer, origin=origin)
        if out is None or out == "-":
            click.echo(note, nl=False)
            return
        save_text(out, note.rstrip("\n"), "the checkpoint")
        click.echo(f"checkpoint of {note.splitlines()[1]} events written to {out}")

    @main.command("verify-bundle")
    @click.argument("bundle")
    @click.option("--key", required=True, metavar="PUB", help="The verifier key file of the checkpoint's signer.")
    @click.pass_context
    def verify_bundle_command(ctx: click.Context, bundle: str, key: str) -> None:
        """Check a proof bundle offline: the checkpoint's signature, and each event's contents and inclusion."""
        report = verify_bundle(read_text(bundle, "bundle", limit=_MAX_BUNDLE), key_text(key, "key"))
        if report.ok:
            click.echo(f"ok: {report.events} events of session {report.session_id} are in the tree of"
                       f" {report.size} events signed for {report.origin}")
        else:
            where = f" at position {report.first_bad_position}" if report.first_bad_position else ""
            click.echo(f"FAILED{where}: {report.reason}", err=True)
            ctx.exit(failed)


def verify_checkpoint(ctx: click.Context, ledger: Ledger, checkpoint: str, key: str | None, failed: int) -> None:
    """``verify --checkpoint FILE --key PUB``: the log extends the signed checkpoint, or exit ``failed``."""
    if key is None:
        raise click.UsageError("--checkpoint needs --key: the verifier key file of the checkpoint's signer")
    report = ledger.verify_checkpoint(read_text(checkpoint, "checkpoint", _MAX_TEXT), key_text(key, "key"))
    if report.ok:
        click.echo(f"ok: {report.checked} events verified; the log extends the checkpoint in {checkpoint}")
    else:
        where = f" at position {report.first_bad_position}" if report.first_bad_position else ""
        click.echo(f"FAILED{where}: {report.reason}", err=True)
        ctx.exit(failed)


def export_proofs(ledger: Ledger, sessions: tuple[str, ...], key: str | None, out: str, **unused: Any) -> str:
    """``export --session ID --with-proofs --sign KEY OUT``: the session's proof bundle, written to OUT."""
    if len(sessions) != 1 or key is None:
        raise click.UsageError("--with-proofs needs exactly one --session and --sign KEY (a signer key file)")
    bundle = ledger.proof_bundle(sessions[0], key_text(key, "key"))
    if out == "-":
        click.echo(bundle)
    else:
        save_text(out, bundle, "the proof bundle")
    return bundle
