"""PostgreSQL's archive_command: pgbackrest archive-push, and divergent copies of abandoned timelines' WAL resolved.

After a run of failovers a member can hold, marked ready for archiving, a copy of an old timeline's segment whose
bytes differ from the copy already in the repository (docs/backups.md, "Failovers and the archive"): the fork segment
of a timeline holds, after the point where the timeline ended, whatever the member that wrote it had there (the old
leader's unacknowledged WAL, a standby's recycled tail), and Patroni's crash recovery or pg_rewind can turn such a copy
back into a ready one. pgBackRest refuses it (exit 45) on every retry, and because the archiver takes the lowest name
first, every later segment waits behind it while pg_wal fills the volume.

`archive_conflict` decides, from the live timeline's history, whether the local copy holds anything of the current
history that the archive lacks; only when it does not is the segment reported archived, after its bytes are kept on
the volume (diverged-wal/ beside PGDATA) for a person to inspect. Everything else keeps failing, loudly.

Settings come on the command line (PostgreSQL runs this; it needs none of the pod's secrets):

    archive_push.py --config=FILE --stanza=NAME --pgdata=DIR --bin=DIR --run-dir=DIR --synchronous-mode=on|off|strict %p
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Optional

SEGMENT_SIZE = 16 * 1024 * 1024  # initdb's default, which the bootstrap keeps
# pgBackRest's exit code for "WAL file '...' already exists in the repo1 archive with a different checksum".
ARCHIVE_DUPLICATE = 45
SEGMENT_NAME = re.compile(r"([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?")
# What diverged-wal/ may hold before a new copy is refused (synchronous modes prune the oldest instead).
KEEP_LIMIT_BYTES = 64 * SEGMENT_SIZE
SYNCHRONOUS_MODES = ("on", "off", "strict")


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(f"{stamp} archive-push {os.environ.get('POD_NAME', '?')}: {message}\n")
    sys.stderr.flush()


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return int(high, 16) << 32 | int(low, 16)


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_history(text: str) -> list[tuple[int, int]]:
    """The ancestors in a timeline history file, oldest first: [(timeline, LSN where it ended)]."""
    entries = []
    for line in text.splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            entries.append((int(fields[0]), parse_lsn(fields[1])))
    return entries


def segment(name: str) -> Optional[tuple[int, int]]:
    """(timeline, segment number) of a segment's file name (or its .partial), else None."""
    m = SEGMENT_NAME.fullmatch(name)
    if not m:
        return None
    return int(m.group(1), 16), int(m.group(2), 16) * (0x100000000 // SEGMENT_SIZE) + int(m.group(3), 16)


@dataclass(frozen=True)
class Verdict:
    """What archive_push does with a segment the repository holds with other content.

    skip: the archive does not need the local copy, provided that `requires` (the next timeline's copy of the segment,
    which holds the history's WAL up to the fork) is in the repository or ready to be archived here, and, when
    `truncated_only`, that the local copy is a truncated copy of the repository's (it holds no WAL the archive lacks).
    """

    skip: bool
    why: str
    requires: Optional[str] = None
    truncated_only: bool = False


def archive_conflict(name: str, live: int, history: list[tuple[int, int]], branch: Optional[list[tuple[int, int]]] = None) -> Verdict:
    """
    Pure. `live` is the live timeline, `history` its history (parse_history), `branch` the history of the segment's
    own timeline when that timeline is not in `history` (None when unknown).

    A timeline ends where the next one forks off it. WAL written on it after that point is not part of the current
    history: recovery along the latest timeline never reads it, and with synchronous replication no commit acknowledged
    through Patroni can be there, because the member that took over was the synchronous standby and had flushed every
    one. The fork segment's WAL up to the fork is also in the next timeline's copy of that segment (PostgreSQL copies it
    at the switch), which recovery reads instead of the old name. A segment wholly inside the history is read from the
    archive's copy: the local one may only be left out when it is a truncated copy of it. The live timeline or a newer
    one (another server writes here), history and backup files always fail.
    """
    position = segment(name)
    if position is None:
        return Verdict(False, f"{name} is not a WAL segment; history and backup files must equal the archive's copy")
    tli, segno = position
    start, end = segno * SEGMENT_SIZE, (segno + 1) * SEGMENT_SIZE
    if tli >= live:
        return Verdict(False, f"{name} is on timeline {tli}, the live one is {live}: another server archived different WAL at this "
                              "position. Is another cluster archiving to this repository path?")
    ancestors = [t for t, _ in history]
    if tli not in ancestors:
        # A sibling branch: a timeline that began off the history and was abandoned. Only its own WAL, after it began,
        # is outside the history.
        if not branch:
            return Verdict(False, f"timeline {tli} is not an ancestor of the live timeline {live} and its history is unavailable")
        parent, began = branch[-1]
        if (parent in ancestors or parent == live) and began <= start:
            return Verdict(True, f"{name} is WAL of timeline {tli}, a branch abandoned after it began at {format_lsn(began)}, "
                                 f"which is not part of the history of timeline {live}")
        return Verdict(False, f"{name} holds WAL of timeline {tli} from before it branched off at {format_lsn(began)}")
    index = ancestors.index(tli)
    ended = history[index][1]
    if ended <= start:
        return Verdict(True, f"{name} lies after timeline {tli} ended at {format_lsn(ended)}: it is not part of the history of timeline {live}")
    if ended < end:
        successor = history[index + 1][0] if index + 1 < len(history) else live
        newer = f"{successor:08X}{name[8:24]}"
        return Verdict(True, f"timeline {tli} ended at {format_lsn(ended)} inside {name}; the history's WAL up to there is in {newer}, "
                             f"which recovery reads instead, and the rest is not part of the history of timeline {live}", requires=newer)
    return Verdict(True, f"{name} lies inside timeline {tli}'s part of the history (it ended at {format_lsn(ended)}) and this member's "
                         "copy is a truncated copy of the archive's", truncated_only=True)


PAGE_SIZE = 8192


def first_difference(a: bytes, b: bytes, length: int) -> Optional[int]:
    """The first offset below `length` where `a` and `b` differ (a short file differs where it ends), or None."""
    for offset in range(0, length, 65536):
        x, y = a[offset:min(offset + 65536, length)], b[offset:min(offset + 65536, length)]
        if x != y:
            return offset + next((i for i in range(min(len(x), len(y))) if x[i] != y[i]), min(len(x), len(y)))
    return None


def page_of_segment(data: bytes, offset: int, segment_start: int) -> bool:
    """Whether the WAL page at `offset` belongs to the segment that starts at LSN `segment_start`: its header's
    xlp_pageaddr (little-endian, 8 bytes at offset 8) is that page's LSN. A zeroed page, or one left from the file's
    recycled past, does not; PostgreSQL reads neither."""
    header = data[offset + 8:offset + 16]
    return len(header) == 8 and int.from_bytes(header, "little") == segment_start + offset and any(data[offset:offset + 16])


def truncated_copy(local: bytes, reference: bytes, segment_start: int) -> bool:
    """Whether `local` holds no WAL that `reference` lacks: equal up to some point, from there zeros to the end of that
    page (or that page is not one of this segment), and no page of this segment after it. That is a standby's copy
    whose stream stopped there in a new file; anything else (more WAL, other WAL, a recycled tail in the middle of a
    page, where written and old bytes cannot be told apart) is not."""
    differ = first_difference(local, reference, max(len(local), len(reference)))
    if differ is None:
        return True
    page = differ // PAGE_SIZE * PAGE_SIZE
    if page_of_segment(local, page, segment_start) and any(local[differ:page + PAGE_SIZE]):
        return False
    return not any(page_of_segment(local, offset, segment_start) for offset in range(page + PAGE_SIZE, len(local), PAGE_SIZE))


@dataclass(frozen=True)
class Settings:
    config: str
    stanza: str
    pgdata: str
    bin_dir: str
    run_dir: str
    synchronous_mode: str

    OPTIONS = ("config", "stanza", "pgdata", "bin", "run-dir", "synchronous-mode")

    @classmethod
    def from_argv(cls, argv: list[str]) -> "Settings":
        values: dict[str, str] = {}
        for arg in argv:
            m = re.fullmatch(r"--([a-z-]+)=(.*)", arg)
            if not m or m.group(1) not in cls.OPTIONS:
                raise ValueError(f"{arg!r} is not an option; expected each of --{'=, --'.join(cls.OPTIONS)}= and then the segment's path (%p)")
            values[m.group(1)] = m.group(2)
        missing = [o for o in cls.OPTIONS if not values.get(o)]
        if missing:
            raise ValueError(f"missing --{', --'.join(missing)}")
        if values["synchronous-mode"] not in SYNCHRONOUS_MODES:
            raise ValueError(f"--synchronous-mode={values['synchronous-mode']!r} is not valid; expected one of {', '.join(SYNCHRONOUS_MODES)}")
        return cls(values["config"], values["stanza"], values["pgdata"], values["bin"], values["run-dir"], values["synchronous-mode"])

    @property
    def keep_dir(self) -> str:
        """Where skipped copies are kept: beside PGDATA, on the member's volume."""
        return os.path.join(os.path.dirname(self.pgdata.rstrip("/")), "diverged-wal")


class Member:
    """What archive_push reads and runs on this member."""

    def __init__(self, settings: Settings):
        self.s = settings
        self.wal_dir = os.path.join(settings.pgdata, "pg_wal")

    def pgbackrest(self, *args: str) -> tuple[int, str]:
        r = subprocess.run(["pgbackrest", f"--config={self.s.config}", f"--stanza={self.s.stanza}", *args],
                           capture_output=True, text=True, timeout=3600)
        return r.returncode, r.stdout + r.stderr

    def live_timeline(self) -> int:
        """The timeline of the latest checkpoint: right after a promotion still the old one, so such a conflict fails
        (and is retried) until the promotion's checkpoint; never newer than the live timeline."""
        out = subprocess.run([os.path.join(self.s.bin_dir, "pg_controldata"), "-D", self.s.pgdata], capture_output=True, text=True,
                             env=dict(os.environ, LC_ALL="C"), check=True).stdout
        m = re.search(r"^Latest checkpoint's TimeLineID:\s+(\d+)", out, re.MULTILINE)
        if not m:
            raise RuntimeError(f"pg_controldata printed no timeline:\n{out}")
        return int(m.group(1))

    def fetch(self, name: str) -> Optional[bytes]:
        """A file from the repository's archive (pgbackrest archive-get: decrypted, decompressed), or None."""
        scratch = os.path.join(self.s.run_dir, f".archive-push-{name}-{os.getpid()}")
        try:
            status, _ = self.pgbackrest("archive-get", name, scratch)
            if status != 0 or not os.path.exists(scratch):
                return None
            with open(scratch, "rb") as f:
                return f.read()
        finally:
            if os.path.exists(scratch):
                os.remove(scratch)

    def history(self, tli: int) -> Optional[list[tuple[int, int]]]:
        name = f"{tli:08X}.history"
        local = os.path.join(self.wal_dir, name)
        if os.path.exists(local):
            with open(local) as f:
                return parse_history(f.read())
        text = self.fetch(name)
        return None if text is None else parse_history(text.decode())

    def ready_here(self, name: str) -> bool:
        """Marked ready here: archived after the current segment (the archiver takes names in order), kept until then.
        A .done proves nothing: a standby marks what it streamed done."""
        return os.path.exists(os.path.join(self.wal_dir, "archive_status", f"{name}.ready")) and os.path.exists(os.path.join(self.wal_dir, name))

    def keep(self, name: str, data: bytes, prune: bool) -> str:
        """Keeps the local copy in diverged-wal/ (by content: a retry stores nothing twice). Past KEEP_LIMIT_BYTES the
        oldest copies go when `prune`, else the copy is refused (RuntimeError)."""
        os.makedirs(self.s.keep_dir, mode=0o700, exist_ok=True)
        path = os.path.join(self.s.keep_dir, f"{name}-{hashlib.sha1(data).hexdigest()}")
        if os.path.exists(path):
            return path
        kept = sorted((os.path.join(self.s.keep_dir, f) for f in os.listdir(self.s.keep_dir)), key=os.path.getmtime)
        total = sum(os.path.getsize(f) for f in kept) + len(data)
        while total > KEEP_LIMIT_BYTES and kept:
            if not prune:
                raise RuntimeError(f"{self.s.keep_dir} holds {total // 1048576} MB of divergent WAL, over its limit of {KEEP_LIMIT_BYTES // 1048576} "
                                   "MB; with asynchronous replication they may hold commits a failover lost: inspect them (pg_waldump) "
                                   "and remove them, then archiving continues")
            oldest = kept.pop(0)
            total -= os.path.getsize(oldest)
            os.remove(oldest)
            log(f"removed {oldest}, the oldest kept divergent segment, to stay under {KEEP_LIMIT_BYTES // 1048576} MB")
        with open(path + ".tmp", "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(path + ".tmp", path)
        return path


def resolve(member: Member, name: str, local: bytes) -> tuple[bool, str]:
    """(archived-or-not-needed, message) for a segment pgBackRest refused as a duplicate with other content."""
    live = member.live_timeline()
    history = member.history(live) if live > 1 else []
    if history is None:
        return False, f"the history of the live timeline {live} is neither in pg_wal nor in the archive"
    tli, segno = segment(name) or (0, 0)
    branch = member.history(tli) if tli and tli not in [t for t, _ in history] and tli < live else None
    verdict = archive_conflict(name, live, history, branch)
    if not verdict.skip:
        return False, verdict.why
    why = verdict.why
    if verdict.requires:
        if not member.ready_here(verdict.requires) and member.fetch(verdict.requires) is None:
            return False, f"{why}; but {verdict.requires} is not in the archive yet (retried until it is)"
    if verdict.truncated_only:
        theirs = member.fetch(name)
        if theirs is None:
            return False, f"pgBackRest reported {name} in the archive, but archive-get cannot read it"
        if not truncated_copy(local, theirs, segno * SEGMENT_SIZE):
            return False, (f"{name} lies inside the history and this member's copy holds WAL the archive's copy does not: one of them is "
                           "damaged, or two servers wrote this timeline; a restore reads the archive's copy")
    path = member.keep(name, local, prune=member.s.synchronous_mode != "off")
    return True, f"{name} is not archived: {why}. This member's copy is kept in {path}"


def archive_push(settings: Settings, wal_path: str) -> int:
    """The exit status PostgreSQL sees for archiving `wal_path` (%p, relative to PGDATA)."""
    member = Member(settings)
    status, out = member.pgbackrest("archive-push", wal_path)
    sys.stderr.write(out)
    name = os.path.basename(wal_path)
    if status != ARCHIVE_DUPLICATE or "already exists" not in out:
        return status
    with open(os.path.join(settings.pgdata, wal_path), "rb") as f:
        local = f.read()
    try:
        done, message = resolve(member, name, local)
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        done, message = False, str(e)
    if not done:
        log(f"ERROR: {name} is in the repository with other content and stays unarchived: {message}")
        return ARCHIVE_DUPLICATE
    log(message)
    # The backup agent turns each line into a Warning event on the pod (DivergentWALNotArchived).
    with open(os.path.join(settings.run_dir, "archive-conflicts"), "a") as f:
        f.write(json.dumps({"at": time.time(), "segment": name, "message": message}) + "\n")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        sys.stderr.write(__doc__ or "")
        return 2
    try:
        settings = Settings.from_argv(argv[1:-1])
    except ValueError as e:
        log(f"FATAL: {e}")
        return 2
    return archive_push(settings, argv[-1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
