"""The Files API document's own examples (its curl commands and Python
snippets, as printed there, with the document's indentation restored),
pointed at a local speechfsd: the document's host becomes the daemon's
base URL, $KOLDAN_API_KEY and JWT are a real key and a minted token, and
the document's sample file id becomes a file made by its upload example.
Each must get the status the document promises for it."""
import json
import os
import subprocess
import sys
import time

import pytest

from test_api_listening import wav

# every test once per blob backend (conftest.py)
BLOB_BACKENDS = ["local", "s3"]
META_BACKENDS = ["sqlite", "pg"]

HOST = "https://koldan.dixilang.com"
SAMPLE_ID = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"

CURL_UPLOAD = r"""curl -X POST https://koldan.dixilang.com/api/v1/speech-services/files \
-H "X-API-Key: $KOLDAN_API_KEY" \
-F "file=@meeting-2026-02-25.wav" \
-F "name=meeting-recording" \
-F "description=Weekly engineering team meeting recording" \
-F 'path=/meetings/2026/march/' \
-F 'metadata={"department":"engineering"}' \
-F 'tags=["Engineering","Meeting"]'
"""

PY_UPLOAD = """import requests
with open("meeting-2026-02-25.wav", "rb") as f:
    resp = requests.post(
        "https://koldan.dixilang.com/api/v1/speech-services/files",
        headers={"Authorization": f"Bearer {JWT}"},
        files={"file": ("meeting-2026-02-25.wav", f)},
        data={
            "name": "meeting-recording",
            "description": "Weekly engineering team meeting recording",
            "path": "/meetings/2026/march/",
            "metadata": '{"department":"engineering"}',
            "tags": '["Engineering","Meeting"]'
        }
    )
print(resp.json())
"""

CURL_IMPORT = r"""curl -X POST https://koldan.dixilang.com/api/v1/speech-services/files \
-H "X-API-Key: $KOLDAN_API_KEY" \
-H "Content-Type: application/json" \
-d '{
"uri": "https://storage.example.com/recordings/meeting.wav",
"name": "meeting-recording",
"description": "Weekly engineering team meeting recording",
"path": "/meetings/2026/march/",
"metadata": {"department": "engineering"},
"generateListeningAudio": true
}'
"""

PY_IMPORT = """import requests
resp = requests.post(
    "https://koldan.dixilang.com/api/v1/speech-services/files",
    headers={
        "Authorization": f"Bearer {JWT}",
        "Content-Type": "application/json"
    },
    json={
        "uri": "https://storage.example.com/recordings/meeting.wav",
        "name": "meeting-recording",
        "description": "Weekly engineering team meeting recording",
        "path": "/meetings/2026/march/",
        "metadata": {"department": "engineering"},
        "generateListeningAudio": True
    }
)
print(resp.json())
"""

PY_DOWNLOAD = """import requests
file_id = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
resp = requests.get(
    f"https://koldan.dixilang.com/api/v1/speech-services/files/{file_id}/content",
    headers={"Authorization": f"Bearer {JWT}"},
    stream=True
)
with open("downloaded-file.wav", "wb") as f:
    for chunk in resp.iter_content(chunk_size=8192):
        f.write(chunk)
"""

PY_PATCH = """import requests
file_id = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
resp = requests.patch(
    f"https://koldan.dixilang.com/api/v1/speech-services/files/{file_id}",
    headers={
        "Authorization": f"Bearer {JWT}",
        "Content-Type": "application/json"
    },
    json={
        "name": "meeting-recording-updated",
        "tags": ["Engineering", "Archived"],
        "publishMode": "INTERNAL"
    }
)
print(resp.json())
"""

CURL_STREAM = r"""# Full download
curl -X GET https://koldan.dixilang.com/api/v1/speech-services/files/a1b2c3d4-e5f6-7890-abcd-ef1234567890/listening-audio/stream \
-H "X-API-Key: $KOLDAN_API_KEY" \
-o listening.mp3
# Range request (first 1 MB)
curl -X GET https://koldan.dixilang.com/api/v1/speech-services/files/a1b2c3d4-e5f6-7890-abcd-ef1234567890/listening-audio/stream \
-H "X-API-Key: $KOLDAN_API_KEY" \
-H "Range: bytes=0-1048575" \
-o listening-part.mp3
"""

PY_STREAM = """import requests
file_id = "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
# Full download
resp = requests.get(
    f"https://koldan.dixilang.com/api/v1/speech-services/files/{file_id}/listening-audio/stream",
    headers={"Authorization": f"Bearer {JWT}"},
    stream=True
)
with open("listening.mp3", "wb") as f:
    for chunk in resp.iter_content(chunk_size=8192):
        f.write(chunk)
# Range request (first 1 MB)
resp = requests.get(
    f"https://koldan.dixilang.com/api/v1/speech-services/files/{file_id}/listening-audio/stream",
    headers={
        "Authorization": f"Bearer {JWT}",
        "Range": "bytes=0-1048575"
    },
    stream=True
)
print(resp.status_code, resp.headers["Content-Range"], len(resp.content))
"""


@pytest.fixture(scope="module")
def ex(sfsd, tmp_path_factory):
    """Where the examples run: a directory with the document's WAV, and
    the environment they expect."""
    d = tmp_path_factory.mktemp("seed")
    (d / "meeting-2026-02-25.wav").write_bytes(wav(4.0))
    token = sfsd.admin("jwt", "--user", sfsd.users["alice"])["token"]

    class Ex:
        dir = d
        jwt = token
        key = sfsd.keys["alice"]
        file_id = None

        def local(self, text):
            text = text.replace(HOST, sfsd.base)
            if self.file_id:
                text = text.replace(SAMPLE_ID, self.file_id)
            return text

        def curl(self, text):
            p = subprocess.run(["bash", "-c", self.local(text)], cwd=d,
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ,
                                        KOLDAN_API_KEY=self.key))
            assert p.returncode == 0, p.stderr
            return p.stdout

        def python(self, code):
            code = f"JWT = {self.jwt!r}\n" + self.local(code)
            p = subprocess.run([sys.executable, "-c", code], cwd=d,
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            return p.stdout
    return Ex()


def printed(out):
    """print(resp.json()) writes a Python repr; read it back."""
    import ast
    return ast.literal_eval(out.strip())


def test_upload_examples(ex):
    f = json.loads(ex.curl(CURL_UPLOAD))
    assert f["name"] == "meeting-recording"
    assert f["path"] == "/meetings/2026/march/"
    assert f["tags"] == ["Engineering", "Meeting"]
    assert f["metadata"] == {"department": "engineering"}
    assert f["filename"] == "meeting-2026-02-25.wav"
    ex.file_id = f["id"]
    g = printed(ex.python(PY_UPLOAD))
    assert g["id"] != f["id"] and g["sha256"] == f["sha256"]
    assert g["description"] == "Weekly engineering team meeting recording"


def test_import_examples(ex, sfsd):
    for f in (json.loads(ex.curl(CURL_IMPORT)),
              printed(ex.python(PY_IMPORT))):
        assert f["ingestionStatus"] == "PENDING", f
        assert f["name"] == "meeting-recording"
        r = sfsd.get(f"/{f['id']}")
        assert r.status_code == 200


def test_download_and_patch_examples(ex, sfsd):
    assert ex.file_id
    ex.python(PY_DOWNLOAD)
    assert (ex.dir / "downloaded-file.wav").read_bytes() == \
        (ex.dir / "meeting-2026-02-25.wav").read_bytes()
    f = printed(ex.python(PY_PATCH))
    assert f["name"] == "meeting-recording-updated"
    assert sorted(f["tags"]) == ["Archived", "Engineering"]  # a set
    assert f["publishMode"] == "INTERNAL"
    assert sfsd.get(f"/{ex.file_id}").json()["publishMode"] == "INTERNAL"


def test_stream_examples(ex, sfsd):
    assert ex.file_id
    deadline = time.time() + 60
    while sfsd.get(f"/{ex.file_id}").json()["listeningAudio"]["status"] \
            != "COMPLETED":
        assert time.time() < deadline, "no listening audio in 60 s"
        time.sleep(0.2)
    size = sfsd.get(f"/{ex.file_id}").json()["listeningAudio"]["size"]
    ex.curl(CURL_STREAM)
    full = (ex.dir / "listening.mp3").read_bytes()
    assert len(full) == size and full[:3] == b"ID3"
    assert (ex.dir / "listening-part.mp3").read_bytes() == \
        full[:1048576]
    p = subprocess.run(["mpg123", "-q", "-t", str(ex.dir / "listening.mp3")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    (ex.dir / "listening.mp3").unlink()
    out = ex.python(PY_STREAM).split()
    assert out[0] == "206"
    assert out[1:3] == ["bytes", f"0-{min(size, 1048576) - 1}/{size}"]
    assert int(out[3]) == min(size, 1048576)
    assert (ex.dir / "listening.mp3").read_bytes() == full
