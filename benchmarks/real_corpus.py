"""A real-music corpus any user can rebuild: the music of free game soundtracks packaged by Debian (issue 26).

    python -m benchmarks.real_corpus --out DIR [--packages PKG ...] [--max-download-mb 1500] [--shards] [--json]

Needs a Debian-like system with apt (its package lists up to date: `apt-get update`, as root) and dpkg-deb;
nothing is installed. Each candidate package (CANDIDATES, or --packages) is looked up with `apt-cache show`,
fetched with `apt-get download` into DIR/debs (no root needed) and only its audio files are unpacked, from
`dpkg-deb --fsys-tarfile`, into DIR/extracted/PKG (the rest of a game's data, textures and models, is never
kept; 0ad-data's music, inside a zip of its data, goes to extracted/0ad-data/.../public.zip.d/). Packages whose
download is over --max-download-mb are skipped (all candidates together: about 3.9 GB).

A track is kept when it is music, not a sound effect: an audio file that data_prep decodes (data_prep's
AUDIO_EXTENSIONS; tracker modules .xm/.mod/.it/.s3m are counted but skipped, the PyAV build here has no module
decoder), in a folder whose name says music (music/, Musics/, Music.ocg/...) or named in MUSIC_OUTSIDE_FOLDERS,
and at least MIN_MUSIC_SECONDS long. Length alone is not enough: games keep minute-long ambiences (megaglest's
tileset winds, supertuxkart's radio static) beside their music; the folder alone neither: music folders hold
short jingles. A file whose bytes another kept file already has (one track shipped twice) is dropped.

DIR/manifest.csv is a data_prep manifest (`python -m musicssl.data_prep DIR/manifest.csv --out SHARDS`, or
--shards here): track_id = PKG/path inside the package, tags = the package (the soundtrack it comes from) and the
game's genres from Debian's debtags (`game_genres`), split by `split_of(track_id)`, a hash, so a track keeps its
split whatever else the corpus holds; extra columns `source`, `version`, `folder` (the file's folder in the
package) and `seconds`. A source is kept when it has MIN_SPLIT_TRACKS train and test tracks. Prints per source
the tracks, hours and genres, and why each candidate was used or skipped.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import av

from benchmarks.harness import add_json_flag, emit_report, print_table
from musicssl.data_prep.audio_files import AUDIO_EXTENSIONS
from musicssl.data_prep.inputs import TAG_SEPARATOR

# The candidates: free game packages of Debian that may hold music.
CANDIDATES = (
    "asc-music",
    "xblast-tnt-musics",
    "fb-music-high",
    "frozen-bubble-data",
    "widelands-data",
    "megaglest-data",
    "hedgewars-data",
    "freedroidrpg-data",
    "supertux-data",
    "openclonk-data",
    "lincity-ng-data",
    "neverball-data",
    "freeorion-data",
    "xmoto-data",
    "supertuxkart-data",
    "0ad-data",
    # more free game soundtracks in Debian, beyond the list
    "wesnoth-1.16-music",
    "warzone2100-music",
    "flare-game",
    "extremetuxracer-data",
    "ardentryst",
)
TRACKER_SUFFIXES = frozenset({".xm", ".mod", ".it", ".s3m"})  # no decoder for them in this PyAV
MIN_MUSIC_SECONDS = 30.0  # jingles, voices and effects are shorter; the shortest game loops are longer
# Music that the packages keep outside a music folder, by package: (pattern of the path in the package, why)
MUSIC_OUTSIDE_FOLDERS = {
    "frozen-bubble-data": ("*/snd/*zik*.ogg", "the game's music beside its effects, named -zik (French: music)"),
    "freeorion-data": ("*/data/sound/artificial_intelligence*.ogg", "the game's soundtrack, in data/sound"),
}
# Zip archives that a package keeps its music in, by package (0ad's game data is one 3 GB zip): their audio
# members are unpacked under a folder named like the archive, the archive itself is not kept.
MUSIC_ARCHIVES = {"0ad-data": "*/mods/public/public.zip"}
MAX_DOWNLOAD_MB = 1500.0
# A source is kept when its tag has this many tracks in train and in test: a tag with one or two test tracks
# makes the tag-wise scores and the paired intervals of a probe jump with those tracks alone.
MIN_SPLIT_TRACKS = 3
# data_prep.demo's proportions (4/8, 1/8, 3/8): a test split large enough for paired comparisons of probes
SPLITS = (("train", 0.5), ("valid", 0.125), ("test", 0.375))
GENRE_PREFIX = "genre:"  # the manifest's second kind of tag (game_genres)
MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = ("path", "track_id", "tags", "split", "source", "version", "folder", "seconds")


@dataclass
class Track:
    """One kept music file and its manifest row."""

    path: Path
    track_id: str
    source: str
    version: str
    seconds: float
    genres: tuple[str, ...] = ()

    @property
    def split(self) -> str:
        return split_of(self.track_id)

    @property
    def folder(self) -> str:
        return str(PurePosixPath(self.track_id).parent.relative_to(self.source))


@dataclass
class SourceSummary:
    """What became of one candidate package."""

    package: str
    used: bool
    reason: str
    version: str = ""
    download_mb: float = 0.0
    audio_files: int = 0
    tracks: int = 0
    hours: float = 0.0
    splits: dict[str, int] = field(default_factory=dict)
    genres: tuple[str, ...] = ()


@dataclass
class CorpusReport:
    """The corpus: its manifest, the sources and the totals."""

    manifest: str
    min_music_seconds: float
    sources: list[SourceSummary]
    tracks: int
    hours: float
    used_sources: int
    splits: dict[str, int]
    genres: list[str]


def split_of(track_id: str) -> str:
    """The track's split, from the SHA-1 of its id read as a fraction in [0, 1): fixed for ever per track."""
    fraction = int.from_bytes(hashlib.sha1(track_id.encode()).digest()[:8], "big") / 2**64
    bound = 0.0
    for name, share in SPLITS:
        bound += share
        if fraction < bound:
            return name
    return SPLITS[-1][0]


def apt_fields(package: str) -> dict[str, str] | None:
    """The fields `apt-cache show` gives for the candidate version (folded lines joined), or None if apt does
    not know the package."""
    result = subprocess.run(["apt-cache", "show", "--no-all-versions", package], capture_output=True, text=True)
    if result.returncode != 0 or not result.stdout.strip():
        return None
    return parse_control(result.stdout)


def parse_control(text: str) -> dict[str, str]:
    """The fields of the first paragraph of a Debian control text, folded lines joined with a space."""
    fields: dict[str, str] = {}
    name = ""
    for line in text.split("\n\n", 1)[0].splitlines():
        if line[:1] in (" ", "\t") and name:
            fields[name] += " " + line.strip()
        elif ": " in line:
            name, value = line.split(": ", 1)
            fields[name] = value
    return fields


def genres_of(debtags: str) -> set[str]:
    """The `game::` facets of a Tag field as manifest tags: "game::strategy, role::app-data" -> genre:strategy."""
    tags = (tag.strip() for tag in debtags.split(","))
    return {GENRE_PREFIX + tag.removeprefix("game::") for tag in tags if tag.startswith("game::")}


def package_info(package: str) -> tuple[str, float] | None:
    """The candidate version and download size (MB) `apt-cache show` gives, or None if apt does not know it."""
    fields = apt_fields(package)
    if fields is None:
        return None
    return fields.get("Version", ""), int(fields.get("Size", "0")) / 1e6


def game_genres(package: str) -> tuple[str, ...]:
    """The genres Debian's debtags give the package or the programs that depend on it or recommend it
    (`game::strategy` -> `genre:strategy`): the game its soundtrack was written for, read from the archive."""
    depending = subprocess.run(
        ["apt-cache", "rdepends", "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces",
         "--no-enhances", package],
        capture_output=True, text=True,
    ).stdout.splitlines()[2:]  # fmt: skip
    genres: set[str] = set()
    for name in {package, *(line.strip().lstrip("|") for line in depending if line.strip())}:
        genres |= genres_of((apt_fields(name) or {}).get("Tag", ""))
    return tuple(sorted(genres))


def download(package: str, debs: Path) -> Path:
    """The package's .deb in `debs`, fetched with `apt-get download` unless already there."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True, capture_output=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1]


def extract_audio(deb: Path, target: Path, archive_pattern: str | None = None) -> list[Path]:
    """Write the package's regular audio files (and tracker modules) under `target`, keeping their paths, and
    those of the zip archive matching `archive_pattern` (see MUSIC_ARCHIVES)."""
    wanted = AUDIO_EXTENSIONS | TRACKER_SUFFIXES
    written: list[Path] = []
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                relative = PurePosixPath(member.name.removeprefix("./"))
                archive = archive_pattern is not None and relative.match(archive_pattern)
                if not member.isfile() or ".." in relative.parts:
                    continue
                if relative.suffix.lower() not in wanted and not archive:
                    continue
                out = target / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with out.open("wb") as sink:
                    shutil.copyfileobj(source, sink)
                if archive:
                    written.extend(unzip_audio(out, wanted))
                else:
                    written.append(out)
    if proc.returncode != 0:
        raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb} failed ({proc.returncode})")
    return written


def unzip_audio(archive: Path, wanted: frozenset[str]) -> list[Path]:
    """Unpack the archive's audio members into a folder of the archive's name, then delete the archive."""
    folder = archive.with_name(archive.name + ".d")
    written: list[Path] = []
    with zipfile.ZipFile(archive) as bundle:
        for info in bundle.infolist():
            relative = PurePosixPath(info.filename)
            if info.is_dir() or relative.suffix.lower() not in wanted or ".." in relative.parts:
                continue
            out = folder / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as source, out.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            written.append(out)
    archive.unlink()
    return written


def duration_seconds(path: Path) -> float | None:
    """The length the container declares (no decoding), or None if PyAV cannot open it as audio."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            if container.duration:
                return container.duration / av.time_base
            stream = container.streams.audio[0]
            return float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
    except av.error.FFmpegError:
        return None


def is_music_path(package: str, relative: PurePosixPath) -> bool:
    """Whether a file of the package sits where the package keeps its music (a folder named for music, or an
    exception of MUSIC_OUTSIDE_FOLDERS)."""
    if any("music" in folder.lower() for folder in relative.parent.parts):
        return True
    exception = MUSIC_OUTSIDE_FOLDERS.get(package)
    return exception is not None and relative.match(exception[0])


def music_tracks(files: Iterable[Path], root: Path, package: str, version: str, seen: dict[str, str]) -> list[Track]:
    """The files of one extracted package that are music: in a music place, decodable, at least
    MIN_MUSIC_SECONDS, new bytes.
    `seen` maps the SHA-1 of each kept file's bytes to its track id, across packages."""
    tracks: list[Track] = []
    for path in sorted(files):
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        if not is_music_path(package, PurePosixPath(path.relative_to(root).as_posix())):
            continue
        seconds = duration_seconds(path)
        if seconds is None or seconds < MIN_MUSIC_SECONDS:
            continue
        digest = hashlib.sha1(path.read_bytes()).hexdigest()
        if digest in seen:
            continue
        track_id = f"{package}/{path.relative_to(root).as_posix()}"
        seen[digest] = track_id
        tracks.append(Track(path=path, track_id=track_id, source=package, version=version, seconds=seconds))
    return tracks


def write_manifest(tracks: Sequence[Track], manifest: Path) -> None:
    """The data_prep manifest of the tracks, paths relative to its folder, sorted by track id."""
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        for track in sorted(tracks, key=lambda t: t.track_id):
            writer.writerow(
                {
                    "path": track.path.relative_to(manifest.parent).as_posix(),
                    "track_id": track.track_id,
                    "tags": TAG_SEPARATOR.join([track.source, *track.genres]),
                    "split": track.split,
                    "source": track.source,
                    "version": track.version,
                    "folder": track.folder,
                    "seconds": f"{track.seconds:.1f}",
                }
            )


def split_counts(tracks: Iterable[Track]) -> dict[str, int]:
    """Tracks per split, in SPLITS order."""
    tracks = list(tracks)
    return {name: sum(t.split == name for t in tracks) for name, _ in SPLITS}


def collect(package: str, out: Path, max_download_mb: float, seen: dict[str, str]) -> tuple[SourceSummary, list[Track]]:
    """Fetch, unpack and select one candidate; the summary says why it was used or skipped."""
    info = package_info(package)
    if info is None:
        return SourceSummary(package, used=False, reason="not known to apt (apt-get update?)"), []
    version, download_mb = info
    summary = SourceSummary(package, used=False, reason="", version=version, download_mb=download_mb)
    if download_mb > max_download_mb:
        summary.reason = f"download {download_mb:.0f} MB > --max-download-mb {max_download_mb:.0f}"
        return summary, []
    root = out / "extracted" / package
    if root.exists():
        shutil.rmtree(root)
    files = extract_audio(download(package, out / "debs"), root, MUSIC_ARCHIVES.get(package))
    summary.audio_files = len(files)
    tracks = music_tracks(files, root, package, version, seen)
    splits = split_counts(tracks)
    if tracks and min(splits["train"], splits["test"]) < MIN_SPLIT_TRACKS:
        summary.reason = (
            f"{splits['train']} train and {splits['test']} test tracks of its {len(tracks)}: "
            f"its tag needs >= {MIN_SPLIT_TRACKS} in each"
        )
        return summary, []
    summary.tracks, summary.hours, summary.splits = len(tracks), sum(t.seconds for t in tracks) / 3600, splits
    modules = sum(f.suffix.lower() in TRACKER_SUFFIXES for f in files)
    if tracks:
        summary.genres = game_genres(package)
        for track in tracks:
            track.genres = summary.genres
        summary.used, summary.reason = (
            True,
            f"{len(tracks)} of {len(files)} audio files are music of >= {MIN_MUSIC_SECONDS:g} s",
        )
    elif modules:
        summary.reason = f"only tracker modules ({modules}), which PyAV here cannot decode"
    elif files:
        summary.reason = f"no music of >= {MIN_MUSIC_SECONDS:g} s among {len(files)} audio files"
    else:
        summary.reason = "no audio file in a format data_prep reads"
    return summary, tracks


def build(out: Path, packages: Sequence[str], max_download_mb: float) -> tuple[CorpusReport, list[Track]]:
    """Fetch every candidate, select its music and write DIR/manifest.csv."""
    (out / "debs").mkdir(parents=True, exist_ok=True)
    seen: dict[str, str] = {}
    summaries: list[SourceSummary] = []
    tracks: list[Track] = []
    for package in packages:
        summary, kept = collect(package, out, max_download_mb, seen)
        print(f"{package}: {'used' if summary.used else 'skipped'}: {summary.reason}", file=sys.stderr)
        summaries.append(summary)
        tracks.extend(kept)
    manifest = out / MANIFEST_NAME
    write_manifest(tracks, manifest)
    report = CorpusReport(
        manifest=str(manifest),
        min_music_seconds=MIN_MUSIC_SECONDS,
        sources=summaries,
        tracks=len(tracks),
        hours=sum(t.seconds for t in tracks) / 3600,
        used_sources=sum(s.used for s in summaries),
        splits=split_counts(tracks),
        genres=sorted({genre for track in tracks for genre in track.genres}),
    )
    return report, tracks


def print_report(report: CorpusReport) -> None:
    """The per-source table and the totals."""
    names = [name for name, _ in SPLITS]
    rows = [
        [s.package, s.version, s.download_mb, s.tracks, s.hours, *(s.splits.get(n, 0) for n in names),
         ",".join(g.removeprefix(GENRE_PREFIX)
         for g in s.genres) or "-", s.reason]
        for s in report.sources
    ]  # fmt: skip
    total_mb = sum(s.download_mb for s in report.sources if s.used)
    rows.append(["total", "", total_mb, report.tracks, report.hours, *(report.splits[n] for n in names),
                 f"{len(report.genres)} genres", f"{report.used_sources} sources used"])  # fmt: skip
    specs = ["<20", "<22", ">8.1f", ">7", ">6.2f", *([">6"] * len(names)), "<16"]
    print_table(["source", "version", "MB", "tracks", "hours", *names, "genres", "why"], rows, specs, notes=True)
    print(f"manifest: {report.manifest}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for debs/, extracted/ and manifest.csv")
    parser.add_argument("--packages", nargs="+", default=list(CANDIDATES), help="Debian packages to try")
    parser.add_argument("--max-download-mb", type=float, default=MAX_DOWNLOAD_MB, help="skip larger packages")
    parser.add_argument("--shards", action="store_true", help="then run data_prep on the manifest (DIR/shards)")
    parser.add_argument("--workers", type=int, default=1, help="data_prep's --workers with --shards")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    report, _ = build(args.out, args.packages, args.max_download_mb)
    emit_report(report, args.json, print_report)
    if args.shards:
        command = [sys.executable, "-m", "musicssl.data_prep", report.manifest, "--out", str(args.out / "shards")]
        return subprocess.run([*command, "--workers", str(args.workers)], stdout=sys.stderr).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
