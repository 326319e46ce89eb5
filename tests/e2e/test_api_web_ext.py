"""Extensions the web page uses: a listening audio's waveform peaks
(GET .../files/{id}/listening-audio/peaks, made by the listening-audio
job, with an ETag and 304s), the tenant's tags for suggestions
(GET /api/v1/speech-services/tags?prefix=), and the listing's isPurged
filter (the trash without what was deleted for good)."""
import requests

from test_api_listening import wait_listening, wav

TAGS = "/api/v1/speech-services/tags"


def test_peaks_of_listening_audio(sfsd):
    # 1 s of tone at 16 kHz: 100 slices of 10 ms
    f = sfsd.new_file(data=wav(1.0), filename="tone.wav", listening="true")
    url = f"/{f['id']}/listening-audio/peaks"
    f = wait_listening(sfsd, f["id"])
    assert f["listeningAudio"]["status"] == "COMPLETED"
    r = sfsd.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "private, no-cache"
    etag = r.headers["ETag"]
    p = r.json()
    assert set(p) == {"bits", "sampleRate", "durationSeconds",
                      "secondsPerPeak", "count", "peaks"}
    assert p["bits"] == 8 and p["sampleRate"] == 16000
    assert abs(p["durationSeconds"] - 1.0) < 0.001
    assert abs(p["secondsPerPeak"] - 0.01) < 1e-9
    assert p["count"] == len(p["peaks"]) == 100
    # the wav helper's amplitude is 12000 of 32767: 93 of 255
    assert all(abs(v - 93) <= 3 for v in p["peaks"][1:-1]), p["peaks"]
    # revalidation
    r = sfsd.get(url, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""
    assert r.headers["ETag"] == etag
    r = sfsd.get(url, headers={"If-None-Match": '"other", ' + etag})
    assert r.status_code == 304
    r = sfsd.get(url, headers={"If-None-Match": '"other"'})
    assert r.status_code == 200
    # who may not read the file may not read its peaks
    sfsd.assert_error(sfsd.get(url, who="carol"), 404, "file_not_found")
    sfsd.assert_error(sfsd.get(url, who="bob"), 403)
    sfsd.assert_error(sfsd.get(url, who=None), 401)
    # the listening audio deleted: gone with it
    assert sfsd.delete(f"/{f['id']}/listening-audio").status_code == 204
    sfsd.assert_error(sfsd.get(url), 410, "listening_audio_deleted")


def test_peaks_without_listening_audio(sfsd):
    f = sfsd.new_file(data=wav(0.2), filename="t.wav", listening="false")
    url = f"/{f['id']}/listening-audio/peaks"
    sfsd.assert_error(sfsd.get(url), 422, "listening_audio_not_ready")
    sfsd.assert_error(sfsd.get("/00000000-0000-4000-8000-000000000000"
                               "/listening-audio/peaks"), 404)
    sfsd.assert_error(sfsd.get("/nope/listening-audio/peaks"), 400,
                      "invalid_uuid")
    r = sfsd.post(url)
    sfsd.assert_error(r, 405)
    assert r.headers["Allow"] == "GET"


def test_tags_for_suggestions(sfsd_factory):
    c = sfsd_factory()
    a = c.new_file(name="a", tags='["Engineering", "Meeting"]')
    c.new_file(who="bob", name="b", tags='["engage", "Zeta"]')
    c.new_file(who="carol", name="c", tags='["Engine-B"]')
    r = c.get(TAGS)
    assert r.status_code == 200
    assert r.json() == {"tags": ["engage", "Engineering", "Meeting",
                                 "Zeta"], "size": 4}
    assert c.get(TAGS, params={"prefix": "eng"}).json()["tags"] == \
        ["engage", "Engineering"]
    assert c.get(TAGS, params={"prefix": "eng", "size": 1}).json() == \
        {"tags": ["engage"], "size": 1}
    assert c.get(TAGS, who="carol").json()["tags"] == ["Engine-B"]
    for bad in ("0", "1001", "x", "-1"):
        body = c.assert_error(c.get(TAGS, params={"size": bad}), 400)
        assert body["validation_errors"][0]["location"] == "size"
    c.assert_error(c.get(TAGS, who=None), 401)
    # a purged file's tags are gone from the suggestions
    assert c.delete(f"/{a['id']}", params={"purge": "true"}).status_code \
        == 204
    assert c.get(TAGS).json()["tags"] == ["engage", "Zeta"]
    r = requests.post(c.base + TAGS, headers=c.hdr("alice"), timeout=30)
    c.assert_error(r, 405)


def test_is_purged_filter(sfsd_factory):
    c = sfsd_factory()
    kept = c.new_file(name="kept")
    gone = c.new_file(name="gone")
    live = c.new_file(name="live")
    assert c.delete(f"/{kept['id']}").status_code == 204
    assert c.delete(f"/{gone['id']}", params={"purge": "true"}
                    ).status_code == 204

    def names(**q):
        j = c.get("", params=dict(recursive="true", **q)).json()
        return sorted(f["name"] for f in j["files"]), j

    assert names(isDeleted="true")[0] == ["gone", "kept"]
    got, j = names(isDeleted="true", isPurged="false")
    assert got == ["kept"] and j["total"] == 1
    assert j["filters"]["isPurged"] is False
    assert names(isDeleted="true", isPurged="true")[0] == ["gone"]
    assert names(isPurged="false")[0] == [live["name"]]
    body = c.assert_error(c.get("", params={"isPurged": "maybe"}), 400)
    assert body["validation_errors"][0]["location"] == "isPurged"
