"""Resumable uploads on a store whose blobs are in an S3 bucket (the run's
Ceph RADOS Gateway: conftest's `blobs`). The tests of test_api_uploads.py
whose subject the blob store changes run here again on s3: a session's
file committed into a blob (which S3 sends whole at the commit: a session
is not streamed to the bucket while received), a refused commit, a
restart's recovery, two daemons on one store directory. One test more
looks at the bucket itself. (The others are about the session files
under STORE/staging/.uploads/, the same on any blob store;
test_a_resume_after_a_drop_reads_nothing_again cannot hold on s3: the
commit reads the file to send it.)"""
import hashlib
import os

from conftest import start
from test_api_uploads import (  # noqa: F401 (the fixture and the tests)
    MIB, Stream, assert_committed, durable_above, new_session, put, sfsd,
    test_a_dropped_connection_keeps_what_came_and_resumes,
    test_a_killed_daemon_keeps_its_sessions_at_their_last_sync,
    test_a_put_into_a_session_commits_as_a_put_of_the_content,
    test_a_refused_commit_ends_the_session,
    test_a_resume_hashes_again_what_another_process_rewrote,
    test_another_process_leaves_a_live_session_alone)

BLOB_BACKENDS = ["s3"]
CONFIG = {"http.max_upload_bytes": str(64 * MIB)}


def test_a_sessions_content_is_one_object_in_the_bucket(tmp_path_factory,
                                                         blobs):
    """Content committed through a session, resumed once, is one object
    of its size named by its sha256 under the store's prefix, with no
    multipart upload left and nothing under incoming/; the same bytes
    through a session of another file are the same object (dedupe); the
    session files are gone."""
    d, c = start(tmp_path_factory, CONFIG, blobs=blobs)
    prefix = blobs.prefix  # this store's (each start() makes its own)
    s3 = blobs.gateway.client()
    try:
        data = os.urandom(12 * MIB + 5)
        sha = hashlib.sha256(data).hexdigest()
        f = c.new_file(data=b"old")
        uid = new_session(c, f["id"])
        s = Stream(c, f["id"], uid, 0, len(data))
        s.send(data[:5 * MIB])
        s.close()
        durable_above(c, f["id"], uid, 5 * MIB - 1)
        assert_committed(c, f["id"], put(c, f["id"], uid, 5 * MIB,
                                         data[5 * MIB:]), data)
        g = c.new_file(data=b"other")
        assert_committed(c, g["id"], put(c, g["id"],
                                         new_session(c, g["id"]), 0, data),
                         data)
        objs = s3.list(blobs.bucket, prefix)
        named = {k: n for k, n in objs.items() if k.endswith(sha)}
        assert list(named.values()) == [len(data)], objs
        assert [k for k, _ in s3.uploads(blobs.bucket)
                if k.startswith(prefix)] == []
        assert s3.list(blobs.bucket, prefix + "incoming/") == {}
        up = c.store / "staging" / ".uploads"
        assert sorted(p.name for p in up.iterdir()) == [".node"]
    finally:
        s3.close()
        c.http.close()
        d.stop()
