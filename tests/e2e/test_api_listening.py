"""Listening audio through the API: generation by the daemon's workers,
streaming with Range (200, 206, 416), generate (202, 409, 410, 422),
delete (?purge) and purge, each with its documented status."""
import io
import math
import struct
import time
import wave

# every test once per blob backend (conftest.py)
BLOB_BACKENDS = ["local", "s3"]
META_BACKENDS = ["sqlite", "pg"]


def wav(seconds=1.0, rate=16000, freq=440.0):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        n = int(seconds * rate)
        w.writeframes(b"".join(
            struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq *
                                                   i / rate)))
            for i in range(n)))
    return buf.getvalue()


def wait_listening(c, fid, want=("COMPLETED", "FAILED"), timeout=60):
    deadline = time.time() + timeout
    while True:
        f = c.get(f"/{fid}").json()
        la = f["listeningAudio"]
        if la and la["status"] in want:
            return f
        assert time.time() < deadline, f
        time.sleep(0.1)


def is_mp3(b):
    return b[:3] == b"ID3" or (b[0] == 0xFF and (b[1] & 0xE0) == 0xE0)


def test_upload_generates_and_streams(sfsd):
    f = sfsd.new_file(data=wav(), filename="tone.wav", listening="true")
    assert f["listeningAudio"]["status"] in ("PENDING", "PROCESSING",
                                             "COMPLETED")
    f = wait_listening(sfsd, f["id"])
    la = f["listeningAudio"]
    assert la["status"] == "COMPLETED", f
    assert la["size"] > 0 and la["createdAt"]
    url = f"/{f['id']}/listening-audio/stream"
    r = sfsd.get(url)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "audio/mpeg"
    assert r.headers["Accept-Ranges"] == "bytes"
    assert len(r.content) == la["size"]
    assert is_mp3(r.content)
    full = r.content
    r = sfsd.get(url, headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and r.content == full[:100]
    assert r.headers["Content-Range"] == f"bytes 0-99/{len(full)}"
    r = sfsd.get(url, headers={"Range": "bytes=-1"})
    assert r.status_code == 206 and r.content == full[-1:]
    r = sfsd.get(url, headers={"Range": f"bytes={len(full)}-"})
    sfsd.assert_error(r, 416)
    assert r.headers["Content-Range"] == f"bytes */{len(full)}"
    # generating again: it exists
    sfsd.assert_error(sfsd.post(f"/{f['id']}/listening-audio/generate"),
                      409)


def test_generate_202_on_request(sfsd):
    f = sfsd.new_file(data=wav(0.5), listening="false")
    assert f["listeningAudio"] is None
    r = sfsd.get(f"/{f['id']}/listening-audio/stream")
    assert r.status_code in (404, 422)
    sfsd.assert_error(r, r.status_code)
    r = sfsd.post(f"/{f['id']}/listening-audio/generate")
    assert r.status_code == 202, r.text
    assert r.json()["listeningAudio"]["status"] in ("PENDING", "PROCESSING",
                                                    "COMPLETED")
    f = wait_listening(sfsd, f["id"])
    assert f["listeningAudio"]["status"] == "COMPLETED"
    m = sfsd.get("/metrics", who=None).text
    assert 'speechfs_jobs{kind="listening"' in m, m[-800:]


def test_stream_not_ready_422_without_workers(sfsd_factory):
    c = sfsd_factory(args=("--no-workers",))
    f = c.new_file(data=wav(0.2), listening="true")
    assert f["listeningAudio"]["status"] == "PENDING"
    c.assert_error(c.get(f"/{f['id']}/listening-audio/stream"), 422)
    c.assert_error(c.post(f"/{f['id']}/listening-audio/generate"), 409)
    # an import not yet ingested: generation is not ready either
    r = c.post("", json={"uri": "https://e.invalid/a.wav", "name": "i",
                         "generateListeningAudio": False})
    assert r.status_code == 201
    c.assert_error(c.post(f"/{r.json()['id']}/listening-audio/generate"),
                   422)
    c.assert_error(c.get(f"/{r.json()['id']}/content"), 422)


def test_delete_and_purge_listening(sfsd):
    f = sfsd.new_file(data=wav(0.3), listening="true")
    fid = f["id"]
    wait_listening(sfsd, fid)
    assert sfsd.delete(f"/{fid}/listening-audio").status_code == 204
    la = sfsd.get(f"/{fid}").json()["listeningAudio"]
    assert la["deleted"] is True and la["deletedAt"]
    sfsd.assert_error(sfsd.get(f"/{fid}/listening-audio/stream"), 410)
    sfsd.assert_error(sfsd.delete(f"/{fid}/listening-audio"), 409)
    sfsd.assert_error(sfsd.post(f"/{fid}/listening-audio/generate"), 409)
    assert sfsd.delete(f"/{fid}/listening-audio?purge=true") \
        .status_code == 204
    la = sfsd.get(f"/{fid}").json()["listeningAudio"]
    assert la["isPurged"] is True and la["purgedAt"]
    # the original is untouched
    assert sfsd.get(f"/{fid}/content").status_code == 200


def test_purge_listening_endpoint(sfsd):
    f = sfsd.new_file(data=wav(0.3), listening="true")
    fid = f["id"]
    wait_listening(sfsd, fid)
    r = sfsd.post(f"/{fid}/listening-audio/purge")
    assert r.status_code == 204 and r.content == b""
    la = sfsd.get(f"/{fid}").json()["listeningAudio"]
    assert la["isPurged"] is True
    sfsd.assert_error(sfsd.get(f"/{fid}/listening-audio/stream"), 410)
    sfsd.assert_error(sfsd.post(f"/{fid}/listening-audio/purge"), 409)


def test_listening_without_audio_404_and_permissions(sfsd):
    f = sfsd.new_file(listening="false")
    fid = f["id"]
    sfsd.assert_error(sfsd.delete(f"/{fid}/listening-audio"), 404)
    sfsd.assert_error(sfsd.post(f"/{fid}/listening-audio/purge"), 404)
    # VIEW share: may not generate or delete
    sfsd.post(f"/{fid}/shares", json={"userId": sfsd.users["bob"]})
    sfsd.assert_error(sfsd.post(f"/{fid}/listening-audio/generate",
                                who="bob"), 403)
    sfsd.assert_error(sfsd.delete(f"/{fid}/listening-audio", who="bob"),
                      403)


def test_generate_after_discard_410(sfsd):
    f = sfsd.new_file(data=wav(0.2), listening="false")
    assert sfsd.post(f"/{f['id']}/discard-content").status_code == 204
    sfsd.assert_error(sfsd.post(f"/{f['id']}/listening-audio/generate"),
                      410)


def test_not_audio_fails_and_can_be_retried(sfsd):
    f = sfsd.new_file(data=b"this is not audio at all" * 10,
                      listening="true")
    f = wait_listening(sfsd, f["id"])
    assert f["listeningAudio"]["status"] == "FAILED"
    sfsd.assert_error(sfsd.get(f"/{f['id']}/listening-audio/stream"), 422)
    r = sfsd.post(f"/{f['id']}/listening-audio/generate")
    assert r.status_code == 202


def test_players_play_and_seek_over_http(sfsd):
    """What a player does with the stream: ffprobe reads the duration,
    ffmpeg seeks 40 s in (a Range request) and decodes from there, with
    the key in a header and, like an <audio> element, through a signed URL
    with no header at all."""
    import subprocess
    f = sfsd.new_file(data=wav(60.0, rate=8000), filename="long.wav",
                      listening="true")
    f = wait_listening(sfsd, f["id"], timeout=120)
    assert f["listeningAudio"]["status"] == "COMPLETED", f
    url = f"{sfsd.api}/{f['id']}/listening-audio/stream"
    key = ["-headers", f"X-API-Key: {sfsd.keys['alice']}\r\n"]
    r = sfsd.post(f"/{f['id']}/signed-url",
                  json={"target": "listening-audio"})
    assert r.status_code == 200, r.text
    signed = sfsd.base + r.json()["url"]
    def partials():
        import re
        m = re.search(r'speechfs_http_requests_total\{route='
                      r'"listening_stream",status="206"\} (\d+)',
                      sfsd.get("/metrics", who=None).text)
        return int(m.group(1)) if m else 0
    for opts, u in ((key, url), ([], signed)):
        before = partials()
        p = subprocess.run(["ffprobe", "-v", "error", *opts, "-show_entries",
                            "format=duration", "-of", "csv=p=0", u],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert abs(float(p.stdout) - 60.0) < 0.5, p.stdout
        p = subprocess.run(["ffmpeg", "-v", "error", *opts, "-ss", "40",
                            "-i", u, "-t", "5", "-f", "s16le", "-ac", "1",
                            "-ar", "8000", "-"],
                           capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
        # 5 s from 40 s on: 5 s of 16-bit samples, and not silence
        assert abs(len(p.stdout) - 5 * 8000 * 2) <= 2 * 1152, len(p.stdout)
        assert max(p.stdout[1::2]) > 16
        assert partials() > before  # the seek was a Range request
