"""/.listening/: the MP3 derivative of a recording, requested through the
listeningAudio.status xattr, appears with its exact size, reads with
random access, decodes to the recording's duration, and is read-only."""
import errno
import json
import math
import os
import shutil
import struct
import subprocess
import time
import wave

import pytest

from fsutil import mnt, mounts, store, xget  # noqa: F401

MOUNT_KINDS = ["local", "remote"]

# every test once per blob backend (conftest.py)
BLOB_BACKENDS = ["local", "s3"]
META_BACKENDS = ["sqlite", "pg"]

P = "user.speechfs."


def make_wav(path, seconds=2.0, rate=16000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i /
                                                  rate)))
            for i in range(int(seconds * rate)))
        w.writeframes(frames)


def wait_status(path, want, timeout=60):
    deadline = time.time() + timeout
    st = None
    while time.time() < deadline:
        try:
            st = xget(path, P + "listeningAudio.status")
        except OSError:
            st = None
        if st == want or st == "FAILED":
            break
        time.sleep(0.2)
    return st


def test_listening_mp3(mnt, tmp_path):
    src = tmp_path / "tone.wav"
    make_wav(src)
    os.mkdir(mnt.path("talks"))
    shutil.copy(src, mnt.path("talks", "tone.wav"))
    f = mnt.path("talks", "tone.wav")
    # a file written through the mount gets listening audio by itself
    assert wait_status(f, "COMPLETED") == "COMPLETED"
    with pytest.raises(OSError) as ei:
        os.setxattr(f, P + "listeningAudio.status", b"please")
    assert ei.value.errno == errno.EPERM  # only "generate" is taken
    # it exists: asking again is a conflict
    with pytest.raises(OSError) as ei:
        os.setxattr(f, P + "listeningAudio.status", b"generate")
    assert ei.value.errno == errno.EEXIST
    la = json.loads(xget(f, P + "json"))["listeningAudio"]
    mp3 = mnt.path(".listening", "talks", "tone.mp3")
    deadline = time.time() + 5
    while not mp3.exists() and time.time() < deadline:
        time.sleep(0.2)
    assert os.listdir(mnt.path(".listening", "talks")) == ["tone.mp3"]
    assert os.stat(mp3).st_size == la["size"]
    assert os.stat(mp3).st_ino != os.stat(f).st_ino
    data = mp3.read_bytes()
    assert len(data) == la["size"]
    # random access
    with open(mp3, "rb") as fh:
        fh.seek(len(data) // 2)
        assert fh.read(100) == data[len(data) // 2:len(data) // 2 + 100]
    # decode and compare the duration (never bytes)
    assert shutil.which("ffprobe"), "packaging/install-deps.sh installs it"
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration",
         "-of", "csv=p=0", str(mp3)], capture_output=True, text=True)
    assert abs(float(out.stdout.strip()) - 2.0) < 0.15
    # read-only
    with pytest.raises(OSError) as ei:
        open(mp3, "r+b")
    assert ei.value.errno in (errno.EACCES, errno.EROFS)
    with pytest.raises(OSError):
        os.unlink(mp3)
    # gone with the file
    os.unlink(f)
    assert os.listdir(mnt.path(".listening", "talks")) == []


def test_generate_off_then_on_request(mounts, store, tmp_path):
    """-o generate=0: written files get no MP3 until one is asked for."""
    src = tmp_path / "tone.wav"
    make_wav(src)
    m = mounts(store[2][0], "-o", "generate=0")
    shutil.copy(src, m.path("tone.wav"))
    f = m.path("tone.wav")
    with pytest.raises(OSError) as ei:
        xget(f, P + "listeningAudio.status")
    assert ei.value.errno == errno.ENODATA
    os.setxattr(f, P + "listeningAudio.status", b"generate")
    assert wait_status(f, "COMPLETED") == "COMPLETED"
