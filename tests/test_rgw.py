"""The throwaway Ceph RADOS Gateway of tests/rgw.py, the component the
object-store tests stand on: it answers signed S3 (PUT, GET, Range, HEAD,
DELETE, LIST, multipart) and refuses unsigned and badly signed requests;
curl's own Signature V4 works against it with the payload header; a
gateway that cannot start fails with its logs; stop() leaves nothing
running."""
import hashlib
import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

import rgw


def test_signed_put_get(s3_bucket):
    gw, bucket = s3_bucket
    s3 = gw.client()
    data = os.urandom(3 * 1024 * 1024 + 17)
    key = "a/b c+d/é-%s" % hashlib.sha256(data).hexdigest()
    r = s3.put(bucket, key, data)
    assert r.headers["etag"].strip('"') == hashlib.md5(data).hexdigest()
    r = s3.get(bucket, key)
    assert r.status == 200 and r.body == data
    r = s3.get(bucket, key, headers={"Range": "bytes=1000-1999"})
    assert r.status == 206 and r.body == data[1000:2000]
    assert r.headers["content-range"] == "bytes 1000-1999/%d" % len(data)
    r = s3.request("HEAD", "/%s/%s" % (bucket, key))
    assert r.status == 200
    assert int(r.headers["content-length"]) == len(data)
    assert s3.list(bucket) == {key: len(data)}
    s3.delete(bucket, key)
    assert s3.get(bucket, key).status == 404
    assert s3.list(bucket) == {}
    s3.close()


def test_multipart_upload(s3_bucket):
    gw, bucket = s3_bucket
    s3 = gw.client()
    parts = [os.urandom(5 * 1024 * 1024), os.urandom(1234)]
    r = s3.ok("POST", "/%s/mp" % bucket, query=[("uploads", "")])
    upload = ET.fromstring(r.body).findtext(rgw.S3NS + "UploadId")
    assert upload
    assert s3.uploads(bucket) == [("mp", upload)]
    etags = []
    for n, p in enumerate(parts, 1):
        r = s3.ok("PUT", "/%s/mp" % bucket, body=p,
                  query=[("partNumber", str(n)), ("uploadId", upload)])
        etags.append(r.headers["etag"])
    body = "<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(
        "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % (n, e)
        for n, e in enumerate(etags, 1))
    s3.ok("POST", "/%s/mp" % bucket, body=body.encode(),
          query=[("uploadId", upload)])
    assert s3.get(bucket, "mp").body == b"".join(parts)
    assert s3.uploads(bucket) == []
    s3.close()


def test_unsigned_and_badly_signed_are_refused(s3_bucket):
    gw, bucket = s3_bucket
    s3 = gw.client()
    s3.put(bucket, "k", b"secret bytes")
    anon = s3.request("GET", "/%s/k" % bucket, signed=False)
    assert anon.status == 403 and anon.error_code() == "AccessDenied"
    assert s3.request("PUT", "/%s/x" % bucket, body=b"x",
                      signed=False).status == 403
    bad = rgw.S3(gw.host, gw.port, gw.access_key, gw.secret_key + "x")
    r = bad.request("GET", "/%s/k" % bucket)
    assert r.status == 403 and r.error_code() == "SignatureDoesNotMatch"
    nobody = rgw.S3(gw.host, gw.port, "NOSUCHKEY", gw.secret_key)
    r = nobody.request("GET", "/%s/k" % bucket)
    assert r.status == 403 and r.error_code() == "InvalidAccessKeyId"
    assert s3.list(bucket) == {"k": 12}
    for c in (s3, bad, nobody):
        c.close()


def test_curl_sigv4_with_payload_header(s3_bucket, tmp_path):
    """curl -T signed by curl itself, as the benchmarks' baseline does:
    curl 7.88 signs but does not send x-amz-content-sha256, so the
    header is given."""
    gw, bucket = s3_bucket
    src = tmp_path / "src"
    src.write_bytes(os.urandom(1 << 20))
    url = "%s/%s/curl-object" % (gw.endpoint, bucket)
    sig = ["--aws-sigv4", "aws:amz:%s:s3" % gw.region, "--user",
           "%s:%s" % (gw.access_key, gw.secret_key), "-H",
           "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
    code = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w",
                           "%{http_code}", "-T", str(src), *sig, url],
                          capture_output=True, text=True, timeout=60)
    assert code.stdout == "200", code
    out = tmp_path / "out"
    code = subprocess.run(["curl", "-sS", "-o", str(out), "-w",
                           "%{http_code}", *sig, url],
                          capture_output=True, text=True, timeout=60)
    assert code.stdout == "200", code
    assert out.read_bytes() == src.read_bytes()


def test_failing_gateway_reports_its_log(tmp_path):
    """A gateway that cannot start raises with its daemons' logs (a test
    that needs it fails), and nothing it started keeps running."""
    g = rgw.Gateway(tmp_path / "broken", timeout=30,
                    extra_conf="rgw frontends = beast endpoint=256.0.0.1:1")
    with pytest.raises(rgw.GatewayError) as exc:
        g.start()
    msg = str(exc.value)
    assert "rgw.a exited" in msg or "did not answer" in msg, msg
    assert "---- " in msg and "rgw" in msg  # the logs are in the message
    assert g.procs == {}


def test_stop_leaves_nothing_running(tmp_path):
    g = rgw.Gateway(tmp_path / "gw").start()
    pids = [p.pid for p in g.procs.values()]
    assert len(pids) == 3
    s3 = g.client()
    assert s3.request("GET", "/").status == 200
    s3.close()
    g.stop()  # raises if a daemon had crashed or did not exit cleanly
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid) or \
            open("/proc/%d/stat" % pid).read().split()[2] == "Z"
