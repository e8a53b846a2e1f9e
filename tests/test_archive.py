"""Export/import of a version as one archive file: round trip, and hostile archives."""

import copy
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile

import numpy as np
import pytest

from rlif_data.recording.reader import read_episodes
from rlif_data.registry import archive, checksums
from rlif_data.registry.archive import (
    ArchiveError,
    UnsafeArchiveError,
    export_version,
    import_archive,
    inspect_archive,
)
from rlif_data.registry.store import IntegrityError, Registry, RegistryError, VersionExistsError
from rlif_data.registry.versions import Version
from tests.fakes.episodes import make_episode, write_recording

PREFIX = "hopper/1.0.0"


# -- fixtures: one published version and its archive, shared read-only -----------------


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A registry holding hopper:1.0.0 (tags latest, paper). Tests must not modify it."""
    base = tmp_path_factory.mktemp("source")
    rec = write_recording(base / "rec", [make_episode(i) for i in range(4)])
    reg = Registry(str(base / "root"))
    reg.publish(rec, "hopper", tags=("latest", "paper"))
    return reg


@pytest.fixture(scope="module")
def good_tar(source, tmp_path_factory):
    return export_version(source, "hopper@latest",
                          str(tmp_path_factory.mktemp("export") / "hopper.tar"))


@pytest.fixture
def work(tmp_path):
    """A scratch directory whose whole file tree the damage checks compare."""
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def target(source, work):
    """A registry that already holds hopper:1.0.0 (a copy of `source`) plus walker:1.0.0."""
    shutil.copytree(source.root, work / "root")
    reg = Registry(str(work / "root"))
    rec = write_recording(work / "walker-rec", [make_episode(i, length=3) for i in range(2)])
    reg.publish(rec, "walker")
    return reg


# -- helpers ------------------------------------------------------------------------------


def tree(directory):
    """{relpath: sha256} of every file under `directory`: any write or new file shows."""
    out = {}
    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):
                out[os.path.relpath(path, directory)] = "link->" + os.readlink(path)
            else:
                with open(path, "rb") as f:
                    out[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return out


def rebuild(src, dst, edit=None, drop=(), extra=(), mode="w"):
    """Copy archive `src` to `dst` member by member, editing/dropping/adding members."""
    edit = edit or {}
    with tarfile.open(src) as tin, tarfile.open(dst, mode, format=tarfile.PAX_FORMAT) as tout:
        for member in tin.getmembers():
            if member.name in drop:
                continue
            data = tin.extractfile(member).read() if member.isreg() else None
            member = copy.copy(member)
            if member.name in edit:
                data = edit[member.name](data)
                member.size = len(data)
            tout.addfile(member, io.BytesIO(data) if data is not None else None)
        for info, data in extra:
            tout.addfile(info, io.BytesIO(data) if data is not None else None)
    return str(dst)


def member(name, kind=tarfile.REGTYPE, data=b"", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, linkname, 0o644
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (data if kind == tarfile.REGTYPE else None)


def shards(reg, ref="hopper:1.0.0"):
    return sorted(k for k in reg.info(ref).manifest["files"] if "array_record" in k)


def flip_middle_byte(data):
    data = bytearray(data)
    data[len(data) // 2] ^= 0x01
    return bytes(data)


def assert_same_episodes(a, b):
    assert len(a) == len(b) and len(a) > 0
    for x, y in zip(a, b):
        assert_same_value(x, y)


def assert_same_value(x, y):
    if isinstance(x, dict):
        assert isinstance(y, dict) and sorted(x) == sorted(y)
        for key in x:
            assert_same_value(x[key], y[key])
    elif isinstance(x, np.ndarray):
        np.testing.assert_array_equal(x, y)
    else:
        assert x == y


# -- round trip -------------------------------------------------------------------------------


def test_round_trip_into_a_second_registry(source, good_tar, work):
    with tarfile.open(good_tar) as tar:
        names = tar.getnames()
    assert names[0] == archive.HEADER
    assert sorted(names[1:]) == sorted(
        [f"{PREFIX}/{checksums.MANIFEST}"]
        + [f"{PREFIX}/{rel}" for rel in source.info("hopper:1.0.0").manifest["files"]])
    with open(good_tar, "rb") as f:
        assert f.read(2) != b"\x1f\x8b"  # plain tar by default

    other = Registry(str(work / "other"))
    info = import_archive(other, good_tar)
    assert info.ref == "hopper:1.0.0"
    assert info.tags == ()  # the archive's tags are not applied unless asked for
    assert info.manifest == source.info("hopper:1.0.0").manifest
    other.verify("hopper:1.0.0")
    assert_same_episodes(read_episodes(other.path("hopper:1.0.0")),
                         read_episodes(source.path("hopper:1.0.0")))
    assert os.listdir(other.staging_dir()) == []


def test_header_records_the_exported_tags(good_tar, source):
    header = inspect_archive(good_tar)
    assert header.ref == "hopper:1.0.0" and header.version == Version(1, 0, 0)
    assert header.tags == ("latest", "paper")
    assert header.content_sha256 == source.info("hopper:1.0.0").manifest["content_sha256"]
    with tarfile.open(good_tar) as tar:
        raw = json.loads(tar.extractfile(archive.HEADER).read())
    assert raw["format"] == "rlif-archive" and raw["format_version"] == 1


def test_gzip_by_suffix_and_caller_tags(source, work):
    out = export_version(source, "hopper:1.0.0", str(work / "hopper.tgz"))
    with open(out, "rb") as f:
        assert f.read(2) == b"\x1f\x8b"
    other = Registry(str(work / "other"))
    info = import_archive(other, out, tags=("latest", "from-lab"))
    assert info.tags == ("from-lab", "latest")
    assert other.resolve("hopper") == ("hopper", Version(1, 0, 0))
    assert info.manifest == source.info("hopper:1.0.0").manifest


def test_export_into_a_directory_names_the_file(source, work):
    out = export_version(source, "hopper", str(work))
    assert out == str(work / "hopper-1.0.0.tar")
    assert inspect_archive(out).ref == "hopper:1.0.0"


def test_export_refuses_an_existing_out_path(source, work):
    out = work / "hopper.tar"
    out.write_bytes(b"precious")
    with pytest.raises(RegistryError, match="already exists"):
        export_version(source, "hopper:1.0.0", str(out))
    assert out.read_bytes() == b"precious"
    assert os.listdir(work) == ["hopper.tar"]  # no temporary file left behind


def test_export_refuses_unknown_suffix(source, work):
    with pytest.raises(ValueError, match=r"\.tar"):
        export_version(source, "hopper:1.0.0", str(work / "hopper.zip"))
    assert os.listdir(work) == []


def test_export_refuses_a_damaged_version_and_writes_nothing(source, work):
    shutil.copytree(source.root, work / "root")
    reg = Registry(str(work / "root"))
    shard = shards(reg)[0]
    path = os.path.join(reg.info("hopper:1.0.0").path, shard)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(flip_middle_byte(data))  # same size: only the full hash sees it
    (work / "out").mkdir()
    with pytest.raises(IntegrityError, match=f"{shard}: SHA-256 differs"):
        export_version(reg, "hopper:1.0.0", str(work / "out" / "hopper.tar"))
    assert os.listdir(work / "out") == []


def test_import_of_identical_content_is_a_no_op(target, good_tar, work):
    version_dir = target.info("hopper:1.0.0").path
    before = tree(version_dir)
    inode = os.stat(version_dir).st_ino
    info = import_archive(target, good_tar)
    again = import_archive(target, good_tar, tags=("shared",))
    assert info.ref == again.ref == "hopper:1.0.0"
    assert target.versions("hopper") == [Version(1, 0, 0)]
    assert tree(version_dir) == before and os.stat(version_dir).st_ino == inode
    assert target.tags("hopper") == {"latest": "1.0.0", "paper": "1.0.0", "shared": "1.0.0"}
    assert os.listdir(target.staging_dir()) == []


def test_import_of_conflicting_content_is_refused(good_tar, work):
    reg = Registry(str(work / "root"))
    rec = write_recording(work / "rec", [make_episode(i) for i in range(7)])
    local = reg.publish(rec, "hopper", version="1.0.0")
    before = tree(reg.root)
    with pytest.raises(VersionExistsError, match="hopper:1.0.0 already exists locally"):
        import_archive(reg, good_tar)
    assert tree(reg.root) == before
    assert reg.verify("hopper:1.0.0").manifest == local.manifest
    assert len(read_episodes(reg.path("hopper:1.0.0"))) == 7


def test_invalid_tag_fails_before_any_work(good_tar, work):
    reg = Registry(str(work / "root"))
    with pytest.raises(ValueError, match="invalid tag"):
        import_archive(reg, good_tar, tags=("1.0.0",))
    assert reg.names() == []


# -- hostile and damaged archives ---------------------------------------------------------------


OUTSIDE = "outside-target"  # a file name no test creates on purpose

CASES = {
    "dotdot": (lambda w: member("../" + OUTSIDE, data=b"x"), UnsafeArchiveError, r"traversal"),
    "dotdot_in_prefix": (lambda w: member(f"{PREFIX}/../../../../{OUTSIDE}", data=b"x"),
                         UnsafeArchiveError, r"traversal"),
    "absolute": (lambda w: member(str(w / OUTSIDE), data=b"x"), UnsafeArchiveError,
                 r"absolute path"),
    "symlink": (lambda w: member(f"{PREFIX}/passwd", tarfile.SYMTYPE, linkname="/etc/passwd"),
                UnsafeArchiveError, r"symbolic link to '/etc/passwd'"),
    "symlink_dir_out": (lambda w: member(f"{PREFIX}/escape", tarfile.SYMTYPE, linkname=str(w)),
                        UnsafeArchiveError, r"symbolic link"),
    "hardlink_abs": (lambda w: member(f"{PREFIX}/hl", tarfile.LNKTYPE, linkname="/etc/passwd"),
                     UnsafeArchiveError, r"hard link to '/etc/passwd'"),
    "hardlink_up": (lambda w: member(f"{PREFIX}/hl", tarfile.LNKTYPE,
                                     linkname=f"../../{OUTSIDE}"),
                    UnsafeArchiveError, r"hard link"),
    "device": (lambda w: member(f"{PREFIX}/dev", tarfile.CHRTYPE), UnsafeArchiveError,
               r"device"),
    "fifo": (lambda w: member(f"{PREFIX}/fifo", tarfile.FIFOTYPE), UnsafeArchiveError, r"FIFO"),
    "outside_prefix": (lambda w: member(f"walker/1.0.0/{OUTSIDE}", data=b"x"),
                       UnsafeArchiveError, r"outside hopper/1.0.0/"),
    "other_version": (lambda w: member(f"hopper/2.0.0/{OUTSIDE}", data=b"x"),
                      UnsafeArchiveError, r"outside hopper/1.0.0/"),
    "top_level": (lambda w: member(OUTSIDE, data=b"x"), UnsafeArchiveError, r"outside"),
}


def evil_name(info):
    return info[0].name


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("into", ["fresh", "holding_it"])
def test_hostile_member_is_refused_before_extraction(case, into, good_tar, target, work,
                                                     tmp_path):
    make, error, why = CASES[case]
    evil = make(work)
    bad = rebuild(good_tar, tmp_path / "bad.tar", extra=[evil])
    reg = target if into == "holding_it" else Registry(str(work / "fresh"))
    before_work, before_tmp = tree(work), tree(tmp_path)
    with pytest.raises(error, match=why) as exc:
        import_archive(reg, bad)
    assert repr(evil_name(evil)) in str(exc.value) and bad in str(exc.value)
    assert_no_damage(reg, work, tmp_path, before_work, before_tmp, into)


def assert_no_damage(reg, work, tmp_path, before_work, before_tmp, into):
    assert tree(work) == before_work and tree(tmp_path) == before_tmp
    for path in (work / OUTSIDE, tmp_path / OUTSIDE, work / "root" / OUTSIDE,
                 work / "root" / "datasets" / OUTSIDE):
        assert not os.path.lexists(path)
    if os.path.isdir(reg.staging_dir()):
        assert os.listdir(reg.staging_dir()) == []
    if into == "holding_it":
        reg.verify("hopper:1.0.0")  # full SHA-256 of every file
        reg.verify("walker:1.0.0")
        assert reg.versions("hopper") == [Version(1, 0, 0)]
    else:
        assert reg.names() == []


def test_duplicate_member_is_refused(good_tar, target, work, tmp_path):
    shard = f"{PREFIX}/{shards(target)[0]}"
    with tarfile.open(good_tar) as tar:
        original = tar.extractfile(shard).read()
    bad = rebuild(good_tar, tmp_path / "dup.tar",
                  extra=[member(shard, data=flip_middle_byte(original))])
    before_work, before_tmp = tree(work), tree(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="more than once") as exc:
        import_archive(target, bad)
    assert repr(shard) in str(exc.value)
    assert_no_damage(target, work, tmp_path, before_work, before_tmp, "holding_it")


def test_member_inside_a_file_member_is_refused(good_tar, target, work, tmp_path):
    shard = f"{PREFIX}/{shards(target)[0]}"
    bad = rebuild(good_tar, tmp_path / "nested.tar", extra=[member(f"{shard}/x", data=b"x")])
    with pytest.raises(UnsafeArchiveError, match="inside the file member") as exc:
        import_archive(target, bad)
    assert repr(f"{shard}/x") in str(exc.value)


def test_data_filter_is_a_second_line_of_defence(good_tar, work):
    """Even if validation missed a link, extraction itself refuses it."""
    dest = work / "dest"
    dest.mkdir()
    bad = rebuild(good_tar, work / "link.tar",
                  extra=[member(f"{PREFIX}/passwd", tarfile.SYMTYPE, linkname="/etc/passwd")])
    with tarfile.open(bad) as tar:
        links = [m for m in tar.getmembers() if m.issym()]
        with pytest.raises(UnsafeArchiveError, match="passwd"):
            archive._extract(bad, tar, links, str(dest))
    assert not os.path.lexists(dest / PREFIX / "passwd")


@pytest.mark.parametrize("into", ["fresh", "holding_it"])
def test_file_tampered_after_export_fails_at_install(into, good_tar, target, work, tmp_path):
    shard = f"{PREFIX}/{shards(target)[1]}"
    bad = rebuild(good_tar, tmp_path / "tampered.tar", edit={shard: flip_middle_byte})
    reg = target if into == "holding_it" else Registry(str(work / "fresh"))
    before_work, before_tmp = tree(work), tree(tmp_path)
    with pytest.raises(IntegrityError, match=f"{shards(target)[1]}: SHA-256 differs"):
        import_archive(reg, bad)
    assert_no_damage(reg, work, tmp_path, before_work, before_tmp, into)


def test_resized_member_is_refused_before_extraction(good_tar, target, work, tmp_path):
    shard = f"{PREFIX}/{shards(target)[0]}"
    bad = rebuild(good_tar, tmp_path / "resized.tar", edit={shard: lambda d: d + b"extra"})
    before_work, before_tmp = tree(work), tree(tmp_path)
    with pytest.raises(IntegrityError, match="the manifest records") as exc:
        import_archive(target, bad)
    assert repr(shard) in str(exc.value)
    assert_no_damage(target, work, tmp_path, before_work, before_tmp, "holding_it")


def test_missing_and_extra_members_are_refused(good_tar, target, work, tmp_path):
    shard = f"{PREFIX}/{shards(target)[0]}"
    missing = rebuild(good_tar, tmp_path / "missing.tar", drop={shard})
    with pytest.raises(IntegrityError, match=f"missing member {shard}"):
        import_archive(target, missing)
    extra = rebuild(good_tar, tmp_path / "extra.tar",
                    extra=[member(f"{PREFIX}/bonus.bin", data=b"x")])
    with pytest.raises(IntegrityError, match=f"'{PREFIX}/bonus.bin' is not in the manifest"):
        import_archive(target, extra)
    target.verify("hopper:1.0.0")


def test_missing_header_is_refused(good_tar, target, work, tmp_path):
    bad = rebuild(good_tar, tmp_path / "noheader.tar", drop={archive.HEADER})
    before_work, before_tmp = tree(work), tree(tmp_path)
    with pytest.raises(ArchiveError, match=f"no '{archive.HEADER}' member") as exc:
        import_archive(target, bad)
    assert bad in str(exc.value)
    assert_no_damage(target, work, tmp_path, before_work, before_tmp, "holding_it")


def header_edit(**changes):
    def edit(data):
        raw = json.loads(data)
        raw.update(changes)
        return json.dumps(raw).encode()
    return edit


@pytest.mark.parametrize("changes,error,why", [
    ({"name": "../../evil"}, ArchiveError, "invalid dataset name"),
    ({"version": "1.0.0/../.."}, ArchiveError, "invalid version"),
    ({"format": "something-else"}, ArchiveError, "not an rlif-data archive"),
    ({"format_version": 99}, ArchiveError, "format_version 99"),
    ({"version": "2.0.0"}, UnsafeArchiveError, "outside hopper/2.0.0/"),
    ({"content_sha256": "0" * 64}, IntegrityError, "content_sha256 differs"),
])
def test_bad_header_is_refused(changes, error, why, good_tar, target, work, tmp_path):
    bad = rebuild(good_tar, tmp_path / "header.tar", edit={archive.HEADER: header_edit(**changes)})
    before_work, before_tmp = tree(work), tree(tmp_path)
    with pytest.raises(error, match=why):
        import_archive(target, bad)
    assert_no_damage(target, work, tmp_path, before_work, before_tmp, "holding_it")


def cut_points(path):
    """Offsets inside the first member, the middle, and inside the last member's data."""
    with tarfile.open(path) as tar:
        members = tar.getmembers()
    first, last = members[0], members[-1]
    return {"first": first.offset_data + first.size // 2,
            "middle": (last.offset_data + last.size) // 2,
            "last": last.offset_data + last.size // 2}


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_truncated_archive_is_refused(where, good_tar, target, work, tmp_path):
    with open(good_tar, "rb") as f:
        data = f.read()
    bad = tmp_path / "cut.tar"
    # Cut inside member data: a tar missing only its end-of-archive blocks
    # still holds every byte, and is rightly accepted.
    bad.write_bytes(data[:cut_points(good_tar)[where]])
    before_work, before_tmp = tree(work), tree(tmp_path)
    with pytest.raises(ArchiveError, match="truncated|not a readable") as exc:
        import_archive(target, str(bad))
    assert str(bad) in str(exc.value)
    assert_no_damage(target, work, tmp_path, before_work, before_tmp, "holding_it")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_gzip_archive_is_refused(fraction, source, target, work, tmp_path):
    full = export_version(source, "hopper:1.0.0", str(tmp_path / "full.tar.gz"))
    with open(full, "rb") as f:
        data = f.read()
    bad = tmp_path / "cut.tar.gz"
    bad.write_bytes(data[:int(len(data) * fraction)])
    before_work, before_tmp = tree(work), tree(tmp_path)
    with pytest.raises(ArchiveError, match="truncated|not a readable") as exc:
        import_archive(target, str(bad))
    assert str(bad) in str(exc.value)
    assert_no_damage(target, work, tmp_path, before_work, before_tmp, "holding_it")


def test_not_an_archive_is_refused(target, work, tmp_path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(5000))
    with pytest.raises(ArchiveError, match="junk.tar"):
        import_archive(target, str(junk))
    with pytest.raises(ArchiveError, match="no such archive"):
        import_archive(target, str(tmp_path / "absent.tar"))
    gz = tmp_path / "plain.tar.gz"
    gz.write_bytes(gzip.compress(b"not a tar at all" * 100))
    with pytest.raises(ArchiveError, match="plain.tar.gz"):
        import_archive(target, str(gz))
    target.verify("hopper:1.0.0")


def test_archive_whose_features_name_a_foreign_class_is_refused(good_tar, work, tmp_path):
    """A consistent archive (hashes rewritten) whose features.json names `this.Evil`."""
    from rlif_data.errors import UnsafeDataError

    text_class = b'"tensorflow_datasets.core.features.text_feature.Text"'
    evil = b'"this.Evil"'.ljust(len(text_class))
    with tarfile.open(good_tar) as tar:
        features = tar.extractfile(f"{PREFIX}/features.json").read().replace(text_class, evil, 1)
        manifest = json.loads(tar.extractfile(f"{PREFIX}/{checksums.MANIFEST}").read())
        header = json.loads(tar.extractfile(archive.HEADER).read())
    manifest["files"]["features.json"]["sha256"] = hashlib.sha256(features).hexdigest()
    manifest["content_sha256"] = header["content_sha256"] = checksums.content_digest(
        manifest["files"])
    bad = rebuild(good_tar, tmp_path / "evil.tar", edit={
        f"{PREFIX}/features.json": lambda _: features,
        f"{PREFIX}/{checksums.MANIFEST}": lambda _: json.dumps(manifest).encode(),
        archive.HEADER: lambda _: json.dumps(header).encode(),
    })
    reg = Registry(str(work / "fresh"))
    with pytest.raises(UnsafeDataError, match="'this.Evil'"):
        import_archive(reg, bad)
    assert reg.names() == [] and os.listdir(reg.staging_dir()) == []
