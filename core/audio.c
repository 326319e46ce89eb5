/*
 * Probing recordings and encoding listening MP3s: libsndfile reads the
 * source block by block through pread-based virtual I/O, LAME resamples
 * and encodes, and the stage receives the MP3. The only file that
 * includes lame.h and sndfile.h.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lame/lame.h>
#include <sndfile.h>
#include "audio_i.h"
#include "speechfs/audio.h"
#include "speechfs/blob.h"
#include "speechfs/log.h"
#include "speechfs/stage.h"
#include "util_i.h"

#define BLOCK_FRAMES 4096 /* frames decoded per step */
#define SNIFF_BYTES 64
#define ID3_SIZE 32    /* our tag: header, TLEN, padding */
#define MAX_FRAME 2880 /* largest MP3 frame */
#define INFO_BYTES 52  /* Info (no TOC) + LAME extension */
#define PROGRESS_NS 1000000000LL
#define UNSUPPORTED_MSG "unsupported or unrecognised audio format"

/* lame_init and lame_init_params fill static tables on first use. */
static pthread_mutex_t lame_lock = PTHREAD_MUTEX_INITIALIZER;

void sfs_audio_opts_init(struct sfs_audio_opts *o)
{
	o->bitrate_kbps = 48;
	o->sample_rate = 22050;
	o->channels = 1;
	o->vbr = 0;
}

/*
 * libsndfile's virtual I/O over an fd: our own position and pread, so the
 * fd's offset is neither used nor changed and the fd may be shared.
 */
struct vio {
	int fd;
	sf_count_t pos;
	int err; /* errno of the first failed read */
};

static sf_count_t vio_len(void *u)
{
	struct vio *v = u;
	struct stat sb;

	if (fstat(v->fd, &sb) < 0) {
		v->err = errno;
		return -1;
	}
	return sb.st_size;
}

static sf_count_t vio_seek(sf_count_t off, int whence, void *u)
{
	struct vio *v = u;
	sf_count_t base = 0;

	if (whence == SEEK_CUR)
		base = v->pos;
	else if (whence == SEEK_END)
		base = vio_len(v);
	if (base < 0 || base + off < 0)
		return -1;
	v->pos = base + off;
	return v->pos;
}

static sf_count_t vio_read(void *p, sf_count_t n, void *u)
{
	struct vio *v = u;
	sf_count_t got = 0;

	while (got < n) {
		ssize_t r = pread(v->fd, (char *)p + got, (size_t)(n - got),
				  v->pos);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			if (!v->err)
				v->err = errno;
			break;
		}
		if (r == 0)
			break;
		got += r;
		v->pos += r;
	}
	return got;
}

static sf_count_t vio_write(const void *p, sf_count_t n, void *u)
{
	(void)p;
	(void)n;
	(void)u;
	return 0;
}

static sf_count_t vio_tell(void *u)
{
	return ((struct vio *)u)->pos;
}

static SF_VIRTUAL_IO vio_ops = {
	.get_filelen = vio_len,
	.seek = vio_seek,
	.read = vio_read,
	.write = vio_write,
	.tell = vio_tell,
};

static const struct {
	int major;
	const char *mime;
} sf_mime_tab[] = {
	{ SF_FORMAT_WAV, "audio/wav" },
	{ SF_FORMAT_WAVEX, "audio/wav" },
	{ SF_FORMAT_RF64, "audio/wav" },
	{ SF_FORMAT_W64, "audio/x-w64" },
	{ SF_FORMAT_FLAC, "audio/flac" },
	{ SF_FORMAT_OGG, "audio/ogg" },
	{ SF_FORMAT_AIFF, "audio/aiff" },
	{ SF_FORMAT_CAF, "audio/x-caf" },
	{ SF_FORMAT_MPEG, "audio/mpeg" },
	{ SF_FORMAT_AU, "audio/basic" },
	{ SF_FORMAT_VOC, "audio/x-voc" },
	{ SF_FORMAT_NIST, "audio/x-nist" },
	{ SF_FORMAT_SVX, "audio/x-8svx" },
	{ SF_FORMAT_IRCAM, "audio/x-ircam" },
	{ SF_FORMAT_PAF, "audio/x-paris" },
	{ SF_FORMAT_SD2, "audio/x-sd2" },
	{ SF_FORMAT_AVR, "audio/x-avr" },
	{ SF_FORMAT_HTK, "audio/x-htk" },
};

static const char *sf_mime(int format)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sf_mime_tab); i++)
		if (sf_mime_tab[i].major == (format & SF_FORMAT_TYPEMASK))
			return sf_mime_tab[i].mime;
	return "application/octet-stream";
}

/* An MPEG audio frame header (sync, a layer, a valid bitrate and rate). */
static int is_mpeg_sync(const unsigned char *b)
{
	return b[0] == 0xff && (b[1] & 0xe0) == 0xe0 &&
	       ((b[1] >> 3) & 3) != 1 && ((b[1] >> 1) & 3) != 0 &&
	       (b[2] >> 4) != 15 && ((b[2] >> 2) & 3) != 3;
}

/*
 * The MIME type from magic numbers, for what libsndfile cannot open.
 * *damaged says the magic is of a format libsndfile reads in full, so a
 * failure to open it means the file is corrupt rather than unsupported.
 */
static const char *sniff(const unsigned char *b, size_t n, int *damaged)
{
	*damaged = 0;
	if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WAVE", 4)) {
		*damaged = 1;
		return "audio/wav";
	}
	if (n >= 4 && !memcmp(b, "fLaC", 4)) {
		*damaged = 1;
		return "audio/flac";
	}
	if (n >= 12 && !memcmp(b, "FORM", 4) &&
	    (!memcmp(b + 8, "AIFF", 4) || !memcmp(b + 8, "AIFC", 4))) {
		*damaged = 1;
		return "audio/aiff";
	}
	if (n >= 4 && !memcmp(b, "caff", 4)) {
		*damaged = 1;
		return "audio/x-caf";
	}
	if (n >= 4 && !memcmp(b, "OggS", 4))
		return "audio/ogg";
	if (n >= 3 && !memcmp(b, "ID3", 3))
		return "audio/mpeg";
	if (n >= 4 && is_mpeg_sync(b))
		return "audio/mpeg";
	if (n >= 12 && !memcmp(b + 4, "ftyp", 4))
		return "audio/mp4";
	if (n >= 4 && !memcmp(b, "\x1a\x45\xdf\xa3", 4))
		return "audio/webm";
	if (n >= 6 && !memcmp(b, "#!AMR", 5))
		return "audio/amr";
	if (n >= 5 && !memcmp(b, "%PDF-", 5))
		return "application/pdf";
	if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
		return "image/png";
	if (n >= 3 && !memcmp(b, "\xff\xd8\xff", 3))
		return "image/jpeg";
	return "application/octet-stream";
}

/*
 * Whether libsndfile could take a content of len bytes starting with b
 * (n bytes) for one of the formats it reads: the magic numbers of its
 * guess_file_type (1.2), MPEG audio, and an ID3 tag (which it skips).
 * A content it does not know costs more than a failed open: before it
 * gives up, libsndfile looks for a Mac resource fork by path, even
 * under virtual I/O (its path is then empty): "/..namedfork/rsrc",
 * "._" and ".AppleDouble/", three failed openat(2) per probe of every
 * non-audio file a mount commits. What none of these starts is not
 * handed to libsndfile (t_audio checks every format it writes).
 */
static int sf_may_read(const unsigned char *b, size_t n, int64_t len)
{
	static const char *const first4[] = {
		"RIFF", "RIFX", "RF64", "FORM", ".snd", "dns.", "fap ", " paf",
		"NIST", "Crea", "riff", "MATL", "PVF1", "Exte", "caff", "OggS",
		"ALaw", "Diam", "LM89", "CAT ", "fLaC", "2BIT",
	};
	uint32_t words;
	size_t i;

	if (n < 4)
		return 0;
	for (i = 0; i < ARRAY_SIZE(first4); i++)
		if (!memcmp(b, first4[i], 4))
			return 1;
	if (!memcmp(b, "ID3", 3) || is_mpeg_sync(b))
		return 1;
	if (!memcmp(b, "53\0\0", 4)) /* TXW */
		return 1;
	if ((b[0] == 0x64 && b[1] == 0xa3 && !(b[2] & 0xf8) && !b[3]) ||
	    (!b[0] && !(b[1] & 0xf8) && b[2] == 0xa3 && b[3] == 0x64))
		return 1; /* IRCAM */
	if (b[0] == 0xf0 && b[1] == 0x7e && !(b[2] & 0x80) && b[3] == 0x01)
		return 1;	    /* SDS */
	if (b[0] == 1 && b[1] == 4) /* MPC 2000 */
		return 1;
	if (n < 12)
		return 0;
	if (!memcmp(b, "\0\0\x03\xe8\0\0\0\x01\0\0\0\x01", 12) ||
	    !memcmp(b, "\0\0\0\0\x01\0\0\0\x01\0\0\0", 12))
		return 1; /* MAT4 */
	/* HTK: no magic, a sample count that gives the length */
	words = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
		(uint32_t)b[2] << 8 | b[3];
	return 2 * (int64_t)words + 12 == len && !memcmp(b + 8, "\0\2\0\0", 4);
}

/* Read the first bytes of fd; SFS_IO on a read error. */
static enum sfs_status read_head(int fd, unsigned char *b, size_t size,
				 size_t *n, struct sfs_err *e)
{
	struct vio v = { .fd = fd };

	*n = (size_t)vio_read(b, (sf_count_t)size, &v);
	if (v.err)
		return sfsi_errno_status(e, v.err, "cannot read audio");
	return SFS_OK;
}

enum sfs_status sfs_audio_probe(int fd, double *duration, char *mime,
				size_t mime_size, struct sfs_err *e)
{
	struct vio v = { .fd = fd };
	unsigned char head[SNIFF_BYTES];
	const char *type = "application/octet-stream";
	double d = -1;
	SF_INFO info;
	SNDFILE *sf = NULL;
	size_t n;
	int damaged;
	enum sfs_status st = SFS_OK;

	memset(&info, 0, sizeof(info));
	st = read_head(fd, head, sizeof(head), &n, e);
	if (st != SFS_OK)
		goto out;
	sf = sf_may_read(head, n, vio_len(&v))
		     ? sf_open_virtual(&vio_ops, SFM_READ, &info, &v)
		     : NULL;
	if (v.err) {
		st = sfsi_errno_status(e, v.err, "cannot read audio");
		goto out;
	}
	if (sf) {
		type = sf_mime(info.format);
		if (info.samplerate > 0 && info.frames >= 0 &&
		    info.frames != SF_COUNT_MAX)
			d = (double)info.frames / info.samplerate;
		goto out;
	}
	type = sniff(head, n, &damaged);
out:
	if (sf)
		sf_close(sf);
	if (st == SFS_OK) {
		if (duration)
			*duration = d;
		if (mime && mime_size)
			sfs_strlcpy(mime, type, mime_size);
	}
	return st;
}

/* --- the MP3 we write: ID3 tag, Info frame, frames --- */

enum tag_kind { TAG_NONE, TAG_LAME, TAG_OWN };

struct enc {
	struct sfs_stage *st;
	int64_t audio_start; /* offset of the first MP3 frame */
	int64_t audio_bytes; /* MP3 bytes written so far */
	enum tag_kind tag;
	unsigned char hdr[4]; /* LAME's first frame header */
};

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put_syncsafe(unsigned char *p, uint32_t v)
{
	p[0] = (v >> 21) & 0x7f;
	p[1] = (v >> 14) & 0x7f;
	p[2] = (v >> 7) & 0x7f;
	p[3] = v & 0x7f;
}

/* An ID3v2.4 tag of ID3_SIZE bytes: TLEN (ms) then zero padding. */
static void id3_tag(unsigned char *b, int64_t ms)
{
	char digits[16];
	int nd;

	if (ms < 0)
		ms = 0;
	if (ms > 99999999999LL)
		ms = 99999999999LL;
	nd = snprintf(digits, sizeof(digits), "%lld", (long long)ms);
	memset(b, 0, ID3_SIZE);
	memcpy(b, "ID3\x04\x00\x00", 6);
	put_syncsafe(b + 6, ID3_SIZE - 10);
	memcpy(b + 10, "TLEN", 4);
	put_syncsafe(b + 14, (uint32_t)nd + 1);
	b[20] = 0; /* ISO-8859-1 */
	memcpy(b + 21, digits, (size_t)nd);
}

static const int mpeg_rates[4][3] = {
	[0] = { 11025, 12000, 8000 },  /* MPEG 2.5 */
	[2] = { 22050, 24000, 16000 }, /* MPEG 2 */
	[3] = { 44100, 48000, 32000 }, /* MPEG 1 */
};

static const int mpeg_kbps[2][15] = {
	{ 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160 },
	{ 0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 },
};

/*
 * Our own Info frame, for when LAME leaves its tag out because the
 * stream's frames are too small to hold it (LAME wants room for a TOC; at
 * 22.05 kHz mono 48 kbps or 16 kHz mono 32 kbps there is none): an Info
 * tag without TOC (the stream is CBR, seeking is linear) and the LAME
 * extension (encoder delay and padding, so decoders trim them), in a frame
 * like LAME's first, at the stream's bitrate when it fits, else at the
 * lowest that does. Returns the frame size, 0 for a header we do not know.
 */
static int own_frame_size(const unsigned char *h, int *kbps_index)
{
	int ver = (h[1] >> 3) & 3, sri = (h[2] >> 2) & 3, bi = h[2] >> 4;
	int mpeg1 = ver == 3, mono = (h[3] >> 6) == 3, i, rate, need;

	if (ver == 1 || sri == 3 || ((h[1] >> 1) & 3) != 1 || bi == 15)
		return 0;
	rate = mpeg_rates[ver][sri];
	need = 4 + (mpeg1 ? (mono ? 17 : 32) : (mono ? 9 : 17)) + INFO_BYTES;
	for (i = 0; i < 15; i++) {
		int k = i == 0 ? bi : i;
		int size =
			(mpeg1 ? 144000 : 72000) * mpeg_kbps[mpeg1][k] / rate;

		if (k > 0 && size >= need) {
			*kbps_index = k;
			return size;
		}
	}
	return 0;
}

static uint16_t crc16(const unsigned char *p, size_t n, uint16_t crc)
{
	int k;

	while (n--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0xa001 : crc >> 1;
	}
	return crc;
}

static int own_info_frame(lame_global_flags *gf, const struct enc *x,
			  unsigned char *f)
{
	int bi = 0, size = own_frame_size(x->hdr, &bi);
	int mpeg1 = ((x->hdr[1] >> 3) & 3) == 3;
	int mono = (x->hdr[3] >> 6) == 3;
	int delay = lame_get_encoder_delay(gf);
	int pad = lame_get_encoder_padding(gf);
	int kbps = lame_get_brate(gf);
	unsigned char *p;

	if (!size)
		return 0;
	memset(f, 0, (size_t)size);
	f[0] = 0xff;
	f[1] = x->hdr[1] | 1; /* no CRC */
	f[2] = (unsigned char)((bi << 4) | (x->hdr[2] & 0x0c));
	f[3] = x->hdr[3];
	p = f + 4 + (mpeg1 ? (mono ? 17 : 32) : (mono ? 9 : 17));
	memcpy(p, "Info", 4);
	put_be32(p + 4, 3); /* frames and bytes present */
	put_be32(p + 8, (uint32_t)lame_get_frameNum(gf));
	put_be32(p + 12, (uint32_t)x->audio_bytes);
	p += 16;
	memcpy(p, "LAME3.100", 9);
	p[9] = 1; /* revision 0, CBR */
	p[10] = (unsigned char)(lame_get_lowpassfreq(gf) / 100 > 255
					? 255
					: lame_get_lowpassfreq(gf) / 100);
	p[20] = (unsigned char)(kbps > 255 ? 255 : kbps);
	p[21] = (unsigned char)(delay >> 4);
	p[22] = (unsigned char)(((delay & 15) << 4) | ((pad >> 8) & 15));
	p[23] = (unsigned char)pad;
	put_be32(p + 28, (uint32_t)x->audio_bytes);
	/* the tag's CRC covers the frame up to the CRC itself */
	{
		uint16_t c = crc16(f, (size_t)(p + 34 - f), 0);

		p[34] = c >> 8;
		p[35] = c & 0xff;
	}
	return size;
}

/*
 * Whether LAME's first output is the frame it reserves for its tag: a
 * frame header followed by zeros only (a real frame's side information
 * carries a non-zero global gain).
 */
static int is_reserved_frame(const unsigned char *b, int n)
{
	int i, len = n < 64 ? n : 64;

	if (len < 36 || b[0] != 0xff)
		return 0;
	for (i = 4; i < len; i++)
		if (b[i])
			return 0;
	return 1;
}

/*
 * Append LAME output. Its first frame tells whether LAME reserved its tag
 * frame or left it out (frames too small): then we reserve ours.
 */
static enum sfs_status put_mp3(struct enc *x, const unsigned char *b, int n,
			       struct sfs_err *e)
{
	unsigned char zero[MAX_FRAME];
	enum sfs_status st;

	if (n <= 0)
		return SFS_OK;
	if (x->audio_bytes == 0) {
		int bi, size = 0;

		if (is_reserved_frame(b, n)) {
			x->tag = TAG_LAME;
		} else if (n >= 4) {
			memcpy(x->hdr, b, 4);
			size = own_frame_size(x->hdr, &bi);
		}
		if (size > 0) {
			x->tag = TAG_OWN;
			memset(zero, 0, (size_t)size);
			st = sfs_stage_write(x->st, zero, (size_t)size, e);
			if (st != SFS_OK)
				return st;
			x->audio_bytes += size;
		}
	}
	st = sfs_stage_write(x->st, b, (size_t)n, e);
	if (st == SFS_OK)
		x->audio_bytes += n;
	return st;
}

static void lame_quiet(const char *fmt, va_list ap)
{
	(void)fmt;
	(void)ap;
}

static enum sfs_status check_opts(const struct sfs_audio_opts *o,
				  struct sfs_err *e)
{
	if (o->bitrate_kbps < 8 || o->bitrate_kbps > 320)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"listening bitrate %d kbps out of range 8..320",
				o->bitrate_kbps);
	if (o->sample_rate < 8000 || o->sample_rate > 48000)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"listening sample rate %d out of range "
				"8000..48000",
				o->sample_rate);
	if (o->channels != 1 && o->channels != 2)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"listening channels must be 1 or 2, not %d",
				o->channels);
	return SFS_OK;
}

/* Set up LAME for the source; the real rate and bitrate are logged. */
static enum sfs_status lame_setup(lame_global_flags **out,
				  const struct sfs_audio_opts *o, int in_rate,
				  int channels, struct sfs_err *e)
{
	lame_global_flags *gf;
	enum sfs_status st = SFS_OK;

	pthread_mutex_lock(&lame_lock);
	gf = lame_init();
	if (!gf) {
		st = sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
			      "cannot start the encoder");
		goto out;
	}
	lame_set_errorf(gf, lame_quiet);
	lame_set_debugf(gf, lame_quiet);
	lame_set_msgf(gf, lame_quiet);
	lame_set_num_channels(gf, channels);
	lame_set_mode(gf, channels == 1 ? MONO : JOINT_STEREO);
	lame_set_in_samplerate(gf, in_rate);
	lame_set_out_samplerate(gf, o->sample_rate);
	lame_set_write_id3tag_automatic(gf, 0);
	lame_set_bWriteVbrTag(gf, 1);
	if (o->vbr) {
		lame_set_VBR(gf, vbr_abr);
		lame_set_VBR_mean_bitrate_kbps(gf, o->bitrate_kbps);
	} else {
		lame_set_VBR(gf, vbr_off);
		lame_set_brate(gf, o->bitrate_kbps);
	}
	if (lame_init_params(gf) < 0) {
		st = sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE,
			      "cannot encode %d Hz, %d channels at %d kbps",
			      in_rate, channels, o->bitrate_kbps);
		goto out;
	}
	sfs_debug("audio", "encoding %d Hz -> %d Hz, %d kbps%s, %d channels",
		  in_rate, lame_get_out_samplerate(gf),
		  o->vbr ? lame_get_VBR_mean_bitrate_kbps(gf)
			 : lame_get_brate(gf),
		  o->vbr ? " abr" : "", channels);
out:
	if (st != SFS_OK && gf) {
		lame_close(gf);
		gf = NULL;
	}
	pthread_mutex_unlock(&lame_lock);
	*out = gf;
	return st;
}

static float clean(float v)
{
	if (isnan(v))
		return 0;
	if (v > 1)
		return 1;
	if (v < -1)
		return -1;
	return v;
}

/* Interleaved source frames to one or two planes. */
static void downmix(const float *in, int in_ch, int n, int out_ch, float *l,
		    float *r)
{
	int i, c;

	if (out_ch == 2) {
		for (i = 0; i < n; i++) {
			l[i] = clean(in[2 * i]);
			r[i] = clean(in[2 * i + 1]);
		}
		return;
	}
	if (in_ch == 1) {
		for (i = 0; i < n; i++)
			l[i] = clean(in[i]);
		return;
	}
	for (i = 0; i < n; i++) {
		float s = 0;

		for (c = 0; c < in_ch; c++)
			s += in[i * in_ch + c];
		l[i] = clean(s / in_ch);
	}
}

void sfs_peaks_init(struct sfs_peaks *p, int sample_rate)
{
	memset(p, 0, sizeof(*p));
	p->sample_rate = sample_rate;
	p->frames_per_peak = (int64_t)sample_rate * SFS_PEAKS_SLICE_MS / 1000;
	if (p->frames_per_peak < 1)
		p->frames_per_peak = 1;
}

/* Close the slice being filled; merge neighbours when the array is full. */
static void peaks_push(struct sfs_peaks *p)
{
	size_t i;

	if (p->n == SFS_PEAKS_MAX) {
		for (i = 0; i < SFS_PEAKS_MAX / 2; i++)
			p->v[i] = p->v[2 * i] > p->v[2 * i + 1]
					  ? p->v[2 * i]
					  : p->v[2 * i + 1];
		p->n = SFS_PEAKS_MAX / 2;
		p->frames_per_peak *= 2;
		/* the open slice now ends at the doubled boundary */
		if (p->in_cur < p->frames_per_peak)
			return;
	}
	p->v[p->n++] = (unsigned char)lrintf(p->cur * 255.0f);
	p->cur = 0;
	p->in_cur = 0;
}

void sfs_peaks_add(struct sfs_peaks *p, const float *l, const float *r, int n)
{
	float a;
	int i;

	for (i = 0; i < n; i++) {
		a = fabsf(l[i]);
		if (r && fabsf(r[i]) > a)
			a = fabsf(r[i]);
		if (a > p->cur)
			p->cur = a > 1 ? 1 : a;
		if (++p->in_cur >= p->frames_per_peak)
			peaks_push(p);
	}
	p->frames += n;
}

void sfs_peaks_finish(struct sfs_peaks *p)
{
	if (p->in_cur > 0)
		peaks_push(p);
	/* a slice that the merge left open is pushed by the second call */
	if (p->in_cur > 0)
		peaks_push(p);
}

/* Why libsndfile could not open a file: corrupt or unsupported. */
static enum sfs_status open_failed(int fd, struct sfs_err *e)
{
	unsigned char head[SNIFF_BYTES];
	enum sfs_status st;
	size_t n;
	int damaged;

	st = read_head(fd, head, sizeof(head), &n, e);
	if (st != SFS_OK)
		return st;
	sniff(head, n, &damaged);
	if (damaged)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"corrupt audio data: %s", sf_strerror(NULL));
	return sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE, UNSUPPORTED_MSG);
}

/* The encoder's working memory, sized once per encode. */
struct encbuf {
	float *pcm, *l, *r;
	unsigned char *mp3;
	int block;    /* frames decoded at a time */
	int mp3_size; /* bytes of mp3 */
};

static enum sfs_status encbuf_alloc(struct encbuf *b, int rate_in, int rate_out,
				    int channels, struct sfs_err *e)
{
	/* upsampling makes more MP3 per input frame: smaller blocks */
	int ratio = (rate_out + rate_in - 1) / rate_in;

	b->block = BLOCK_FRAMES / (ratio > 1 ? ratio : 1);
	b->mp3_size = 5 * BLOCK_FRAMES / 2 + 7200;
	b->pcm = malloc(sizeof(*b->pcm) * (size_t)b->block * (size_t)channels);
	b->l = malloc(sizeof(*b->l) * (size_t)b->block);
	b->r = malloc(sizeof(*b->r) * (size_t)b->block);
	b->mp3 = malloc((size_t)b->mp3_size);
	if (!b->pcm || !b->l || !b->r || !b->mp3)
		return sfs_errf(e, SFS_NOMEM, SFS_R_NONE,
				"no memory to encode audio");
	return SFS_OK;
}

static void encbuf_release(struct encbuf *b)
{
	free(b->pcm);
	free(b->l);
	free(b->r);
	free(b->mp3);
}

/* Decode and encode every frame; *frames counts them. */
static enum sfs_status
encode_frames(SNDFILE *sf, const struct vio *v, int channels, int out_ch,
	      lame_global_flags *gf, struct enc *x, struct encbuf *b,
	      int64_t *frames, struct sfs_peaks *peaks,
	      int (*progress)(void *arg), void *arg, struct sfs_err *e)
{
	int64_t last = 0; /* progress at once, then each second */
	enum sfs_status st;
	int n;

	for (;;) {
		sf_count_t got = sf_readf_float(sf, b->pcm, b->block);

		if (v->err)
			return sfsi_errno_status(e, v->err,
						 "cannot read audio");
		if (got <= 0)
			break;
		*frames += got;
		downmix(b->pcm, channels, (int)got, out_ch, b->l, b->r);
		if (peaks)
			sfs_peaks_add(peaks, b->l, out_ch == 2 ? b->r : NULL,
				      (int)got);
		n = lame_encode_buffer_ieee_float(
			gf, b->l, out_ch == 2 ? b->r : b->l, (int)got, b->mp3,
			b->mp3_size);
		if (n < 0)
			return sfs_errf(e, SFS_IO, SFS_R_NONE,
					"mp3 encoder failed (%d)", n);
		st = put_mp3(x, b->mp3, n, e);
		if (st != SFS_OK)
			return st;
		if (progress && sfs_now_ns() - last >= PROGRESS_NS) {
			last = sfs_now_ns();
			if (progress(arg))
				return sfs_errf(e, SFS_CONFLICT, SFS_R_NONE,
						"cancelled");
		}
	}
	if (sf_error(sf) != SF_ERR_NO_ERROR)
		return sfs_errf(e, SFS_INVALID, SFS_R_NONE,
				"corrupt audio data: %s", sf_strerror(sf));
	return SFS_OK;
}

/*
 * The end of the MP3: the encoder's last frames, the Info frame written
 * over the placeholder at the start of the audio, and the ID3 tag with
 * the duration actually decoded.
 */
static enum sfs_status finish_mp3(lame_global_flags *gf, struct enc *x,
				  struct encbuf *b, int64_t duration_ms,
				  struct sfs_err *e)
{
	unsigned char id3[ID3_SIZE];
	enum sfs_status st;
	int n;

	n = lame_encode_flush(gf, b->mp3, b->mp3_size);
	if (n < 0)
		return sfs_errf(e, SFS_IO, SFS_R_NONE,
				"mp3 encoder failed (%d)", n);
	st = put_mp3(x, b->mp3, n, e);
	if (st != SFS_OK)
		return st;
	n = 0;
	if (x->tag == TAG_LAME)
		n = (int)lame_get_lametag_frame(gf, b->mp3,
						(size_t)b->mp3_size);
	else if (x->tag == TAG_OWN)
		n = own_info_frame(gf, x, b->mp3);
	if (n > 0)
		st = sfs_stage_pwrite(x->st, b->mp3, (size_t)n, x->audio_start,
				      e);
	else
		sfs_warn("audio", "mp3 written without an info frame");
	if (st != SFS_OK)
		return st;
	id3_tag(id3, duration_ms);
	return sfs_stage_pwrite(x->st, id3, sizeof(id3), 0, e);
}

enum sfs_status sfs_audio_encode(int in_fd, struct sfs_stage *out,
				 const struct sfs_audio_opts *o,
				 struct sfs_peaks *peaks,
				 int (*progress)(void *arg), void *arg,
				 struct sfs_err *e)
{
	struct sfs_audio_opts defaults;
	struct vio v = { .fd = in_fd };
	struct enc x = { .st = out };
	struct encbuf b = { 0 };
	lame_global_flags *gf = NULL;
	SNDFILE *sf = NULL;
	SF_INFO info;
	unsigned char id3[ID3_SIZE], head[SNIFF_BYTES];
	size_t n;
	int64_t frames = 0;
	enum sfs_status st;
	int out_ch;

	if (!o) {
		sfs_audio_opts_init(&defaults);
		o = &defaults;
	}
	st = check_opts(o, e);
	if (st != SFS_OK)
		goto out;
	memset(&info, 0, sizeof(info));
	st = read_head(in_fd, head, sizeof(head), &n, e);
	if (st != SFS_OK)
		goto out;
	if (sf_may_read(head, n, vio_len(&v)))
		sf = sf_open_virtual(&vio_ops, SFM_READ, &info, &v);
	if (v.err) {
		st = sfsi_errno_status(e, v.err, "cannot read audio");
		goto out;
	}
	if (!sf) {
		st = open_failed(in_fd, e);
		goto out;
	}
	if (info.samplerate < 1000 || info.samplerate > 768000 ||
	    info.channels < 1) {
		st = sfs_errf(e, SFS_UNSUPPORTED, SFS_R_NONE, UNSUPPORTED_MSG);
		goto out;
	}
	out_ch = (o->channels == 2 && info.channels == 2) ? 2 : 1;
	if (peaks)
		sfs_peaks_init(peaks, info.samplerate);
	st = lame_setup(&gf, o, info.samplerate, out_ch, e);
	if (st == SFS_OK)
		st = encbuf_alloc(&b, info.samplerate,
				  lame_get_out_samplerate(gf), info.channels,
				  e);
	if (st != SFS_OK)
		goto out;
	/* a placeholder tag: rewritten with the duration decoded */
	id3_tag(id3, 0);
	st = sfs_stage_write(out, id3, sizeof(id3), e);
	if (st != SFS_OK)
		goto out;
	x.audio_start = sizeof(id3);
	st = encode_frames(sf, &v, info.channels, out_ch, gf, &x, &b, &frames,
			   peaks, progress, arg, e);
	if (st == SFS_OK)
		st = finish_mp3(gf, &x, &b, frames * 1000 / info.samplerate, e);
	if (st == SFS_OK && peaks)
		sfs_peaks_finish(peaks);
out:
	if (gf)
		lame_close(gf);
	if (sf)
		sf_close(sf);
	encbuf_release(&b);
	return st;
}

void sfsi_audio_probe_stage(struct sfs_stage *st, double *duration, char *mime,
			    size_t mime_size)
{
	struct sfs_err e;

	sfs_err_init(&e);
	*duration = -1;
	sfs_strlcpy(mime, "application/octet-stream", mime_size);
	if (sfs_audio_probe(sfs_stage_fd(st), duration, mime, mime_size, &e))
		sfs_warn("audio", "probe failed: %s", e.message);
}
