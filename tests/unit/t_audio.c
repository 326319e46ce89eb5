/*
 * Tests of core/audio.c: probing and MP3 encoding of speech made at test
 * time with espeak-ng and sox, checked by decoding with ffprobe and
 * mpg123 (never byte for byte), and the failure paths.
 */
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sndfile.h>
#include "speechfs/audio.h"
#include "speechfs/blob.h"
#include "speechfs/stage.h"
#include "speechfs/store.h"
#include "fixture.h"
#include "testhelp.h"

static char *dir; /* sources, shared by the tests */

struct env {
	char *tmp;
	struct sfs_store *s;
};

/* First line of a command's output into out; 0 on success. */
static int capture(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int capture(char *out, size_t size, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	FILE *p;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	return pclose(p) == 0 ? 0 : -1;
}

static const char *src(const char *name)
{
	static char path[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	return path[i];
}

/* Duration of a source per sox; s.mp3 and s.opus are e.wav encoded. */
static double soxi_duration(const char *path)
{
	char out[128];
	size_t n = strlen(path);

	if ((n > 6 && !strcmp(path + n - 6, "/s.mp3")) ||
	    (n > 7 && !strcmp(path + n - 7, "/s.opus")))
		return soxi_duration(src("e.wav"));

	if (capture(out, sizeof(out), "soxi -D '%s'", path))
		return -100;
	return strtod(out, NULL);
}

static int env_open(struct env *v)
{
	v->tmp = th_tmpdir();
	v->s = NULL;
	if (sfs_store_init(v->tmp, NULL) != SFS_OK)
		return -1;
	return sfs_store_open(v->tmp, NULL, &v->s, NULL) == SFS_OK ? 0 : -1;
}

static void env_close(struct env *v)
{
	if (v->s)
		sfs_store_close(v->s);
	th_rmrf(v->tmp);
}

static void write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, n, f) != n) {
		perror(path);
		exit(2);
	}
	fclose(f);
}

/*
 * Encode `in` into a stage and copy the result to `mp3`. Returns the
 * status; e gets the error.
 */
static enum sfs_status encode_file(struct env *v, const char *in,
				   const char *mp3,
				   const struct sfs_audio_opts *o,
				   int (*progress)(void *), void *arg,
				   struct sfs_err *e)
{
	struct sfs_stage *st = NULL;
	enum sfs_status ret;
	int fd = open(in, O_RDONLY);

	sfs_err_init(e);
	if (fd < 0)
		return SFS_IO;
	ret = sfs_stage_new(v->s, &st, e);
	if (ret != SFS_OK)
		goto out;
	ret = sfs_audio_encode(fd, st, o, NULL, progress, arg, e);
	if (ret != SFS_OK)
		goto out;
	ret = sfs_stage_finish(st, e);
	if (ret != SFS_OK)
		goto out;
	if (mp3 && tfx_run("cp /proc/%d/fd/%d '%s'", (int)getpid(),
			   sfs_stage_fd(st), mp3))
		ret = SFS_IO;
out:
	sfs_stage_free(st);
	close(fd);
	return ret;
}

/* ffprobe's view of an MP3: format, duration, rate, channels. */
struct probe {
	char format[32];
	double duration;
	int rate, channels;
};

static int ffprobe(const char *path, struct probe *p)
{
	char out[512], *line, *save = NULL;

	memset(p, 0, sizeof(*p));
	p->duration = -1;
	if (capture(out, sizeof(out),
		    "ffprobe -v error -show_entries "
		    "format=format_name,duration:stream=sample_rate,channels "
		    "-of default=nw=1 '%s'",
		    path))
		return -1;
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "format_name=", 12))
			snprintf(p->format, sizeof(p->format), "%s", line + 12);
		else if (!strncmp(line, "duration=", 9))
			p->duration = strtod(line + 9, NULL);
		else if (!strncmp(line, "sample_rate=", 12))
			p->rate = (int)strtol(line + 12, NULL, 10);
		else if (!strncmp(line, "channels=", 9))
			p->channels = (int)strtol(line + 9, NULL, 10);
	}
	return 0;
}

/* The TLEN of our ID3 tag, in ms, or -1. */
static long tlen_ms(const char *path)
{
	unsigned char b[64];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		return -1;
	n = fread(b, 1, sizeof(b), f);
	fclose(f);
	if (n < 32 || memcmp(b, "ID3\x04", 4) || memcmp(b + 10, "TLEN", 4))
		return -1;
	b[sizeof(b) - 1] = 0;
	return strtol((char *)b + 21, NULL, 10);
}

/*
 * The flags of the Xing/Info tag in the first frame after the ID3 tag, or
 * -1 without one. LAME's own tag has a TOC (flag 4); the one core/audio.c
 * writes when LAME leaves its tag out has only frames and bytes (3).
 */
static int info_flags(const char *path)
{
	unsigned char b[256];
	FILE *f = fopen(path, "rb");
	size_t n, i, id3;

	if (!f)
		return -1;
	n = fread(b, 1, sizeof(b), f);
	fclose(f);
	if (n < 10 || memcmp(b, "ID3", 3))
		return -1;
	id3 = 10 + ((size_t)b[6] << 21 | (size_t)b[7] << 14 |
		    (size_t)b[8] << 7 | b[9]);
	if (id3 + 4 > n || b[id3] != 0xff)
		return -1;
	for (i = id3 + 4; i + 8 <= n && i < id3 + 40; i++)
		if (!memcmp(b + i, "Info", 4) || !memcmp(b + i, "Xing", 4))
			return b[i + 7];
	return -1;
}

static int last_info_flags;

/*
 * Encode, then check what players would see. ffprobe's duration is the
 * Info frame's frame count times 576 or 1152 samples, so it includes the
 * encoder delay and padding (up to ~2000 samples, more than 0.1 s below
 * 22050 Hz); mpg123 trims them (gapless), so its decoded length must
 * match the source closely, which checks our Info frame's delay and
 * padding.
 */
static void check_encode(const char *name, const struct sfs_audio_opts *o,
			 int want_rate, int want_channels)
{
	struct env v;
	struct sfs_err e;
	struct probe p;
	char mp3[512], wav[512], enc[64];
	double d = soxi_duration(src(name)), tol, dec;
	long ms;

	REQUIRE(env_open(&v) == 0);
	snprintf(mp3, sizeof(mp3), "%s/out.mp3", v.tmp);
	snprintf(wav, sizeof(wav), "%s/dec.wav", v.tmp);
	tol = want_rate >= 22050 ? 0.1 : 2000.0 / want_rate;
	CHECK_ST(encode_file(&v, src(name), mp3, o, NULL, NULL, &e), SFS_OK);
	if (e.status)
		fprintf(stderr, "  %s: %s\n", name, e.message);
	CHECK(ffprobe(mp3, &p) == 0);
	CHECK(!strcmp(p.format, "mp3"));
	CHECK(d > 1);
	CHECK(p.duration >= d && p.duration - d < tol);
	if (p.duration < d || p.duration - d >= tol)
		fprintf(stderr, "  %s: mp3 %.3f s, source %.3f s\n", name,
			p.duration, d);
	CHECK(p.rate == want_rate);
	CHECK(p.channels == want_channels);
	CHECK(tfx_run("mpg123 -q -t '%s' 2>/dev/null", mp3) == 0);
	/* no "more data after announced end", no resync, no error */
	CHECK(tfx_run("mpg123 -t '%s' 2>&1 | grep -q -i -E "
		      "'warning|error|frankenstein|skipped'",
		      mp3) == 1);
	CHECK(tfx_run("mpg123 -q -w '%s' '%s' 2>/dev/null", wav, mp3) == 0);
	dec = soxi_duration(wav);
	CHECK(fabs(dec - d) < 0.01);
	if (fabs(dec - d) >= 0.01)
		fprintf(stderr, "  %s: decoded %.4f s, source %.4f s\n", name,
			dec, d);
	/* ffmpeg names the encoder only if the LAME tag CRC is right */
	CHECK(capture(enc, sizeof(enc),
		      "ffprobe -v error -show_entries "
		      "stream_tags=encoder -of default=nw=1:nk=1 '%s'",
		      mp3) == 0);
	CHECK(!strcmp(enc, "LAME3.100\n"));
	last_info_flags = info_flags(mp3);
	CHECK(last_info_flags == 3 || last_info_flags == 15);
	ms = tlen_ms(mp3);
	CHECK(labs(ms - lround(d * 1000)) <= 1);
	env_close(&v);
}

static void test_encode_wav_16k_mono(void)
{
	check_encode("w16.wav", NULL, 22050, 1);
}

static void test_encode_wav_44k_stereo(void)
{
	struct sfs_audio_opts o;

	check_encode("w44s.wav", NULL, 22050, 1); /* mixed down */
	sfs_audio_opts_init(&o);
	o.channels = 2;
	o.sample_rate = 44100;
	o.bitrate_kbps = 96;
	check_encode("w44s.wav", &o, 44100, 2);
	CHECK(last_info_flags == 15); /* LAME's tag fits */
}

static void test_encode_flac(void)
{
	struct sfs_audio_opts o;

	check_encode("s.flac", NULL, 22050, 1);
	CHECK(last_info_flags == 3); /* 156-byte frames: ours */
	/* channels is an upper bound: mono stays mono */
	sfs_audio_opts_init(&o);
	o.channels = 2;
	check_encode("s.flac", &o, 22050, 1);
}

static void test_encode_ogg(void)
{
	check_encode("s.ogg", NULL, 22050, 1);
}

static void test_encode_mp3(void)
{
	check_encode("s.mp3", NULL, 22050, 1);
}

static void test_encode_opus_caf(void)
{
	check_encode("s.opus", NULL, 22050, 1);
	check_encode("s.caf", NULL, 22050, 1);
}

/* 16 kHz mono 32 kbps: LAME leaves its tag out; ours must be there. */
static void test_encode_small_frames(void)
{
	struct sfs_audio_opts o;

	sfs_audio_opts_init(&o);
	o.sample_rate = 16000;
	o.bitrate_kbps = 32;
	check_encode("w16.wav", &o, 16000, 1);
	CHECK(last_info_flags == 3);
	o.sample_rate = 8000;
	o.bitrate_kbps = 8;
	check_encode("w16.wav", &o, 8000, 1);
	CHECK(last_info_flags == 3);
}

static void test_encode_vbr(void)
{
	struct sfs_audio_opts o;

	sfs_audio_opts_init(&o);
	o.vbr = 1;
	check_encode("w44s.wav", &o, 22050, 1);
	CHECK(last_info_flags == 15);
}

static void test_probe(void)
{
	static const struct {
		const char *name, *mime;
	} tab[] = {
		{ "w16.wav", "audio/wav" }, { "w44s.wav", "audio/wav" },
		{ "s.flac", "audio/flac" }, { "s.ogg", "audio/ogg" },
		{ "s.aiff", "audio/aiff" }, { "s.mp3", "audio/mpeg" },
		{ "s.opus", "audio/ogg" },  { "s.caf", "audio/x-caf" },
	};
	char mime[64];
	double d;
	size_t i;

	for (i = 0; i < sizeof(tab) / sizeof(tab[0]); i++) {
		int fd = open(src(tab[i].name), O_RDONLY);

		REQUIRE(fd >= 0);
		/* the fd's offset must not matter */
		CHECK(lseek(fd, 0, SEEK_END) > 0);
		CHECK_ST(sfs_audio_probe(fd, &d, mime, sizeof(mime), NULL),
			 SFS_OK);
		CHECK(!strcmp(mime, tab[i].mime));
		/* mp3 frames are 1152 samples; others exact */
		CHECK(fabs(d - soxi_duration(src(tab[i].name))) < 0.06);
		if (strcmp(mime, tab[i].mime) ||
		    fabs(d - soxi_duration(src(tab[i].name))) >= 0.06)
			fprintf(stderr, "  %s: %s %.3f\n", tab[i].name, mime,
				d);
		close(fd);
	}
}

/* Files that are not audio, or not intact, by their magic numbers. */
#define MAGIC(name, lit, mime)                                                 \
	{                                                                      \
		name, lit, sizeof(lit) - 1, mime                               \
	}
static const struct {
	const char *name, *data;
	size_t len;
	const char *mime;
} magic[] = {
	MAGIC("t.txt", "hello, this is not audio\n",
	      "application/octet-stream"),
	MAGIC("t.pdf", "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
	      "application/pdf"),
	MAGIC("t.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
	MAGIC("t.jpg", "\xff\xd8\xff\xe0\0\x10JFIF\0", "image/jpeg"),
	MAGIC("t.m4a",
	      "\0\0\0\x20"
	      "ftypM4A \0\0\0\0",
	      "audio/mp4"),
	MAGIC("t.wav", "RIFF\x24\x10\0\0WAVEfmt ", "audio/wav"),
	MAGIC("t.empty", "", "application/octet-stream"),
};

static void test_probe_magic(void)
{
	char mime[64];
	double d;
	size_t i;

	for (i = 0; i < sizeof(magic) / sizeof(magic[0]); i++) {
		int fd = open(src(magic[i].name), O_RDONLY);

		REQUIRE(fd >= 0);
		d = 0;
		CHECK_ST(sfs_audio_probe(fd, &d, mime, sizeof(mime), NULL),
			 SFS_OK);
		CHECK(!strcmp(mime, magic[i].mime));
		CHECK(d == -1);
		close(fd);
	}
	/* a small buffer is truncated, not overrun */
	{
		int fd = open(src("s.flac"), O_RDONLY);

		REQUIRE(fd >= 0);
		memset(mime, 'x', sizeof(mime));
		CHECK_ST(sfs_audio_probe(fd, NULL, mime, 6, NULL), SFS_OK);
		CHECK(!strcmp(mime, "audio"));
		CHECK(mime[6] == 'x');
		close(fd);
	}
}

/*
 * Every format libsndfile writes (with the first encoding it takes for
 * 16 kHz mono) is still probed by libsndfile: core hands it only what
 * starts like one of its formats, to spare the resource-fork look-ups
 * of a content it does not know. The duration is libsndfile's own.
 */
static void test_probe_every_format_libsndfile_writes(void)
{
	char path[512];
	short pcm[1600];
	int i, j, nmajor = 0, nsub = 0, tried = 0;

	for (i = 0; i < 1600; i++)
		pcm[i] = (short)(8000 * sin(i * 0.2));
	sf_command(NULL, SFC_GET_FORMAT_MAJOR_COUNT, &nmajor, sizeof(int));
	sf_command(NULL, SFC_GET_FORMAT_SUBTYPE_COUNT, &nsub, sizeof(int));
	for (i = 0; i < nmajor; i++) {
		SF_FORMAT_INFO maj = { .format = i };
		SF_INFO info = { .samplerate = 16000, .channels = 1 };
		SNDFILE *sf = NULL;
		char mime[64];
		double d, want;
		int fd;

		sf_command(NULL, SFC_GET_FORMAT_MAJOR, &maj, sizeof(maj));
		for (j = 0; j < nsub && !sf; j++) {
			SF_FORMAT_INFO sub = { .format = j };

			sf_command(NULL, SFC_GET_FORMAT_SUBTYPE, &sub,
				   sizeof(sub));
			info.format = maj.format | sub.format;
			if (!sf_format_check(&info))
				continue;
			snprintf(path, sizeof(path), "%s/every.%s", dir,
				 maj.extension);
			sf = sf_open(path, SFM_WRITE, &info);
		}
		if (!sf)
			continue;
		for (j = 0; j < 5; j++)
			sf_write_short(sf, pcm, 1600);
		sf_close(sf);
		/* what libsndfile reads from a descriptor (no path: an SD2's
		 * resource fork beside it is not found, with or without) */
		fd = open(path, O_RDONLY);
		REQUIRE(fd >= 0);
		memset(&info, 0, sizeof(info));
		sf = sf_open_fd(fd, SFM_READ, &info, 1); /* closes fd */
		want = sf && info.frames >= 0 && info.frames != SF_COUNT_MAX
			       ? (double)info.frames / info.samplerate
			       : -1;
		if (sf)
			sf_close(sf);
		tried += want >= 0;
		fd = open(path, O_RDONLY);
		REQUIRE(fd >= 0);
		d = 0;
		CHECK_ST(sfs_audio_probe(fd, &d, mime, sizeof(mime), NULL),
			 SFS_OK);
		CHECK(fabs(d - want) < 1e-9);
		if (fabs(d - want) >= 1e-9)
			fprintf(stderr, "  %s (%s): %.3f, libsndfile %.3f\n",
				maj.name, maj.extension, d, want);
		close(fd);
		unlink(path);
	}
	/* WAV, AIFF, AU, FLAC, OGG, CAF, W64, RF64, MPEG ... at least */
	CHECK(tried >= 20);
}

static void test_probe_read_error(void)
{
	struct sfs_err e;
	char mime[64] = "unchanged";
	double d = 7;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	REQUIRE(fd >= 0);
	sfs_err_init(&e);
	CHECK_ST(sfs_audio_probe(fd, &d, mime, sizeof(mime), &e), SFS_IO);
	CHECK(e.message[0] != '\0');
	CHECK(d == 7);
	CHECK(!strcmp(mime, "unchanged"));
	close(fd);
}

static void test_encode_not_audio(void)
{
	struct env v;
	struct sfs_err e;
	static const char *names[] = { "t.txt", "t.pdf", "t.empty", "t.m4a" };
	size_t i;

	REQUIRE(env_open(&v) == 0);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CHECK_ST(encode_file(&v, src(names[i]), NULL, NULL, NULL, NULL,
				     &e),
			 SFS_UNSUPPORTED);
		CHECK(!strcmp(e.message,
			      "unsupported or unrecognised audio format"));
	}
	env_close(&v);
}

static void test_encode_corrupt(void)
{
	struct env v;
	struct sfs_err e;

	REQUIRE(env_open(&v) == 0);
	/* a WAV cut inside its header */
	CHECK_ST(encode_file(&v, src("t.wav"), NULL, NULL, NULL, NULL, &e),
		 SFS_INVALID);
	CHECK(!strncmp(e.message, "corrupt audio data: ", 20));
	/* a FLAC whose frames were overwritten with garbage */
	CHECK_ST(encode_file(&v, src("bad.flac"), NULL, NULL, NULL, NULL, &e),
		 SFS_INVALID);
	CHECK(!strncmp(e.message, "corrupt audio data: ", 20));
	/* an MP3 with garbage in the middle */
	CHECK_ST(encode_file(&v, src("bad.mp3"), NULL, NULL, NULL, NULL, &e),
		 SFS_INVALID);
	CHECK(!strncmp(e.message, "corrupt audio data: ", 20));
	/* a RIFF/WAVE header followed by garbage */
	CHECK_ST(encode_file(&v, src("bad.wav"), NULL, NULL, NULL, NULL, &e),
		 SFS_INVALID);
	CHECK(!strncmp(e.message, "corrupt audio data: ", 20));
	env_close(&v);
}

/* A WAV cut short (its header claims more) gives what is there. */
static void test_encode_truncated_wav(void)
{
	struct env v;
	struct sfs_err e;
	struct probe p;
	char mp3[512];
	double d = -1;
	int fd = open(src("cut.wav"), O_RDONLY);

	REQUIRE(fd >= 0);
	CHECK_ST(sfs_audio_probe(fd, &d, NULL, 0, NULL), SFS_OK);
	close(fd);
	/* 100000 bytes of 16-bit mono 16 kHz data */
	CHECK(fabs(d - 3.125) < 0.001);
	REQUIRE(env_open(&v) == 0);
	snprintf(mp3, sizeof(mp3), "%s/out.mp3", v.tmp);
	CHECK_ST(encode_file(&v, src("cut.wav"), mp3, NULL, NULL, NULL, &e),
		 SFS_OK);
	CHECK(ffprobe(mp3, &p) == 0);
	CHECK(p.duration >= 3.125 && p.duration < 3.125 + 0.1);
	CHECK(tlen_ms(mp3) == 3125);
	CHECK(tfx_run("mpg123 -q -t '%s' 2>/dev/null", mp3) == 0);
	env_close(&v);
}

/* No samples at all: a valid MP3 of (next to) no duration. */
static void test_encode_empty(void)
{
	struct env v;
	struct sfs_err e;
	struct probe p;
	char mp3[512];

	REQUIRE(env_open(&v) == 0);
	snprintf(mp3, sizeof(mp3), "%s/out.mp3", v.tmp);
	CHECK_ST(encode_file(&v, src("z.wav"), mp3, NULL, NULL, NULL, &e),
		 SFS_OK);
	CHECK(ffprobe(mp3, &p) == 0);
	CHECK(!strcmp(p.format, "mp3"));
	CHECK(p.duration >= 0 && p.duration < 0.1);
	CHECK(tlen_ms(mp3) == 0);
	CHECK(tfx_run("mpg123 -q -t '%s' 2>/dev/null", mp3) == 0);
	env_close(&v);
}

static void test_encode_bad_opts(void)
{
	struct env v;
	struct sfs_err e;
	struct sfs_audio_opts o;

	REQUIRE(env_open(&v) == 0);
	sfs_audio_opts_init(&o);
	o.bitrate_kbps = 1000;
	CHECK_ST(encode_file(&v, src("w16.wav"), NULL, &o, NULL, NULL, &e),
		 SFS_INVALID);
	sfs_audio_opts_init(&o);
	o.channels = 3;
	CHECK_ST(encode_file(&v, src("w16.wav"), NULL, &o, NULL, NULL, &e),
		 SFS_INVALID);
	sfs_audio_opts_init(&o);
	o.sample_rate = 96000;
	CHECK_ST(encode_file(&v, src("w16.wav"), NULL, &o, NULL, NULL, &e),
		 SFS_INVALID);
	env_close(&v);
}

static int count_progress(void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int cancel_progress(void *arg)
{
	(*(int *)arg)++;
	return 1;
}

static void test_encode_progress_cancel(void)
{
	struct env v;
	struct sfs_err e;
	int calls = 0;

	REQUIRE(env_open(&v) == 0);
	CHECK_ST(encode_file(&v, src("w16.wav"), NULL, NULL, count_progress,
			     &calls, &e),
		 SFS_OK);
	CHECK(calls >= 1);
	calls = 0;
	CHECK_ST(encode_file(&v, src("w16.wav"), NULL, NULL, cancel_progress,
			     &calls, &e),
		 SFS_CONFLICT);
	CHECK(calls == 1);
	CHECK(!strcmp(e.message, "cancelled"));
	env_close(&v);
}

/* The stage's limits come through (the way a full disk does). */
static void test_encode_stage_limit(void)
{
	struct env v;
	struct sfs_err e;
	struct sfs_stage *st = NULL;
	int fd = open(src("w44s.wav"), O_RDONLY);

	REQUIRE(fd >= 0);
	REQUIRE(env_open(&v) == 0);
	sfs_err_init(&e);
	REQUIRE_ST(sfs_stage_new(v.s, &st, &e), SFS_OK);
	sfs_stage_set_limit(st, 2000);
	CHECK_ST(sfs_audio_encode(fd, st, NULL, NULL, NULL, NULL, &e),
		 SFS_TOO_LARGE);
	sfs_stage_free(st);
	close(fd);
	env_close(&v);
}

/* Encode a source with peaks; 0 on success. */
static int encode_peaks(const char *name, int channels, struct sfs_peaks *p)
{
	struct sfs_audio_opts o;
	struct sfs_stage *st = NULL;
	struct sfs_err e;
	struct env v;
	int fd = open(src(name), O_RDONLY), rc = -1;

	sfs_err_init(&e);
	if (fd < 0 || env_open(&v))
		goto out;
	sfs_audio_opts_init(&o);
	o.channels = channels;
	if (sfs_stage_new(v.s, &st, &e) == SFS_OK &&
	    sfs_audio_encode(fd, st, &o, p, NULL, NULL, &e) == SFS_OK)
		rc = 0;
	else
		fprintf(stderr, "encode %s: %s\n", name, e.message);
	sfs_stage_free(st);
	env_close(&v);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Every peak of v[from, to) within want +- tol. */
static int peaks_near(const struct sfs_peaks *p, size_t from, size_t to,
		      int want, int tol)
{
	size_t i;

	for (i = from; i < to; i++)
		if (abs((int)p->v[i] - want) > tol) {
			fprintf(stderr, "peak %zu is %d, want %d\n", i, p->v[i],
				want);
			return 0;
		}
	return 1;
}

static void test_peaks_of_a_recording(void)
{
	struct sfs_peaks *p = malloc(sizeof(*p));

	REQUIRE(p);
	REQUIRE(encode_peaks("pk.wav", 1, p) == 0);
	CHECK(p->sample_rate == 16000);
	CHECK(p->frames == 48000);
	CHECK(p->frames_per_peak == 160); /* 10 ms */
	CHECK(p->n == 300);
	/* the slices at the joins may hold a little of both sides */
	CHECK(peaks_near(p, 1, 99, 127, 3));
	CHECK(peaks_near(p, 101, 199, 0, 0));
	CHECK(peaks_near(p, 201, 299, 64, 3));
	free(p);
}

static void test_peaks_stereo(void)
{
	struct sfs_peaks *p = malloc(sizeof(*p));

	REQUIRE(p);
	/* a stereo MP3 keeps the loud channel's peaks */
	REQUIRE(encode_peaks("st.wav", 2, p) == 0);
	CHECK(p->n == 100);
	CHECK(peaks_near(p, 1, 99, 204, 3));
	/* a mono one is drawn from the mix that is encoded */
	REQUIRE(encode_peaks("st.wav", 1, p) == 0);
	CHECK(peaks_near(p, 1, 99, 102, 3));
	/* none without audio */
	REQUIRE(encode_peaks("z.wav", 1, p) == 0);
	CHECK(p->n == 0 && p->frames == 0);
	free(p);
}

/* A long recording: slices double, the count stays within the cap. */
static void test_peaks_merge(void)
{
	struct sfs_peaks *p = malloc(sizeof(*p));
	float *buf = calloc(1000, sizeof(float));
	int64_t i, spike = 3 * 3600 * 1000 + 12345; /* 3 h in, at 1 kHz */

	REQUIRE(p && buf);
	sfs_peaks_init(p, 1000);
	CHECK(p->frames_per_peak == 10);
	/* exactly SFS_PEAKS_MAX slices: no merge */
	for (i = 0; i < SFS_PEAKS_MAX * 10 / 1000; i++)
		sfs_peaks_add(p, buf, NULL, 1000);
	sfs_peaks_finish(p);
	CHECK(p->n == SFS_PEAKS_MAX && p->frames_per_peak == 10);
	/* one frame more: the slices merge and the partial one counts */
	sfs_peaks_init(p, 1000);
	for (i = 0; i < SFS_PEAKS_MAX * 10 / 1000; i++)
		sfs_peaks_add(p, buf, NULL, 1000);
	sfs_peaks_add(p, buf, NULL, 1);
	sfs_peaks_finish(p);
	CHECK(p->n == SFS_PEAKS_MAX / 2 + 1 && p->frames_per_peak == 20);
	/* four hours at 1 kHz, silent but for one sample */
	sfs_peaks_init(p, 1000);
	for (i = 0; i < 4 * 3600; i++) {
		if (i == spike / 1000)
			buf[spike % 1000] = -0.75f;
		sfs_peaks_add(p, buf, NULL, 1000);
		buf[spike % 1000] = 0;
	}
	sfs_peaks_finish(p);
	CHECK(p->frames == (int64_t)4 * 3600 * 1000);
	CHECK(p->n <= SFS_PEAKS_MAX && p->n > SFS_PEAKS_MAX / 2);
	CHECK((int64_t)p->n * p->frames_per_peak >= p->frames);
	CHECK((int64_t)(p->n - 1) * p->frames_per_peak < p->frames);
	for (i = 0; i < (int64_t)p->n; i++)
		if (i == spike / p->frames_per_peak)
			CHECK(p->v[i] == 191);
		else if (p->v[i] != 0)
			break;
	CHECK(i == (int64_t)p->n);
	free(buf);
	free(p);
}

static int make_sources(void)
{
	const char *text = "This is a speech recording for the speech file "
			   "store. It is encoded into a listening file, "
			   "which players can seek.";

	char path[512];
	size_t i;

	dir = th_tmpdir();
	for (i = 0; i < sizeof(magic) / sizeof(magic[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, magic[i].name);
		write_file(path, magic[i].data, magic[i].len);
	}
	if (tfx_run("cd '%s' && espeak-ng -w e.wav '%s' && "
		    "sox e.wav -r 16000 w16.wav && "
		    "sox e.wav -r 44100 -c 2 w44s.wav && "
		    "sox e.wav s.flac && sox e.wav s.ogg && sox e.wav s.aiff "
		    "&& "
		    "sox e.wav s.caf && lame --quiet -b 64 e.wav s.mp3 && "
		    "ffmpeg -v error -i e.wav -c:a libopus s.opus",
		    dir, text))
		return -1;
	/*
	 * garbage over the middle of a FLAC's and an MP3's frames, after a
	 * RIFF/WAVE header, and a WAV cut in the middle of its data
	 */
	if (tfx_run("cd '%s' && cp s.flac bad.flac && cp s.mp3 bad.mp3 && "
		    "head -c 20000 /dev/zero | tr '\\0' A | "
		    "dd of=bad.flac bs=1 seek=20000 conv=notrunc status=none "
		    "&& "
		    "head -c 5000 /dev/zero | tr '\\0' A | "
		    "dd of=bad.mp3 bs=1 seek=8000 "
		    "conv=notrunc status=none && "
		    "(printf 'RIFF\\044\\200\\0\\0WAVE' && "
		    "head -c 5000 /dev/urandom) > bad.wav && "
		    "head -c 100044 w16.wav > cut.wav && "
		    "sox -n -r 16000 -c 1 -b 16 z.wav trim 0 0",
		    dir))
		return -1;
	/*
	 * for the peaks: 1 s of a tone at half scale, 1 s of silence, 1 s
	 * at a quarter; and a stereo tone, loud on the left, silent right
	 */
	if (tfx_run("cd '%s' && "
		    "sox -n -r 16000 -c 1 -b 16 t1.wav synth 1 sine 440 "
		    "vol 0.5 && "
		    "sox -n -r 16000 -c 1 -b 16 t0.wav trim 0 1 && "
		    "sox -n -r 16000 -c 1 -b 16 t2.wav synth 1 sine 440 "
		    "vol 0.25 && sox t1.wav t0.wav t2.wav pk.wav && "
		    "sox -n -r 16000 -c 1 -b 16 l.wav synth 1 sine 300 "
		    "vol 0.8 && sox -M l.wav t0.wav st.wav",
		    dir))
		return -1;
	return 0;
}

int main(void)
{
	if (make_sources()) {
		fprintf(stderr, "cannot make test audio (espeak-ng, sox)\n");
		return 2;
	}
	RUN(test_probe);
	RUN(test_probe_magic);
	RUN(test_probe_every_format_libsndfile_writes);
	RUN(test_probe_read_error);
	RUN(test_encode_wav_16k_mono);
	RUN(test_encode_wav_44k_stereo);
	RUN(test_encode_flac);
	RUN(test_encode_ogg);
	RUN(test_encode_mp3);
	RUN(test_encode_opus_caf);
	RUN(test_encode_small_frames);
	RUN(test_encode_vbr);
	RUN(test_encode_not_audio);
	RUN(test_encode_corrupt);
	RUN(test_encode_truncated_wav);
	RUN(test_encode_empty);
	RUN(test_encode_bad_opts);
	RUN(test_encode_progress_cancel);
	RUN(test_encode_stage_limit);
	RUN(test_peaks_of_a_recording);
	RUN(test_peaks_stereo);
	RUN(test_peaks_merge);
	th_rmrf(dir);
	return th_report();
}
