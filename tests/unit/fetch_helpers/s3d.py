"""A minimal S3-compatible server for t_fetch: GET of objects from a dict,
path-style (/bucket/key) or virtual-hosted (bucket.host/key), every request
checked against AWS Signature Version 4 with a known key pair. Listens on
127.0.0.1 (port 0) and prints "PORT n" on stdout."""
import datetime
import hashlib
import hmac
import http.server
import sys
import urllib.parse

ACCESS_KEY = "AKIDTESTSPEECHFS"
SECRET_KEY = "test/secret+key/0123456789abcdefghijklm"
REGION = "us-east-1"

OBJECTS = {
    ("bkt", "hello.txt"): b"hello from s3\n",
    ("bkt", "dir/a+b(1)&=~!$'*,;@?#%20\u00e9.wav"): bytes(range(256)) * 40,
}


def sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def error(self, status, code, message):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s"
                "</Code><Message>%s</Message></Error>" % (code, message)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def check_signature(self):
        """None if the request is signed right, else an error code."""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "AccessDenied"
        fields = dict(p.strip().split("=", 1) for p in auth[17:].split(","))
        cred = fields.get("Credential", "").split("/")
        if len(cred) != 5 or cred[0] != ACCESS_KEY:
            return "InvalidAccessKeyId"
        date, region, service, term = cred[1:]
        amzdate = self.headers.get("x-amz-date", "")
        if region != REGION or service != "s3" or term != "aws4_request" \
                or not amzdate.startswith(date):
            return "AuthorizationHeaderMalformed"
        when = datetime.datetime.strptime(amzdate, "%Y%m%dT%H%M%SZ")
        skew = abs((datetime.datetime.utcnow() - when).total_seconds())
        if skew > 900:
            return "RequestTimeTooSkewed"
        signed = fields.get("SignedHeaders", "").split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            return "AccessDenied"
        url = urllib.parse.urlsplit(self.path)
        query = "&".join(sorted(url.query.split("&"))) if url.query else ""
        headers = "".join("%s:%s\n" % (h, " ".join(
            (self.headers.get(h) or "").split())) for h in signed)
        payload = self.headers.get("x-amz-content-sha256", "")
        # the canonical URI is the key encoded by AWS's rules, whatever
        # the client sent: a client that encodes differently fails here
        curi = urllib.parse.quote(urllib.parse.unquote(url.path), safe="/~")
        canonical = "\n".join([self.command, curi, query, headers,
                               ";".join(signed), payload])
        scope = "%s/%s/s3/aws4_request" % (date, region)
        sts = "\n".join(["AWS4-HMAC-SHA256", amzdate, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
        k = sign(("AWS4" + SECRET_KEY).encode(), date)
        k = sign(sign(sign(k, region), "s3"), "aws4_request")
        want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, fields.get("Signature", "")):
            return "SignatureDoesNotMatch"
        return None

    def do_GET(self):
        err = self.check_signature()
        if err:
            self.error(403, err, "request refused")
            return
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        host = self.headers.get("Host", "").split(":")[0]
        first = host.split(".")[0]
        if "." in host and any(b == first for b, _ in OBJECTS):
            bucket, key = first, path[1:]
        else:
            bucket, _, key = path[1:].partition("/")
        body = OBJECTS.get((bucket, key))
        if body is None:
            self.error(404, "NoSuchKey", "no such key")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"%s"' % hashlib.md5(body).hexdigest())
        self.end_headers()
        self.wfile.write(body)


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.handle_error = lambda request, address: None  # clients that hang up
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
