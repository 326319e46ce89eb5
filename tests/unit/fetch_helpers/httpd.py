"""Test HTTP server for t_fetch: well-behaved and misbehaving responses by
path. Listens on 127.0.0.1 (port 0) and prints "PORT n" on stdout; with
the argument "tls" it speaks HTTPS with a fresh self-signed certificate.
Its sleeps are what it simulates: a server slow to answer, one that stalls
mid-body, one that drips a byte at a time."""
import http.server
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse


def pattern(n):
    """The body of /ok/N, which t_fetch.c computes the same way."""
    return bytes((i * 7 + 3) & 255 for i in range(n))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def send_body(self, code, body, ctype="application/octet-stream"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"redirect\n")

    def cut(self):
        """Drop the connection at once, whatever was promised."""
        self.wfile.flush()
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        what, arg = parts[0], parts[1] if len(parts) > 1 else ""
        try:
            self.route(what, arg, url)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def route(self, what, arg, url):
        if what == "ok":
            self.send_body(200, pattern(int(arg)))
        elif what == "status":
            self.send_body(int(arg), b"an error page\n", "text/plain")
        elif what == "redir":
            k = int(arg)
            if k > 0:
                self.redirect("/redir/%d" % (k - 1))
            else:
                self.send_body(200, b"landed\n", "text/plain")
        elif what == "goto":
            self.redirect(urllib.parse.unquote(url.query))
        elif what == "slow-headers":
            time.sleep(int(arg or "20"))
            self.send_body(200, b"late\n")
        elif what == "stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            time.sleep(int(arg or "20"))
            self.cut()
        elif what == "drip":
            n = int(arg)
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for _ in range(n):
                self.wfile.write(b"d")
                self.wfile.flush()
                time.sleep(0.1)
        elif what == "declared-big":
            self.send_response(200)
            self.send_header("Content-Length", str(10 ** 9))
            self.end_headers()
            self.wfile.write(b"y" * 1000)
            self.cut()
        elif what == "endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = b"z" * 65536
            deadline = time.time() + 30
            while time.time() < deadline:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.cut()
        elif what == "cut":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"c" * 500)
            self.cut()
        elif what == "chunked-with-length":
            # both framings: chunked wins (RFC 9112 6.3), the length is moot
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"64\r\n" + b"q" * 100 + b"\r\n0\r\n\r\n")
        elif what == "chunk-cut":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"100\r\n" + b"k" * 256 + b"\r\n")
            self.cut()
        else:
            self.send_body(404, b"no such test path\n", "text/plain")


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.handle_error = lambda request, address: None  # clients that hang up
    if sys.argv[1:] == ["tls"]:
        with tempfile.TemporaryDirectory() as tmp:
            key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                            "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                            "-subj", "/CN=127.0.0.1",
                            "-addext", "subjectAltName=IP:127.0.0.1"],
                           check=True, capture_output=True)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("PORT %d" % srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
